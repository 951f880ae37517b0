"""EASE: the closed form and its constraint."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.models.ease import EASE

def binary(n_users, n_items, density, seed):
    """A random 0/1 user x item CSR matrix."""
    return sp.random(n_users, n_items, density=density, format="csr", random_state=seed, data_rvs=np.ones,
                     dtype=np.float32)



def test_closed_form_solves_the_constrained_problem():
    X = binary(40, 12, 0.3, 0)
    lam = 5.0
    B = EASE(lam).fit(X).item_weights.astype(np.float64)
    assert np.allclose(np.diag(B), 0)
    G = (X.T @ X).toarray()
    # stationarity: (G + lam I) B - G is diagonal (the Lagrange multipliers of diag(B) = 0)
    residual = (G + lam * np.eye(12)) @ B - G
    off_diagonal = residual - np.diag(np.diag(residual))
    assert np.abs(off_diagonal).max() < 1e-3


def test_scores_are_history_times_weights():
    X = binary(30, 10, 0.3, 1)
    model = EASE(10.0).fit(X)
    np.testing.assert_allclose(model.score_items(np.arange(3), X[:3]), X[:3].toarray() @ model.item_weights,
                               rtol=1e-5, atol=1e-6)
    new_user = sp.csr_matrix(np.eye(1, 10, 2, dtype=np.float32))  # scored without refitting
    ids, _ = model.recommend(0, new_user, N=3)
    assert 2 not in ids


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_bad_regularization(value):
    with pytest.raises(ValueError, match="regularization="):
        EASE(value).fit(binary(5, 4, 0.5, 0))


def test_too_many_items(monkeypatch):
    import recsys_lab.models.ease as ease

    monkeypatch.setattr(ease, "MAX_ITEMS", 3)
    with pytest.raises(ValueError, match="4 items exceed MAX_ITEMS=3"):
        EASE().fit(binary(5, 4, 0.5, 0))
