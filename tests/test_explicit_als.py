"""Explicit ALS: mean normalization on the tiny table, the closed-form step, objective, errors."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.data import load_tiny_ratings
from recsys_lab.models.explicit_als import ExplicitALS, weighted_ridge_solve


def table_to_csr(table):
    values = table.to_numpy()
    rows, cols = np.nonzero(~np.isnan(values))
    return sp.csr_matrix((values[rows, cols], (rows, cols)), shape=values.shape)


@pytest.fixture(scope="module")
def tiny():
    table = load_tiny_ratings()
    return table, table_to_csr(table)


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(0)
    pattern = sp.random(50, 30, density=0.3, format="csr", random_state=0)
    pattern.data = rng.integers(1, 6, size=pattern.nnz).astype(np.float64)
    return pattern


def test_zero_ratings_are_kept(tiny):
    """A stored 0 is a rating of 0 stars: the model keeps it (no warning), so the item means count it."""
    table, csr = tiny
    assert csr.nnz == int(table.notna().to_numpy().sum())
    assert csr.shape == (5, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ExplicitALS(2, iterations=2, random_state=0).fit(csr, show_progress=False)
    np.testing.assert_allclose(model.item_means_, table.mean().to_numpy())
    assert model.rating_range_ == (0.0, 5.0)


def test_new_user_gets_item_means_with_normalization(tiny):
    table, csr = tiny
    eve = list(table.index).index("Eve")
    model = ExplicitALS(2, regularization=0.1, random_state=0).fit(csr, show_progress=False)
    predicted = model.predict(np.full(5, eve), np.arange(5))
    np.testing.assert_allclose(predicted, table.mean().to_numpy())
    np.testing.assert_array_equal(model.user_factors[eve], 0.0)


def test_new_user_gets_zeros_without_normalization(tiny):
    table, csr = tiny
    eve = list(table.index).index("Eve")
    model = ExplicitALS(2, regularization=0.1, normalize="none", random_state=0).fit(csr, show_progress=False)
    np.testing.assert_allclose(model.predict(np.full(5, eve), np.arange(5), clip=False), 0.0)


def test_user_means(ratings):
    model = ExplicitALS(3, normalize="user", iterations=2, random_state=0).fit(ratings, show_progress=False)
    counts = np.diff(ratings.indptr)
    expected = np.asarray(ratings.sum(1)).ravel() / np.maximum(counts, 1)
    np.testing.assert_allclose(model.user_means_[counts > 0], expected[counts > 0])
    np.testing.assert_array_equal(model.item_means_, 0.0)


def test_both_means_are_item_means_plus_user_offsets(ratings):
    model = ExplicitALS(3, normalize="both", iterations=2, random_state=0).fit(ratings, show_progress=False)
    dense = ratings.toarray()
    observed = np.zeros_like(dense, dtype=bool)
    observed[ratings.nonzero()] = True
    item_means = np.array([dense[observed[:, i], i].mean() if observed[:, i].any() else dense[observed].mean()
                           for i in range(dense.shape[1])])
    offsets = np.array([(dense[u, observed[u]] - item_means[observed[u]]).mean() if observed[u].any() else 0.0
                        for u in range(dense.shape[0])])
    np.testing.assert_allclose(model.item_means_, item_means)
    np.testing.assert_allclose(model.user_means_, offsets)


def without_user_and_item(ratings, user, item):
    """``ratings`` with one user's row and one item's column emptied (a cold user and a cold item)."""
    coo = ratings.tocoo()
    keep = (coo.row != user) & (coo.col != item)
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=ratings.shape)


@pytest.mark.parametrize("normalize", ["item", "user", "both", "biases"])
def test_cold_user_and_cold_item_get_the_baseline(ratings, normalize):
    """With any normalization, a user or item without training ratings is predicted its baseline, never the floor."""
    cold = without_user_and_item(ratings, user=3, item=7)
    model = ExplicitALS(3, regularization=0.1, iterations=4, normalize=normalize, random_state=0).fit(cold, show_progress=False)
    global_mean = cold.data.mean()
    np.testing.assert_array_equal(model.user_factors[3], 0.0)
    np.testing.assert_array_equal(model.item_factors[7], 0.0)
    users, items = np.arange(50), np.full(50, 7)
    cold_item = model.predict(users, items)
    np.testing.assert_allclose(cold_item, np.clip(model.user_means_ + model.item_means_[7], 1, 5))
    if normalize != "user":
        np.testing.assert_allclose(model.item_means_[7], global_mean)      # the item's baseline is the global mean
    cold_user = model.predict(np.full(30, 3), np.arange(30))
    np.testing.assert_allclose(cold_user, np.clip(model.user_means_[3] + model.item_means_, 1, 5))
    if normalize in ("both", "biases"):
        np.testing.assert_allclose(cold_user, model.item_means_)            # a new user gets the item baselines
    assert cold_item.min() > 1.0 and cold_user.min() > 1.0


def test_cold_item_gets_the_lowest_rating_without_normalization(ratings):
    """The failure normalization prevents: without a baseline a film nobody rated is predicted 0, clipped to 1."""
    cold = without_user_and_item(ratings, user=3, item=7)
    model = ExplicitALS(3, iterations=4, normalize="none", random_state=0).fit(cold, show_progress=False)
    np.testing.assert_allclose(model.predict(np.arange(50), np.full(50, 7)), 1.0)


def test_shapes_determinism_and_objective(ratings):
    fit = lambda seed: ExplicitALS(4, regularization=0.05, iterations=6, random_state=seed).fit(ratings, show_progress=False)
    a, b, c = fit(0), fit(0), fit(1)
    assert a.user_factors.shape == (50, 4) and a.item_factors.shape == (30, 4)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    assert not np.allclose(a.item_factors, c.item_factors)
    assert np.all(np.diff(a.objective_history_) <= 1e-9)
    predicted = a.predict(np.arange(5), np.arange(5))
    assert predicted.shape == (5,) and predicted.min() >= 1 and predicted.max() <= 5
    assert a.recommend(0, ratings[0], N=3)[0].shape == (3,)


def test_user_step_is_the_closed_form(ratings):
    """After fitting, each user's vector is its ridge solution against the final item vectors."""
    model = ExplicitALS(3, regularization=0.2, iterations=1, random_state=0).fit(ratings, show_progress=False)
    rng = np.random.default_rng(0)
    Y0 = 0.1 * rng.standard_normal((30, 3))  # the initial item vectors the first user step saw
    for u in (0, 11):
        items = ratings[u].indices
        residual = ratings[u].data - model.item_means_[items]
        Yu = Y0[items]
        direct = np.linalg.solve(Yu.T @ Yu + 0.2 * len(items) * np.eye(3), Yu.T @ residual)
        # the first sweep's user vectors are not stored, so re-solve them with the package
        pattern = sp.csr_matrix((np.ones(len(items)), (np.zeros(len(items), int), items)), shape=(1, 30))
        np.testing.assert_allclose(weighted_ridge_solve(pattern, Y0, (Yu.T @ residual)[None], ridge=0.2 * len(items))[0], direct)


