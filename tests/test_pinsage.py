"""PinSage: random-walk neighbourhoods, the convolution, items without interactions, training and bad input."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from recsys_lab.data import leave_last_out  # noqa: E402
from recsys_lab.data.interactions import Interactions  # noqa: E402
from recsys_lab.features.external import history_profiles  # noqa: E402
from recsys_lab.models.pinsage import PinSage, PinSageConfig, PinSageModule, random_walk_neighbours  # noqa: E402

N_ITEMS, COLD = 15, 14       # item 14 has features but no interaction
CONFIG = PinSageConfig(dim=8, hidden=16, id_dim=4, top_t=3, n_walks=20, max_history=5, epochs=2, batch_size=32)


def matrix(rows, n_items):
    """A binary user x item CSR matrix from one list of item columns per user."""
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        dense[user, items] = 1.0
    return sp.csr_matrix(dense)


@pytest.fixture(scope="module")
def log():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(20), 8), "item_id": rng.integers(0, COLD, 160),
                          "rating": 1.0, "timestamp": np.tile(np.arange(8), 20)})
    return leave_last_out(Interactions.from_frame(frame, item_ids=np.arange(N_ITEMS)))


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(1).standard_normal((N_ITEMS, 6)).astype(np.float32)


# ---------------------------------------------------------------- random-walk neighbourhoods
def test_one_hop_walks_weigh_neighbours_by_how_often_they_are_reached():
    # item 0 shares three users with item 1 and one with item 2: a hop from 0 lands on 1 with
    # probability 3/8, on 2 with 1/8 (on 0 itself 1/2, not counted), so the weights are 3/4 and 1/4
    X = matrix([[0, 1], [0, 1], [0, 1], [0, 2], [3], [4, 5]], n_items=7)
    neighbours = random_walk_neighbours(X, top_t=5, n_walks=4000, walk_length=1, random_state=0)
    assert neighbours.shape == (7, 7) and neighbours.dtype == np.float32
    row = neighbours[0].toarray().ravel()
    assert set(np.flatnonzero(row)) == {1, 2}
    np.testing.assert_allclose(row[[1, 2]], [0.75, 0.25], atol=0.03)
    np.testing.assert_allclose(neighbours[5].toarray().ravel()[4], 1.0)       # item 5 reaches only item 4
    assert neighbours[3].nnz == 0 and neighbours[6].nnz == 0                  # alone in its history; nobody's item
    sums = np.asarray(neighbours.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums, [1, 1, 1, 0, 1, 1, 0], atol=1e-6)


def test_top_t_keeps_the_most_visited_items_and_renormalises():
    X = matrix([[0, 1], [0, 1], [0, 1], [0, 2]], n_items=3)
    top1 = random_walk_neighbours(X, top_t=1, n_walks=500, walk_length=1, random_state=0)
    assert top1[0].indices.tolist() == [1] and top1[0].data.tolist() == [1.0]


def test_longer_walks_reach_further():
    X = matrix([[0, 1], [1, 2], [2, 3]], n_items=4)                           # a path 0 - 1 - 2 - 3
    one_hop = random_walk_neighbours(X, top_t=3, n_walks=200, walk_length=1, random_state=0)
    three_hops = random_walk_neighbours(X, top_t=3, n_walks=200, walk_length=3, random_state=0)
    assert set(one_hop[0].indices) == {1}
    assert set(three_hops[0].indices) == {1, 2, 3}


def test_walks_repeat_under_a_seed():
    X = sp.random(40, 30, density=0.15, format="csr", random_state=0, data_rvs=np.ones, dtype=np.float32)
    a, b, c = (random_walk_neighbours(X, top_t=5, n_walks=10, random_state=seed) for seed in (0, 0, 1))
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0


# ---------------------------------------------------------------- the convolution
def test_an_item_without_neighbours_is_embedded_from_its_own_features():
    neighbours = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32))   # item 2: none
    config = PinSageConfig(dim=4, hidden=8, use_ids=False)
    features = torch.randn(3, 5)
    torch.manual_seed(0)
    module = PinSageModule(features, neighbours, config).eval()
    changed = features.clone()
    changed[1] += 1.0                                                        # item 1: item 0's only neighbour
    torch.manual_seed(0)
    other = PinSageModule(changed, neighbours, config).eval()
    with torch.no_grad():
        before, after = module(), other()
    assert before.shape == (3, 4) and torch.isfinite(before).all()
    torch.testing.assert_close(before.norm(dim=1), torch.ones(3))
    assert not torch.allclose(before[0], after[0])                           # a neighbour's features reach item 0
    torch.testing.assert_close(before[2], after[2])                          # item 2 pools nothing


def test_neighbour_dropout_acts_in_training_only():
    neighbours = sp.csr_matrix(np.ones((50, 50), dtype=np.float32) / 50)
    torch.manual_seed(0)
    module = PinSageModule(torch.randn(50, 3), neighbours, PinSageConfig(dim=2, hidden=4, neighbour_dropout=0.5))
    with torch.no_grad():
        module.eval()
        torch.testing.assert_close(module(), module())
        module.train()
        assert not torch.allclose(module(), module())


# ---------------------------------------------------------------- the recommender
def test_item_without_interactions_gets_an_embedding_that_follows_its_features(log, vectors):
    config = dataclasses.replace(CONFIG, use_ids=False)
    model = PinSage(vectors, config=config, random_state=0).fit(log.train, show_progress=False)
    assert model.neighbours_[COLD].nnz == 0
    assert np.isfinite(model.item_factors[COLD]).all()
    np.testing.assert_allclose(np.linalg.norm(model.item_factors, axis=1), 1.0, rtol=1e-5)
    moved = vectors.copy()
    moved[COLD] = np.random.default_rng(2).standard_normal(6)
    again = PinSage(moved, config=config, random_state=0).fit(log.train, show_progress=False)
    assert not np.allclose(again.item_factors[COLD], model.item_factors[COLD], atol=1e-3)
    np.testing.assert_allclose(np.delete(again.item_factors, COLD, 0), np.delete(model.item_factors, COLD, 0),
                               rtol=1e-5, atol=1e-6)                          # it touches no other item
    ids = PinSage(vectors, config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    assert np.isfinite(ids.item_factors[COLD]).all()                         # with an untrained id embedding too


def test_shapes_scores_and_recommend(log, vectors):
    model = PinSage(vectors, config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    assert model.item_factors.shape == (N_ITEMS, 8) and model.n_users == 20
    assert len(model.history_.loss) == 2 and np.isfinite(model.history_.loss).all()
    scores = model.score_items(np.arange(4), log.train)
    assert scores.shape == (4, N_ITEMS)
    # a user is the decayed mean of their items' embeddings: any history scores without retraining
    profiles = history_profiles(log.train.sequences()[:4], model.item_factors, half_life=CONFIG.half_life)
    np.testing.assert_allclose(scores, profiles @ model.item_factors.T, rtol=1e-5, atol=1e-6)
    ids, top = model.recommend(3, log.train, N=5)
    assert ids.shape == (5,) and np.all(np.diff(top) <= 0)
    assert not set(ids) & set(log.train.user_items[3].indices)
    similar, _ = model.similar_items(0, N=3)
    assert similar[0] == 0
    assert "array (15, 6)" in repr(model)


def test_same_seed_same_model(log, vectors):
    a, b, c = (PinSage(vectors, config=CONFIG, random_state=seed).fit(log.train, show_progress=False)
               for seed in (0, 0, 1))
    np.testing.assert_allclose(a.item_factors, b.item_factors, rtol=1e-6, atol=1e-7)
    assert not np.allclose(a.item_factors, c.item_factors)


def test_early_stopping_keeps_the_best_epoch(log, vectors):
    model = PinSage(vectors, config=dataclasses.replace(CONFIG, epochs=6, patience=2), random_state=0)
    scripted, seen = iter([0.2, 0.5, 0.4, 0.3, 0.9, 1.0]), []

    def validation_metric(fitted):
        seen.append(fitted.item_factors.copy())
        return next(scripted)

    model.fit(log.train, show_progress=False, on_epoch_end=validation_metric)
    assert model.history_.best_epoch == 2 and len(model.history_.loss) == len(seen) == 4
    np.testing.assert_allclose(model.item_factors, seen[1], rtol=1e-6, atol=1e-7)   # the weights of epoch 2
    assert not np.allclose(seen[1], seen[3])


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("change, message", [
    ({"n_layers": 3}, "n_layers=3 must be 1 or 2"),
    ({"n_layers": 0}, "n_layers=0 must be at least 1"),
    ({"dim": 0}, "dim=0 must be at least 1"),
    ({"top_t": 0}, "top_t=0 must be at least 1"),
    ({"n_walks": 0}, "n_walks=0 must be at least 1"),
    ({"recent_targets": 0}, "recent_targets=0 must be at least 1"),
    ({"half_life": -1.0}, "half_life=-1.0 must be a finite number > 0"),
    ({"temperature": 0.0}, "temperature=0.0 must be a finite number > 0"),
    ({"neighbour_dropout": 1.0}, r"neighbour_dropout=1.0 must lie in \[0, 1\)"),
    ({"lr": float("nan")}, "lr=nan must be a finite number > 0"),
])
def test_bad_config_values_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(CONFIG, **change).validate()


def test_bad_input_is_refused_with_a_fix(log, vectors):
    with pytest.raises(TypeError, match="use_ids='yes' must be True or False"):
        dataclasses.replace(CONFIG, use_ids="yes").validate()
    with pytest.raises(TypeError, match="time order"):
        PinSage(vectors, config=CONFIG).fit(log.train.user_items)
    with pytest.raises(TypeError, match="must be a PinSageConfig"):
        PinSage(vectors, config={"dim": 8}).fit(log.train)
    with pytest.raises(ValueError, match=r"item_vectors has shape \(3, 6\).*must be \(15, dim\)"):
        PinSage(vectors[:3], config=CONFIG).fit(log.train)
    broken = vectors.copy()
    broken[4, 2] = np.nan
    with pytest.raises(ValueError, match="item_vectors contains NaN.*row 4"):
        PinSage(broken, config=CONFIG).fit(log.train)
    with pytest.raises(ValueError, match="top_t=0 must be at least 1"):
        random_walk_neighbours(log.train.user_items, top_t=0)
    with pytest.raises(RuntimeError, match="not fitted yet"):
        PinSage(vectors).recommend(0, log.train)
    model = PinSage(vectors, config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    with pytest.raises(TypeError, match="time order"):
        model.score_items(0, log.train.user_items[0])
