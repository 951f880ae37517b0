"""One contract, every top-N model: what `implicit` users expect of `fit`/`recommend`.

Each entry builds a small, fast instance; the same checks run against all.
"""

import importlib

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_lab.data import leave_last_out
from recsys_lab.data.interactions import Interactions
from recsys_lab.evaluation import evaluate, refit, top_k_overlap

ITEM_VECTORS = "item vectors"  # stands for fixed external vectors, one 8-d row per item of the split

# (module, class name, constructor keyword arguments). A ("ConfigClass", {...}) value is
# built from the model's module, so torch models stay unimported until their test runs.
MODELS = [
    ("recsys_lab.models.popularity", "Popularity", {}),
    ("recsys_lab.models.als", "ImplicitALS", {"factors": 8, "iterations": 2, "random_state": 0}),
    ("recsys_lab.models.mf", "BiasedMF", {"factors": 4, "epochs": 2, "random_state": 0}),
    ("recsys_lab.models.explicit_als", "ExplicitALS", {"factors": 4, "iterations": 2, "random_state": 0}),
    ("recsys_lab.models.reference", "ImplicitLibrary", {"kind": "als", "factors": 8, "iterations": 3, "random_state": 0}),
    ("recsys_lab.models.reference", "ImplicitLibrary", {"kind": "bpr", "factors": 8, "iterations": 5, "random_state": 0}),
    ("recsys_lab.models.item2vec", "Item2Vec", {"factors": 8, "window": 5, "epochs": 2, "random_state": 0}),
    ("recsys_lab.models.content", "ContentRecommender", {"item_vectors": ITEM_VECTORS}),
    ("recsys_lab.models.content", "DualEmbedding", {"item_vectors": ITEM_VECTORS, "regularization": 1.0, "alpha": 5.0}),
    ("recsys_lab.models.projected_content", "ProjectedContent",
     {"item_vectors": ITEM_VECTORS, "half_life": 3.0, "config": ("ProjectionConfig", {"dim": 4, "max_history": 5, "epochs": 1}),
      "random_state": 0}),
    ("recsys_lab.models.history_net", "HistoryNet",
     {"item_vectors": ITEM_VECTORS, "config": ("HistoryNetConfig", {"dim": 8, "max_history": 5, "epochs": 1}), "random_state": 0}),
    ("recsys_lab.models.wide_deep", "WideDeep",
     {"config": ("WideDeepConfig", {"crosses": (), "embedding_dim": 8, "hidden": (16,), "epochs": 2}), "random_state": 0}),
    ("recsys_lab.models.two_tower", "TwoTower",
     {"config": ("TwoTowerConfig", {"factors": 16, "hidden": 32, "epochs": 2}), "random_state": 0}),
    ("recsys_lab.models.sasrec", "SASRec",
     {"config": ("SASRecConfig", {"max_len": 20, "factors": 16, "n_blocks": 1, "epochs": 2}), "random_state": 0}),
    ("recsys_lab.models.lightgcn", "LightGCN",
     {"config": ("LightGCNConfig", {"factors": 8, "n_layers": 2, "epochs": 2}), "random_state": 0}),
    ("recsys_lab.models.pinsage", "PinSage",
     {"item_vectors": ITEM_VECTORS, "config": ("PinSageConfig", {"dim": 8, "hidden": 16, "n_walks": 20, "max_history": 5,
                                                                 "epochs": 2}), "random_state": 0}),
    ("recsys_lab.models.ease", "EASE", {"regularization": 10.0}),
    ("recsys_lab.models.knn", "ItemKNN", {"neighbours": 20}),
    ("recsys_lab.models.multvae", "MultVAE",
     {"config": ("MultVAEConfig", {"hidden": 16, "latent": 8, "epochs": 2}), "random_state": 0}),
]


