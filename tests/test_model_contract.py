"""One contract, every top-N model: what `implicit` users expect of `fit`/`recommend`.

Each entry builds a small, fast instance; the same checks run against all.
"""

import importlib

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.data import leave_last_out
from recsys_lab.data.interactions import Interactions
from recsys_lab.evaluation import evaluate

# (module, class name, constructor keyword arguments); a ("ConfigClass", {...}) value
# is built from the same module, so torch models stay unimported until their test runs
MODELS = [
    ("recsys_lab.models.popularity", "Popularity", {}),
    ("recsys_lab.models.als", "ImplicitALS", {"factors": 8, "iterations": 2, "random_state": 0}),
    ("recsys_lab.models.mf", "BiasedMF", {"factors": 4, "epochs": 2, "random_state": 0}),
    ("recsys_lab.models.explicit_als", "ExplicitALS", {"factors": 4, "iterations": 2, "random_state": 0}),
    ("recsys_lab.models.reference", "ImplicitLibrary", {"kind": "als", "factors": 8, "iterations": 3, "random_state": 0}),
    ("recsys_lab.models.lightgcn", "LightGCN", {"config": ("LightGCNConfig", {"factors": 8, "n_layers": 2, "epochs": 2}), "random_state": 0}),
    ("recsys_lab.models.ease", "EASE", {"regularization": 10.0}),
    ("recsys_lab.models.multvae", "MultVAE", {"config": ("MultVAEConfig", {"hidden": 16, "latent": 8, "epochs": 2}), "random_state": 0}),
    ("recsys_lab.models.reference", "ImplicitLibrary", {"kind": "bpr", "factors": 8, "iterations": 5, "random_state": 0}),
]


def build(entry):
    module_name, name, params = entry
    module = importlib.import_module(module_name)
    params = {
        key: getattr(module, value[0])(**value[1]) if isinstance(value, tuple) else value
        for key, value in params.items()
    }
    return getattr(module, name)(**params)


def ids(entry):
    module_name, name, params = entry
    return "-".join([name, *(str(v[1] if isinstance(v, tuple) else v) for v in params.values())])


@pytest.fixture(scope="module")
def tiny_split(movielens):
    """The first 60 users of MovieLens and every item they touched."""
    ratings = movielens.ratings[movielens.ratings["user_id"] <= 60]
    return leave_last_out(Interactions.from_frame(ratings))


@pytest.fixture(scope="module", params=MODELS, ids=ids)
def fitted(request, tiny_split):
    return request.param, build(request.param).fit(tiny_split.train, show_progress=False)


def test_fit_returns_self_and_recommend_shapes(fitted, tiny_split):
    entry, model = fitted
    train = tiny_split.train
    ids_, scores = model.recommend(3, train.user_items[3], N=5)
    assert ids_.shape == (5,) and scores.shape == (5,)
    assert np.all(np.diff(scores) <= 0)  # best first
    assert not set(ids_) & set(train.user_items[3].indices)  # already-liked items filtered
    batch_ids, batch_scores = model.recommend(np.array([0, 3]), train.user_items[[0, 3]], N=5)
    assert batch_ids.shape == (2, 5)
    np.testing.assert_array_equal(batch_ids[1], ids_)
    np.testing.assert_allclose(batch_scores[1], scores, rtol=1e-5)
    via_log_ids, _ = model.recommend(3, train, N=5)  # an Interactions works too
    np.testing.assert_array_equal(via_log_ids, ids_)


def test_unfiltered_recommend_may_return_seen_items(fitted, tiny_split):
    entry, model = fitted
    n_items = tiny_split.train.n_items
    ids_, _ = model.recommend(0, tiny_split.train.user_items[0], N=n_items, filter_already_liked_items=False)
    assert sorted(ids_) == list(range(n_items))


def test_bad_calls_raise_clear_errors(fitted, tiny_split):
    entry, model = fitted
    train = tiny_split.train
    with pytest.raises(ValueError, match=f"N=100000 is larger than the {train.n_items} items"):
        model.recommend(0, train.user_items[0], N=100_000)
    with pytest.raises(ValueError, match="userid 9999 is outside"):
        model.recommend(9999, train.user_items[0])
    with pytest.raises(ValueError, match="one row per userid"):
        model.recommend(0, train.user_items)  # the whole matrix, not the user's row
    with pytest.raises(ValueError, match="empty"):
        build(entry).fit(sp.csr_matrix((5, 5), dtype=np.float32), show_progress=False)


def test_fit_is_deterministic_and_leaves_input_alone(fitted, tiny_split):
    entry, model = fitted
    before = tiny_split.train.user_items.copy()
    again = build(entry).fit(tiny_split.train, show_progress=False)
    assert (tiny_split.train.user_items != before).nnz == 0
    np.testing.assert_allclose(
        again.score_items(np.arange(5), tiny_split.train), model.score_items(np.arange(5), tiny_split.train), rtol=1e-5
    )


def test_evaluate_gives_one_row_with_intervals(fitted, tiny_split):
    entry, model = fitted
    row = evaluate(model, tiny_split, "valid")
    assert len(row) == 1
    for metric in ("HR@10", "NDCG@10", "MRR"):
        value = row[metric].item()
        assert row[f"{metric} low"].item() <= value <= row[f"{metric} high"].item()


def test_factor_models_expose_factors(fitted, tiny_split):
    entry, model = fitted
    if not hasattr(model, "item_factors"):
        pytest.skip("not a factor model")
    assert model.item_factors.shape[0] == tiny_split.train.n_items
    assert np.isfinite(model.item_factors).all()
