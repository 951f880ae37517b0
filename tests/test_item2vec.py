"""Item2Vec: the gensim wrapper learns, repeats with a seed, and rejects bad settings."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.data import leave_last_out
from recsys_lab.data.interactions import Interactions
from recsys_lab.models.item2vec import UNKNOWN_SCORE, Item2Vec


@pytest.fixture(scope="module")
def small_split(movielens):
    ratings = movielens.ratings[movielens.ratings["user_id"] <= 80]
    return leave_last_out(Interactions.from_frame(ratings))


def fast(**kwargs):
    params = dict(window=10, epochs=3, min_count=2, random_state=0)
    params.update(kwargs)
    return Item2Vec(16, **params)


def test_fit_sets_vectors_and_ranks_unknown_items_last(small_split):
    train = small_split.train
    model = fast().fit(train, show_progress=False)
    assert model.item_factors.shape == (train.n_items, 16)
    counts = np.asarray(train.user_items.sum(axis=0)).ravel()
    np.testing.assert_array_equal(model.in_vocabulary, counts >= 2)
    assert not model.item_factors[~model.in_vocabulary].any()
    scores = model.score_items(np.arange(3), train)
    assert scores.shape == (3, train.n_items)
    assert np.all(scores[:, ~model.in_vocabulary] == UNKNOWN_SCORE)
    assert np.all(np.abs(scores[:, model.in_vocabulary]) <= 1 + 1e-5)  # cosines
    ids, sims = model.similar_items(int(np.flatnonzero(model.in_vocabulary)[0]), N=4)
    assert ids.shape == (4,) and sims[0] == pytest.approx(1.0, abs=1e-5)


def test_same_seed_same_vectors_other_seed_other_vectors(small_split):
    a = fast().fit(small_split.train, show_progress=False).item_factors
    b = fast().fit(small_split.train, show_progress=False).item_factors
    c = fast(random_state=1).fit(small_split.train, show_progress=False).item_factors
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_a_matrix_is_treated_as_sets_and_decay_needs_order(small_split):
    train = small_split.train
    model = fast(half_life=5.0).fit(train.user_items, show_progress=False)  # no order: shuffled sets
    assert model.in_vocabulary.any()
    with pytest.raises(TypeError, match="time order"):
        model.score_items(0, train.user_items[0])
    assert model.score_items(0, train).shape == (train.n_items,)


def test_mean_profile_matches_a_hand_computation(small_split):
    train = small_split.train
    model = fast().fit(train, show_progress=False)
    history = train.user_items[5].indices
    unit = model.item_factors / np.maximum(np.linalg.norm(model.item_factors, axis=1, keepdims=True), 1e-12)
    profile = unit[history].mean(axis=0)
    expected = unit @ (profile / np.linalg.norm(profile))
    scores = model.score_items(5, train.user_items[5])
    known = model.in_vocabulary
    np.testing.assert_allclose(scores[known], expected[known], atol=1e-5)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"window": 0}, "window=0"),
        ({"negative": -1}, "negative=-1"),
        ({"sample": -0.1}, "sample=-0.1"),
        ({"ns_exponent": float("nan")}, "ns_exponent=nan"),
        ({"pooling": "median"}, "pooling='median'"),
        ({"pooling": "max", "half_life": 3.0}, "half_life=3.0"),
        ({"half_life": 0.0}, "half_life=0.0"),
    ],
)
def test_bad_hyperparameters_name_the_value(small_split, params, message):
    with pytest.raises(ValueError, match=message):
        fast(**params).fit(small_split.train, show_progress=False)


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        fast().fit(sp.csr_matrix((4, 4), dtype=np.float32), show_progress=False)
