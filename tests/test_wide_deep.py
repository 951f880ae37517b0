import numpy as np
import pytest
import torch

from recsys_lab.features.crosses import Features, encode, encode_multi
from recsys_lab.models.wide_deep import WideDeep, WideDeepConfig, sampled_softmax_loss

# these tests read the module's tensors directly, so they pin the CPU (benchmarks/cuda_check.py covers cuda)
TINY = dict(embedding_dim=4, hidden=(8,), epochs=2, batch_size=64, negatives=2, device="cpu")


@pytest.fixture
def data(random_user_items):
    rng = np.random.default_rng(0)
    n_users, n_items = random_user_items.shape
    users = Features.ids(n_users, "user_id").add("gender", *encode(rng.choice(["F", "M"], n_users)))
    items = Features.ids(n_items, "item_id").add("genres", *encode_multi(rng.choice(["A", "B|C", "C"], n_items)))
    return random_user_items, users, items


def fit(data, **kw):
    ui, users, items = data
    cfg = WideDeepConfig(**{**TINY, "crosses": (("gender", "genres"),), **kw})
    return WideDeep(cfg, random_state=0).fit(ui, user_features=users, item_features=items, show_progress=False)


@pytest.mark.parametrize("parts", ["wide", "deep", "wide_deep"])
def test_shapes_probabilities_and_scores(data, parts):
    model = fit(data, parts=parts)
    p = model.predict_proba([0, 1, 2], [3, 4, 5])
    assert p.shape == (3,) and ((p > 0) & (p < 1)).all()
    assert model.score_items(np.arange(4), data[0][:4]).shape == (4, 40)
    ids, _ = model.recommend(1, data[0][1], N=5)
    assert not set(ids) & set(data[0][1].indices)


def test_wide_and_deep_logits_add_up(data):
    model = fit(data)
    module = model.module_
    u, i = torch.tensor([0, 5]), torch.tensor([1, 7])
    with torch.no_grad():
        codes = module.fields(u, i)
        total = module.bias + module.wide_logit(codes) + module.deep_logit(codes)
        np.testing.assert_allclose(module(u, i).numpy(), total.numpy(), rtol=1e-6)


def test_cross_weights_exist_for_every_value_pair(data):
    module = fit(data, parts="wide").module_
    assert module.wide["genderxgenres"].num_embeddings == 2 * 3 + 1  # 2 genders x 3 genres + padding


def test_fit_is_deterministic_and_learns(data):
    a, b = fit(data, epochs=5), fit(data, epochs=5)
    np.testing.assert_allclose(a.predict_proba([0, 1], [2, 3]), b.predict_proba([0, 1], [2, 3]))
    assert a.history_.loss[-1] < a.history_.loss[0]


def test_dot_term_adds_the_id_factors_product(data):
    model = fit(data, dot=True)
    module = model.module_
    u, i = torch.tensor([0, 5]), torch.tensor([1, 7])
    with torch.no_grad():
        codes = module.fields(u, i)
        product = (module.factors["user_id"](codes["user_id"]).sum(1) * module.factors["item_id"](codes["item_id"]).sum(1)).sum(1)
        total = module.bias + module.wide_logit(codes) + module.deep_logit(codes) + product
        np.testing.assert_allclose(module(u, i).numpy(), total.numpy(), rtol=1e-5, atol=1e-6)


def test_sampled_softmax_loss_is_cross_entropy_over_each_row(data):
    module = fit(data).module_
    users, items = torch.tensor([0, 3]), torch.tensor([[1, 8, 9], [4, 0, 2]])   # column 0: the positive
    with torch.no_grad():
        logits = torch.stack([module(users, items[:, k]) for k in range(3)], dim=1)
        expected = -(logits[:, 0] - torch.logsumexp(logits, dim=1)).mean()
        np.testing.assert_allclose(sampled_softmax_loss(module, users, items).item(), expected.item(), rtol=1e-5)


def test_softmax_loss_learns_to_rank_training_positives_first(data):
    ui = data[0]
    model = fit(data, loss="softmax", dot=True, epochs=8, lr=0.02)
    assert model.history_.loss[-1] < model.history_.loss[0]
    scores = model.score_items(np.arange(ui.shape[0]), ui)                   # (n_users, n_items)
    observed = ui.toarray() > 0
    assert scores[observed].mean() > scores[~observed].mean()


def test_without_features_it_uses_the_ids(random_user_items):
    model = WideDeep(WideDeepConfig(**TINY, crosses=()), random_state=0).fit(random_user_items, show_progress=False)
    assert set(model.module_.deep) == {"user_id", "item_id"}


def test_bad_input_raises_clear_errors(data):
    ui, users, items = data
    with pytest.raises(ValueError, match="parts='both'"):
        WideDeepConfig(parts="both")
    with pytest.raises(ValueError, match="loss='bpr' must be 'logistic' or 'softmax'"):
        WideDeepConfig(loss="bpr")
    with pytest.raises(ValueError, match="dot=True needs a 'user_id' user field"):
        no_ids = Features.ids(ui.shape[0], "user").add("gender", *encode(["F"] * ui.shape[0]))
        WideDeep(WideDeepConfig(**TINY, crosses=(), dot=True)).fit(ui, user_features=no_ids, item_features=items)
    with pytest.raises(ValueError, match=r"cross \('age', 'genres'\)"):
        WideDeep(WideDeepConfig(**TINY, crosses=(("age", "genres"),))).fit(ui, user_features=users, item_features=items)
    with pytest.raises(ValueError, match="user_features has 3 rows"):
        WideDeep(WideDeepConfig(**TINY, crosses=())).fit(ui, user_features=Features.ids(3, "user_id"))
    with pytest.raises(TypeError, match="csr_matrix"):
        WideDeep().fit(np.ones((3, 3)))
    model = fit(data)
    with pytest.raises(ValueError, match="item indices must lie in 0..39"):
        model.predict_proba([0], [40])