def test_learned_biases_are_the_last_ridge_coordinate(ratings):
    """With normalize="biases", each user's [x_u, b_u] is the ridge solution against [y_i, 1] with targets
    r - mu - b_i, the objective never increases, and predictions add mu + b_u + b_i to the dot product."""
    model = ExplicitALS(3, regularization=0.1, iterations=1, normalize="biases", random_state=0).fit(ratings, show_progress=False)
    mu = ratings.data.mean()
    Y0 = np.hstack([0.1 * np.random.default_rng(0).standard_normal((30, 3)), np.ones((30, 1))])  # what the user step saw
    for u in (0, 11):
        items = ratings[u].indices
        direct = np.linalg.solve(Y0[items].T @ Y0[items] + 0.1 * len(items) * np.eye(4), Y0[items].T @ (ratings[u].data - mu))
        np.testing.assert_allclose(np.append(model.user_factors[u], model.user_means_[u]), direct)
    model = ExplicitALS(3, regularization=0.1, iterations=5, normalize="biases", random_state=0).fit(ratings, show_progress=False)
    assert np.all(np.diff(model.objective_history_) <= 1e-9)
    item_bias = model.item_means_ - mu
    users, items = ratings.nonzero()
    expected = mu + model.user_means_[users] + item_bias[items] + np.einsum(
        "pk,pk->p", model.user_factors[users], model.item_factors[items])
    np.testing.assert_allclose(model.predict(users, items, clip=False), expected)