def build(entry, n_items):
    module_name, name, params = entry
    module = importlib.import_module(module_name)

    def value(v):
        if isinstance(v, tuple):
            return getattr(module, v[0])(**v[1])
        if v is ITEM_VECTORS:
            return np.random.default_rng(0).standard_normal((n_items, 8))
        return v

    return getattr(module, name)(**{key: value(v) for key, v in params.items()})


def ids(entry):
    module_name, name, params = entry
    return "-".join([name, *(str(v[1] if isinstance(v, tuple) else v) for v in params.values() if v is not ITEM_VECTORS)])


def history_rows(model, train, rows):
    """What a caller passes as ``user_items``: the CSR rows (implicit's convention),
    or the whole log for models that read each history in time order."""
    return train if getattr(model, "needs_order", False) else train.user_items[rows]


@pytest.fixture(scope="module")
def tiny_split(movielens):
    """The first 60 users of MovieLens and every item they touched."""
    ratings = movielens.ratings[movielens.ratings["user_id"] <= 60]
    return leave_last_out(Interactions.from_frame(ratings))


@pytest.fixture(scope="module", params=MODELS, ids=ids)
def fitted(request, tiny_split):
    model = build(request.param, tiny_split.train.n_items)
    return request.param, model.fit(tiny_split.train, show_progress=False)


def test_fit_returns_self_and_recommend_shapes(fitted, tiny_split):
    entry, model = fitted
    train = tiny_split.train
    ids_, scores = model.recommend(3, history_rows(model, train, 3), N=5)
    assert ids_.shape == (5,) and scores.shape == (5,)
    assert np.all(np.diff(scores) <= 0)  # best first
    assert not set(ids_) & set(train.user_items[3].indices)  # already-liked items filtered
    batch_ids, batch_scores = model.recommend(np.array([0, 3]), history_rows(model, train, [0, 3]), N=5)
    assert batch_ids.shape == (2, 5)
    # a batch and a single query may swap near-tied items (other BLAS kernels), never reach other scores
    np.testing.assert_allclose(batch_scores[1], scores, rtol=1e-5, atol=1e-6)
    assert top_k_overlap(batch_ids[1], ids_) >= 0.8
    via_log_ids, via_log_scores = model.recommend(3, train, N=5)  # an Interactions always works
    np.testing.assert_allclose(via_log_scores, scores, rtol=1e-5, atol=1e-6)


def test_sequence_models_refuse_an_unordered_matrix(fitted, tiny_split):
    entry, model = fitted
    if not model.needs_order:
        pytest.skip("reads user_items as a set")
    with pytest.raises(TypeError, match="time order"):
        model.recommend(0, tiny_split.train.user_items[0])


def test_unfiltered_recommend_may_return_seen_items(fitted, tiny_split):
    entry, model = fitted
    n_items = tiny_split.train.n_items
    ids_, _ = model.recommend(0, history_rows(model, tiny_split.train, 0), N=n_items, filter_already_liked_items=False)
    assert sorted(ids_) == list(range(n_items))


def test_recommend_never_returns_a_filtered_item(fitted, tiny_split):
    """N above the unseen items: one user gets a shorter row, a batch is padded with -1 / -inf at the end."""
    entry, model = fitted
    train = tiny_split.train
    n_items = train.n_items
    ids_, scores = model.recommend(3, history_rows(model, train, 3), N=n_items)
    liked = set(train.user_items[3].indices)
    assert len(ids_) == len(scores) == n_items - len(liked) and not set(ids_) & liked
    assert np.all(np.diff(scores) <= 0)
    users = np.array([0, 3])
    batch_ids, batch_scores = model.recommend(users, history_rows(model, train, users), N=n_items)
    assert batch_ids.shape == batch_scores.shape == (2, n_items)
    for row, user in enumerate(users):
        n_left = n_items - train.user_items[user].nnz
        kept, padding = batch_ids[row, :n_left], batch_ids[row, n_left:]
        assert not set(kept) & set(train.user_items[user].indices) and (kept >= 0).all()
        assert (padding == -1).all() and np.all(batch_scores[row, n_left:] == -np.inf)
    assert set(batch_ids[1, : len(ids_)]) == set(ids_)


