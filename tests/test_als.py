"""Implicit ALS: shapes, determinism, loss, the CG solve against a direct solve, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.models.als import (
    ImplicitALS,
    _conjugate_gradient,
    _SparsePairs,
    _confidence,
    implicit_als_loss,
    solve_user_factors,
)


@pytest.fixture(scope="module")
def user_items():
    rng = np.random.default_rng(0)
    matrix = sp.random(60, 40, density=0.15, format="csr", random_state=0, dtype=np.float32)
    matrix.data = rng.integers(1, 4, size=matrix.nnz).astype(np.float32)  # counts 1..3
    return matrix


def dense_user_solve(row, item_factors, regularization, alpha):
    """The textbook normal equations with the full n_items x n_items C_u."""
    r = row.toarray().ravel().astype(np.float64)
    Y = item_factors.astype(np.float64)
    C = np.diag(1.0 + alpha * r)
    p = (r > 0).astype(np.float64)
    A = Y.T @ C @ Y + regularization * np.eye(Y.shape[1])
    return np.linalg.solve(A, Y.T @ C @ p)


def test_shapes_dtype_and_params(user_items):
    model = ImplicitALS(8, regularization=0.1, alpha=2.0, iterations=3, random_state=0)
    assert model.fit(user_items, show_progress=False) is model
    assert model.user_factors.shape == (60, 8) and model.item_factors.shape == (40, 8)
    assert model.user_factors.dtype == np.float32
    assert model.get_params()["alpha"] == 2.0
    assert repr(model).startswith("ImplicitALS(factors=8")
    ids, scores = model.recommend(np.arange(3), user_items[:3], N=5)
    assert ids.shape == scores.shape == (3, 5)
    assert not np.any(user_items[:3].toarray()[np.arange(3)[:, None], ids])


def test_determinism_under_random_state(user_items):
    fit = lambda seed: ImplicitALS(8, iterations=3, random_state=seed).fit(user_items, show_progress=False)
    a, b, c = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    assert not np.allclose(a.item_factors, c.item_factors)
    shared = np.random.default_rng(5)
    assert ImplicitALS(8, iterations=1, random_state=shared).fit(user_items, show_progress=False).n_items == 40


def test_loss_decreases(user_items):
    model = ImplicitALS(8, regularization=0.1, alpha=5.0, iterations=8, calculate_training_loss=True,
                        random_state=0).fit(user_items, show_progress=False)
    losses = np.array(model.loss_history_)
    assert len(losses) == 8
    assert np.all(np.diff(losses) <= 1e-6), losses
    assert losses[-1] < 0.8 * losses[0]


def test_loss_matches_dense_formula(user_items):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(60, 4)), rng.normal(size=(40, 4))
    R = user_items.toarray()
    C, P = 1 + 3.0 * R, (R > 0).astype(float)
    dense = (np.sum(C * (P - X @ Y.T) ** 2) + 0.2 * (np.sum(X**2) + np.sum(Y**2))) / R.size
    assert np.isclose(implicit_als_loss(user_items, X, Y, regularization=0.2, alpha=3.0), dense)


def test_solve_user_factors_matches_direct_solve(user_items):
    Y = np.random.default_rng(2).normal(size=(40, 6)).astype(np.float32)
    solved = solve_user_factors(user_items, Y, regularization=0.3, alpha=4.0)
    assert solved.shape == (60, 6) and solved.dtype == np.float32
    for u in (0, 7, 59):
        np.testing.assert_allclose(solved[u], dense_user_solve(user_items[u], Y, 0.3, 4.0), rtol=1e-4, atol=1e-5)


def test_user_without_interactions_gets_zero_vector(user_items):
    rows = user_items[:3].tolil()
    rows[1, :] = 0
    solved = solve_user_factors(rows.tocsr(), np.ones((40, 3)), regularization=0.1, alpha=1.0)
    np.testing.assert_array_equal(solved[1], 0.0)


def test_cg_converges_to_direct_solve(user_items):
    """With as many CG steps as factors, CG on a k x k system is exact (up to rounding)."""
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(40, 6)).astype(np.float32)
    X = np.zeros((60, 6), dtype=np.float32)
    _conjugate_gradient(_SparsePairs(_confidence(user_items, 4.0)), X, Y, 0.3, cg_steps=12)
    direct = solve_user_factors(user_items, Y, regularization=0.3, alpha=4.0)
    np.testing.assert_allclose(X, direct, rtol=1e-3, atol=1e-3)


def test_torch_and_numpy_sampled_products_agree(user_items, monkeypatch):
    import recsys_lab.models.als as als

    rng = np.random.default_rng(5)
    P = rng.normal(size=(60, 6)).astype(np.float32)
    Y = rng.normal(size=(40, 6)).astype(np.float32)
    confidence = _confidence(user_items, 2.0)
    numpy_pairs = _SparsePairs(confidence)
    monkeypatch.setattr(als, "_TORCH_MIN_NNZ", 0)
    torch_pairs = _SparsePairs(confidence)
    assert numpy_pairs.pattern is None and torch_pairs.pattern is not None
    rows = np.repeat(np.arange(60), np.diff(confidence.indptr))
    expected = np.einsum("pk,pk->p", P[rows], Y[confidence.indices])
    np.testing.assert_allclose(numpy_pairs.sampled_dot(P, Y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch_pairs.sampled_dot(P, Y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch_pairs.correction(P, Y), numpy_pairs.correction(P, Y), rtol=1e-4, atol=1e-4)


def test_three_cg_steps_already_close(user_items):
    rng = np.random.default_rng(4)
    Y = rng.normal(size=(40, 6)).astype(np.float32)
    direct = solve_user_factors(user_items, Y, regularization=0.3, alpha=4.0)
    X = np.zeros_like(direct)
    _conjugate_gradient(_SparsePairs(_confidence(user_items, 4.0)), X, Y, 0.3, cg_steps=3)
    assert np.linalg.norm(X - direct) < 0.5 * np.linalg.norm(direct)


def test_matches_implicit_library(user_items):
    implicit_als = pytest.importorskip("implicit.cpu.als")
    ours = ImplicitALS(8, regularization=0.1, alpha=2.0, iterations=5, random_state=0).fit(user_items, show_progress=False)
    confidence = user_items.copy()
    confidence.data = 1 + 2.0 * confidence.data
    theirs = implicit_als.AlternatingLeastSquares(8, regularization=0.1, alpha=1.0, iterations=5, random_state=0)
    theirs.fit(confidence, show_progress=False)
    # same start, same sweeps: float32 rounding is the only difference
    for mine, library in ((ours.user_factors, theirs.user_factors), (ours.item_factors, theirs.item_factors)):
        assert np.linalg.norm(mine - library) < 1e-2 * np.linalg.norm(library)


def test_recalculate_user_and_no_mutation(user_items):
    before = user_items.copy()
    model = ImplicitALS(4, iterations=2, random_state=0).fit(user_items, show_progress=False)
    assert (user_items != before).nnz == 0
    assert model.recalculate_user(user_items[:5]).shape == (5, 4)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"factors": 0}, "factors=0"),
        ({"regularization": -1.0}, "regularization=-1.0"),
        ({"alpha": -2.0}, "alpha=-2.0"),
        ({"iterations": 0}, "iterations=0"),
        ({"cg_steps": 0}, "cg_steps=0"),
    ],
)
def test_bad_hyperparameters(user_items, params, match):
    with pytest.raises(ValueError, match=match):
        ImplicitALS(**params).fit(user_items, show_progress=False)


def test_bad_matrices():
    with pytest.raises(ValueError, match="empty"):
        ImplicitALS(4).fit(sp.csr_matrix((5, 3), dtype=np.float32), show_progress=False)
    negative = sp.csr_matrix(np.array([[1.0, -1.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="negative"):
        ImplicitALS(4).fit(negative, show_progress=False)
    with pytest.raises(TypeError, match="csr_matrix"):
        ImplicitALS(4).fit(np.ones((3, 3)), show_progress=False)


def test_solve_user_factors_bad_input(user_items):
    with pytest.raises(ValueError, match=r"item_factors has shape \(39, 4\)"):
        solve_user_factors(user_items, np.ones((39, 4)), regularization=0.1, alpha=1.0)
    with pytest.raises(ValueError, match="NaN"):
        solve_user_factors(user_items, np.full((40, 4), np.nan), regularization=0.1, alpha=1.0)
    with pytest.raises(ValueError, match="alpha=-1.0"):
        solve_user_factors(user_items, np.ones((40, 4)), regularization=0.1, alpha=-1.0)


def test_not_fitted():
    with pytest.raises(RuntimeError, match="not fitted"):
        ImplicitALS(4).recalculate_user(sp.csr_matrix(np.ones((1, 3))))
