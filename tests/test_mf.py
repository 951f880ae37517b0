"""Biased MF by SGD: shapes, determinism, learning, the update rule, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.models.mf import BiasedMF, add_rows


@pytest.fixture(scope="module")
def ratings():
    """Ratings from a planted rank-2 model plus biases, on 40% of a 60 x 40 grid."""
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(60, 2)), rng.normal(size=(40, 2))
    full = 3.5 + 0.5 * rng.normal(size=(60, 1)) + 0.5 * rng.normal(size=(1, 40)) + P @ Q.T
    mask = rng.random(full.shape) < 0.4
    rows, cols = np.nonzero(mask)
    return sp.csr_matrix((np.clip(full[rows, cols], 1, 5), (rows, cols)), shape=full.shape)


def fit(ratings, **params):
    defaults = dict(factors=4, lr=0.02, regularization=0.02, epochs=30, batch_size=16, random_state=0)
    return BiasedMF(**{**defaults, **params}).fit(ratings, show_progress=False)


def test_shapes_and_predictions(ratings):
    model = fit(ratings)
    assert model.user_factors.shape == (60, 4) and model.item_factors.shape == (40, 4)
    assert model.user_bias_.shape == (60,) and model.item_bias_.shape == (40,)
    predicted = model.predict([0, 1, 2], [3, 4, 5])
    assert predicted.shape == (3,) and np.all((predicted >= 1) & (predicted <= 5))
    scores = model.score_items(np.array([0, 1]), ratings[:2])
    np.testing.assert_allclose(scores[0, [3]], model.predict([0], [3], clip=False))
    assert model.recommend(0, ratings[0], N=5)[0].shape == (5,)


def test_determinism(ratings):
    a, b, c = fit(ratings), fit(ratings), fit(ratings, random_state=1)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    np.testing.assert_array_equal(a.user_bias_, b.user_bias_)
    assert not np.allclose(a.item_factors, c.item_factors)


def test_training_error_decreases_and_beats_the_mean(ratings):
    model = fit(ratings, epochs=40)
    history = np.array(model.train_rmse_history_)
    assert history[-1] < 0.6 * history[0]
    assert np.all(np.diff(history[5:]) < 1e-3)
    users = np.repeat(np.arange(60), np.diff(ratings.indptr))
    baseline = np.sqrt(np.mean((ratings.data - ratings.data.mean()) ** 2))
    assert np.sqrt(np.mean((ratings.data - model.predict(users, ratings.indices)) ** 2)) < 0.5 * baseline


def test_validation_curve_is_recorded(ratings):
    model = BiasedMF(4, epochs=5, random_state=0).fit(ratings[:, :30], eval_ratings=ratings[:, :30], show_progress=False)
    assert len(model.valid_rmse_history_) == 5


def test_one_sgd_step_follows_the_update_rule():
    """With one rating, one epoch and batch size 1 the update is the textbook formula."""
    one = sp.csr_matrix(([4.0], ([0], [0])), shape=(1, 1))
    model = BiasedMF(2, lr=0.1, regularization=0.5, bias_regularization=0.2, epochs=1, batch_size=1, random_state=3)
    model.fit(one, show_progress=False)
    rng = np.random.default_rng(3)
    p, q = 0.1 * rng.standard_normal((1, 2))[0], 0.1 * rng.standard_normal((1, 2))[0]
    error = 4.0 - (4.0 + 0.0 + 0.0 + p @ q)
    np.testing.assert_allclose(model.user_factors[0], p + 0.1 * (error * q - 0.5 * p))
    np.testing.assert_allclose(model.item_factors[0], q + 0.1 * (error * p - 0.5 * q))
    np.testing.assert_allclose(model.user_bias_[0], 0.1 * error)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"factors": 0}, "factors=0"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"regularization": -0.1}, "regularization=-0.1"),
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_hyperparameters(ratings, params, match):
    with pytest.raises(ValueError, match=match):
        BiasedMF(**params).fit(ratings, show_progress=False)


def test_bad_input_and_divergence(ratings):
    with pytest.raises(ValueError, match="empty"):
        BiasedMF(2).fit(sp.csr_matrix((4, 4)), show_progress=False)
    with pytest.raises(ValueError, match="eval_ratings has shape"):
        BiasedMF(2).fit(ratings, eval_ratings=ratings[:10], show_progress=False)
    with pytest.raises(FloatingPointError, match="diverged"), np.errstate(all="ignore"):
        BiasedMF(4, lr=50.0, epochs=3, random_state=0).fit(ratings, show_progress=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        BiasedMF(2).predict([0], [0])


@pytest.mark.parametrize("epochs", [1, 5])
def test_divergence_raises_even_when_the_factors_stay_finite(ratings, epochs):
    """lr=1.0 blows up within the first epoch: huge but finite factors must not pass as a fitted model."""
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 1: training RMSE .* Lower the learning rate"), \
            np.errstate(all="ignore"):
        BiasedMF(lr=1.0, epochs=epochs, random_state=0).fit(ratings, show_progress=False)


def test_large_initial_vectors_are_not_mistaken_for_divergence(ratings):
    model = BiasedMF(16, init_std=1.0, lr=0.005, epochs=3, random_state=0).fit(ratings, show_progress=False)
    assert np.isfinite(model.train_rmse_history_).all()


def test_add_rows_matches_np_add_at_with_repeated_rows():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((7, 3))
    rows = np.array([0, 3, 3, 6, 0, 3])
    updates = rng.standard_normal((6, 3))
    expected = target.copy()
    np.add.at(expected, rows, updates)
    add_rows(target, rows, updates)
    np.testing.assert_allclose(target, expected, rtol=1e-12)


def test_add_rows_refuses_a_target_it_would_copy():
    with pytest.raises(ValueError, match="C-contiguous"):
        add_rows(np.zeros((4, 6))[:, ::2], np.array([0, 1]), np.ones((2, 3)))