def test_bad_calls_raise_clear_errors(fitted, tiny_split):
    entry, model = fitted
    train = tiny_split.train
    with pytest.raises(ValueError, match=f"N=100000 is larger than the {train.n_items} items"):
        model.recommend(0, history_rows(model, train, 0), N=100_000)
    with pytest.raises(ValueError, match="userid 9999 is outside"):
        model.recommend(9999, history_rows(model, train, 0))
    with pytest.raises(ValueError, match="one row per userid"):
        model.recommend(0, train.user_items)  # the whole matrix, not the user's row
    fresh = build(entry, 5)
    if fresh.needs_order:
        with pytest.raises(TypeError, match="time order"):
            fresh.fit(sp.csr_matrix(np.eye(5, dtype=np.float32)), show_progress=False)
        empty = Interactions(pd.DataFrame(columns=["user", "item", "rating", "timestamp"], dtype=np.int64), np.arange(5), np.arange(5))
    else:
        empty = sp.csr_matrix((5, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="empty|no events|two events"):
        fresh.fit(empty, show_progress=False)


def test_fit_is_deterministic_and_leaves_input_alone(fitted, tiny_split):
    entry, model = fitted
    train = tiny_split.train
    before = train.user_items.copy()
    again = build(entry, train.n_items).fit(train, show_progress=False)
    assert (train.user_items != before).nnz == 0
    np.testing.assert_allclose(again.score_items(np.arange(5), train), model.score_items(np.arange(5), train),
                               rtol=1e-5, atol=1e-6)  # threaded sparse sums may differ in the last bits


def test_evaluate_gives_one_row_with_intervals(fitted, tiny_split):
    entry, model = fitted
    row = evaluate(model, tiny_split, "valid")
    assert len(row) == 1
    for metric in ("HR@10", "NDCG@10", "MRR"):
        value = row[metric].item()
        assert row[f"{metric} low"].item() <= value <= row[f"{metric} high"].item()


def test_test_targets_need_a_model_refit_on_the_test_history(fitted, tiny_split):
    entry, model = fitted                                  # fitted on tiny_split.train
    with pytest.raises(ValueError, match="refit it on split.history"):
        evaluate(model, tiny_split, "test")
    refitted = refit(model, tiny_split, "test")
    assert type(refitted) is type(model) and refitted.fitted_on_ != model.fitted_on_
    assert len(evaluate(refitted, tiny_split, "test")) == 1


def test_factor_models_expose_factors(fitted, tiny_split):
    entry, model = fitted
    if not hasattr(model, "item_factors"):
        pytest.skip("not a factor model")
    assert model.item_factors.shape[0] == tiny_split.train.n_items
    assert np.isfinite(model.item_factors).all()


EARLY_STOPPING = [entry for entry in MODELS if isinstance(entry[2].get("config"), tuple)]   # the torch models


@pytest.mark.parametrize("entry", EARLY_STOPPING, ids=ids)
def test_early_stopping_keeps_the_best_epoch_and_refit_trains_that_many(entry, tiny_split):
    module_name, name, params = entry
    config_name, config_args = params["config"]
    entry = (module_name, name, {**params, "config": (config_name, {**config_args, "epochs": 5, "patience": 2})})
    model = build(entry, tiny_split.train.n_items)
    scripted, recommended = iter([0.2, 0.5, 0.4, 0.3, 0.9]), []

    def validation_metric(fitted):                    # the model can already recommend after each epoch
        recommended.append(fitted.recommend(0, history_rows(fitted, tiny_split.train, 0), N=3)[0])
        return next(scripted)

    model.fit(tiny_split.train, show_progress=False, on_epoch_end=validation_metric)
    assert model.history_.best_epoch == 2 and len(model.history_.loss) == len(recommended) == 4
    refitted = refit(model, tiny_split)
    assert refitted.cfg.epochs == 2 and len(refitted.history_.loss) == 2