def test_learned_biases_recover_planted_biases():
    """Ratings made of a global mean, user and item biases and noise: the learned biases find them, and the
    fit beats the precomputed item-mean-plus-offset baseline, which mixes the two effects up when users
    rate different films."""
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 80
    user_bias, item_bias = rng.normal(0, 0.6, n_users), rng.normal(0, 0.6, n_items)
    rows, cols = [], []
    for u in range(n_users):   # harsh users (low bias) rate the good films (high bias) more often
        weights = np.exp(-2 * user_bias[u] * item_bias)
        chosen = rng.choice(n_items, size=25, replace=False, p=weights / weights.sum())
        rows += [u] * 25
        cols += list(chosen)
    rows, cols = np.array(rows), np.array(cols)
    values = 5.0 + user_bias[rows] + item_bias[cols] + rng.normal(0, 0.3, len(rows))   # all positive
    ratings = sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_items))
    fit = lambda normalize: ExplicitALS(1, regularization=0.01, iterations=10, normalize=normalize,
                                        random_state=0).fit(ratings, show_progress=False)
    learned, fixed = fit("biases"), fit("both")
    assert np.corrcoef(learned.item_means_, item_bias)[0, 1] > 0.95
    assert np.corrcoef(learned.user_means_, user_bias)[0, 1] > 0.95
    baseline_error = lambda m: np.sqrt(np.mean((values - m.user_means_[rows] - m.item_means_[cols]) ** 2))
    assert baseline_error(learned) < baseline_error(fixed)


def test_weighted_ridge_solve_against_a_loop():
    rng = np.random.default_rng(1)
    weights = sp.random(7, 9, density=0.5, format="csr", random_state=1)
    F = rng.normal(size=(9, 4))
    targets = rng.normal(size=(7, 4))
    base = np.eye(4) * 0.5
    ridge = rng.uniform(0.1, 1.0, size=7)
    solved = weighted_ridge_solve(weights, F, targets, ridge=ridge, base=base)
    for u in range(7):
        w = weights[u].toarray().ravel()
        A = base + F.T @ (w[:, None] * F) + ridge[u] * np.eye(4)
        np.testing.assert_allclose(solved[u], np.linalg.solve(A, targets[u]))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"factors": 0}, "factors=0"),
        ({"regularization": 0.0}, "regularization=0.0"),
        ({"iterations": 0}, "iterations=0"),
        ({"normalize": "median"}, "normalize='median'"),
    ],
)
def test_bad_hyperparameters(ratings, params, match):
    with pytest.raises(ValueError, match=match):
        ExplicitALS(**params).fit(ratings, show_progress=False)


def test_bad_input(ratings):
    with pytest.raises(ValueError, match="empty"):
        ExplicitALS(2).fit(sp.csr_matrix((3, 3)), show_progress=False)
    with pytest.raises(ValueError, match="negative"):
        ExplicitALS(2).fit(sp.csr_matrix(np.array([[-1.0, 2.0]])), show_progress=False)
    with pytest.raises(ValueError, match="NaN"):
        ExplicitALS(2).fit(sp.csr_matrix(np.array([[np.nan, 2.0]])), show_progress=False)
    with pytest.raises(TypeError, match="ndarray"):
        ExplicitALS(2).fit(np.ones((3, 3)), show_progress=False)
    model = ExplicitALS(2, iterations=1, random_state=0).fit(ratings, show_progress=False)
    with pytest.raises(ValueError, match="pair up"):
        model.predict([0, 1], [0])
    with pytest.raises(ValueError, match="itemid 30"):
        model.predict([0], [30])
