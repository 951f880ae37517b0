"""Implicit-feedback ALS (Hu, Koren & Volinsky, 2008) with a batched conjugate-gradient solve.

Implicit feedback says what a user did, never what they disliked. iALS treats
*every* (user, item) pair as an observation: a preference ``p_ui`` (1 if the
user interacted, else 0) held with a confidence ``c_ui = 1 + alpha * r_ui``,
so missing pairs are weak negatives and interactions strong positives:

.. math::

    \\min_{X, Y} \\sum_{u, i} c_{ui} (p_{ui} - x_u^\\top y_i)^2
        + \\lambda (\\lVert X \\rVert_F^2 + \\lVert Y \\rVert_F^2).

With the item vectors fixed, each user's vector solves a ridge regression,

.. math::

    (Y^\\top Y + Y^\\top (C_u - I) Y + \\lambda I)\\, x_u = Y^\\top C_u p_u,

where only the user's own items enter the correction ``Y^T (C_u - I) Y``:
that trick (the shared Gram matrix ``Y^T Y``) is what makes the all-pairs
loss affordable. Items are solved the same way against the users.

Solving each k x k system exactly costs O(nnz k^2 + n k^3) per sweep; a few
conjugate-gradient steps warm-started from the previous sweep (Takacs,
Pilaszy & Tikk, 2011) cost O(nnz k) and are what ``implicit`` runs by
default. Here the CG runs for *all* users at once: the products ``A_u p_u``
become one dense product with the Gram matrix, one sampled dense-dense
product (the ``x_u . y_i`` on the stored pairs: ``torch.sparse.sampled_addmm``
on large matrices, a chunked numpy gather on small ones) and one sparse-dense
product (scipy). This module imports torch.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from recsys_lab.models.base import FactorRecommender
from recsys_lab.models.explicit_als import weighted_ridge_solve
from recsys_lab.validation import (
    check_factors_finite,
    check_nonnegative_float,
    check_positive_int,
    check_random_state,
    check_user_items,
)

__all__ = ["ImplicitALS", "solve_user_factors", "implicit_als_loss", "confidence_matrix"]

logger = logging.getLogger("recsys_lab")

_TINY = 1e-20                 # residuals below this count as solved (as in implicit)
_TORCH_MIN_NNZ = 1_000_000    # stored pairs from which torch's threaded sampled product pays off
_NUMPY_CHUNK = 4096           # stored pairs per numpy gather


class ImplicitALS(FactorRecommender):
    """Implicit ALS: confidence-weighted matrix factorization of all user-item pairs.

    Parameters
    ----------
    factors : int
        Embedding dimension k. Rendle et al. (2022) find that too small a
        dimension is the most common reason iALS underperforms.
    regularization : float
        L2 weight lambda on every user and item vector (>= 0).
    alpha : float
        Confidence slope: an interaction of strength r weighs 1 + alpha * r,
        every missing pair weighs 1. Tune it together with ``regularization``.
    iterations : int
        Alternating sweeps (users, then items).
    cg_steps : int
        Conjugate-gradient steps per solve, warm-started from the previous sweep.
    calculate_training_loss : bool
        Record the training loss after every sweep in ``loss_history_``.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors, uniform in [0, 0.01) as in ``implicit``.

    Attributes
    ----------
    user_factors : ndarray of shape (n_users, factors), float32
    item_factors : ndarray of shape (n_items, factors), float32
    loss_history_ : list of float
        Mean loss per pair after each sweep (empty unless requested).

    Notes
    -----
    ``implicit.als.AlternatingLeastSquares`` uses the confidence
    ``alpha * r`` directly. Passing it the matrix ``1 + alpha * r`` (with its
    ``alpha=1``) gives the same problem, and with the same ``random_state``
    the same starting point.

    References
    ----------
    Hu, Koren & Volinsky (2008). Collaborative filtering for implicit feedback
    datasets. ICDM. Takacs, Pilaszy & Tikk (2011). Applications of the
    conjugate gradient method for implicit feedback collaborative filtering.
    RecSys. Rendle, Krichene, Zhang & Koren (2022). Revisiting the performance
    of iALS on item recommendation benchmarks. RecSys.

    Examples
    --------
    >>> model = ImplicitALS(64, regularization=0.05, alpha=5.0, random_state=0).fit(train.user_items)
    >>> ids, scores = model.recommend(0, train.user_items[0], N=10)
    """

    def __init__(self, factors: int = 64, *, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, cg_steps: int = 3, calculate_training_loss: bool = False,
                 random_state=None):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.calculate_training_loss = calculate_training_loss
        self.random_state = random_state
        self.loss_history_: list[float] = []

    def fit(self, user_items, *, show_progress: bool = True) -> "ImplicitALS":
        """Factorize ``user_items`` (CSR (n_users, n_items) of interaction strengths r >= 0)."""
        user_items = check_user_items(user_items)
        factors = check_positive_int(self.factors, "factors")
        regularization = check_nonnegative_float(self.regularization, "regularization")
        alpha = check_nonnegative_float(self.alpha, "alpha")
        iterations = check_positive_int(self.iterations, "iterations")
        cg_steps = check_positive_int(self.cg_steps, "cg_steps")
        rng = check_random_state(self.random_state)

        n_users, n_items = user_items.shape
        user_factors = rng.random((n_users, factors), dtype=np.float32) * np.float32(0.01)
        item_factors = rng.random((n_items, factors), dtype=np.float32) * np.float32(0.01)
        confidence = _confidence(user_items, alpha)          # (n_users, n_items), 1 + alpha r
        by_user = _SparsePairs(confidence)
        by_item = _SparsePairs(confidence.T.tocsr())          # (n_items, n_users)

        self.loss_history_ = []
        for sweep in tqdm(range(iterations), disable=not show_progress, desc="iALS"):
            # the BLAS calls here are small (k x k Gram products); a BLAS thread pool only adds
            # start-up cost, and contends with torch's threads (implicit gives the same advice)
            with threadpool_limits(1, "blas"):
                _conjugate_gradient(by_user, user_factors, item_factors, regularization, cg_steps)
                _conjugate_gradient(by_item, item_factors, user_factors, regularization, cg_steps)
            if self.calculate_training_loss:
                loss = implicit_als_loss(user_items, user_factors, item_factors,
                                         regularization=regularization, alpha=alpha)
                self.loss_history_.append(loss)
                logger.debug("iALS sweep %d loss %.6f", sweep + 1, loss)
        check_factors_finite(type(self).__name__, user_factors=user_factors, item_factors=item_factors)
        self.user_factors, self.item_factors = user_factors, item_factors
        return self

    def recalculate_user(self, user_items) -> np.ndarray:
        """Exact factors for the users whose histories are the rows of ``user_items``
        (new or changed users), against the fitted item factors; shape (n_rows, factors)."""
        self._check_fitted()
        return solve_user_factors(user_items, self.item_factors,
                                  regularization=self.regularization, alpha=self.alpha)


def solve_user_factors(user_items, item_factors, *, regularization: float, alpha: float) -> np.ndarray:
    """One exact iALS user step: the best user vectors for fixed item vectors.

    Solves, for every row u of ``user_items``,
    ``(Y^T Y + alpha * sum_i r_ui y_i y_i^T + lambda I) x_u = sum_i (1 + alpha r_ui) y_i``
    with ``np.linalg.solve`` (no iteration; see
    :func:`recsys_lab.models.explicit_als.weighted_ridge_solve`). This is the
    "dual embedding" of a user against item vectors learned elsewhere, and the
    fold-in of a new user into a fitted model. A row with no interactions gets
    the zero vector.

    Parameters
    ----------
    user_items : csr_matrix of shape (n_rows, n_items)
        Interaction strengths r >= 0, one row per user to solve.
    item_factors : ndarray of shape (n_items, factors)
        Fixed item vectors (from iALS, word2vec, a text encoder, ...).
    regularization : float
        lambda >= 0 (> 0 keeps every system well posed).
    alpha : float
        Confidence slope, as in :class:`ImplicitALS`.

    Returns
    -------
    ndarray of shape (n_rows, factors), float32

    Examples
    --------
    >>> user_vectors = solve_user_factors(train.user_items, item_vectors, regularization=0.1, alpha=5.0)
    >>> scores = user_vectors @ item_vectors.T
    """
    user_items = check_user_items(user_items)
    regularization = check_nonnegative_float(regularization, "regularization")
    alpha = check_nonnegative_float(alpha, "alpha")
    item_factors = np.asarray(item_factors, dtype=np.float64)
    if item_factors.ndim != 2 or item_factors.shape[0] != user_items.shape[1] or item_factors.shape[1] < 1:
        raise ValueError(
            f"item_factors has shape {item_factors.shape}; expected ({user_items.shape[1]}, factors): "
            f"one row per column of user_items."
        )
    if not np.all(np.isfinite(item_factors)):
        raise ValueError("item_factors contains NaN or infinite values.")

    weights = user_items.copy()
    weights.data = alpha * weights.data                                    # c - 1 on stored pairs
    targets = np.asarray(_confidence(user_items, alpha) @ item_factors)    # (n_rows, k)
    out = weighted_ridge_solve(weights, item_factors, targets, ridge=regularization,
                               base=item_factors.T @ item_factors)
    return out.astype(np.float32)


def implicit_als_loss(user_items, user_factors, item_factors, *, regularization: float, alpha: float) -> float:
    """The iALS objective divided by the number of (user, item) pairs.

    The sum over all n_users x n_items pairs is never materialised:
    ``sum_ui (x_u.y_i)^2 = trace((X^T X)(Y^T Y))``, and only stored pairs need
    a correction, so the cost is O(nnz k + (n_users + n_items) k^2).

    >>> implicit_als_loss(train.user_items, model.user_factors, model.item_factors, regularization=0.05, alpha=5.0)
    """
    user_items = check_user_items(user_items)
    X = np.asarray(user_factors, dtype=np.float64)
    Y = np.asarray(item_factors, dtype=np.float64)
    rows = np.repeat(np.arange(user_items.shape[0]), np.diff(user_items.indptr))
    scores = np.einsum("pk,pk->p", X[rows], Y[user_items.indices])        # x_u . y_i on stored pairs
    confidence = 1.0 + alpha * user_items.data.astype(np.float64)
    # all pairs as if p=0, c=1; then swap in the stored pairs' true terms
    loss = np.sum((X.T @ X) * (Y.T @ Y))
    loss += np.sum(confidence * (1.0 - scores) ** 2 - scores**2)
    loss += regularization * (np.sum(X**2) + np.sum(Y**2))
    return float(loss / (user_items.shape[0] * user_items.shape[1]))


def confidence_matrix(user_items, alpha: float) -> sp.csr_matrix:
    """The confidences ``1 + alpha * r`` on the stored pairs, as a float32 CSR.

    ``implicit``'s ALS takes this matrix with its own ``alpha=1`` to solve the
    same problem as :class:`ImplicitALS` with ``alpha``.

    >>> library.fit(confidence_matrix(train.user_items, 2.0))
    """
    return _confidence(check_user_items(user_items), check_nonnegative_float(alpha, "alpha"))


# ---------------------------------------------------------------- internals
def _confidence(user_items: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """CSR with the same pattern and data 1 + alpha * r (float32)."""
    confidence = user_items.copy()
    confidence.data = (1.0 + alpha * confidence.data).astype(np.float32)
    return confidence


class _SparsePairs:
    """A confidence matrix held for the three products the CG needs: ``C @ Y``
    (scipy), and the sampled products ``p_u . y_i`` on the stored pairs.

    The sampled product runs in torch (``sampled_addmm``, threaded) on large
    matrices; below ``_TORCH_MIN_NNZ`` stored pairs the thread start-up costs
    more than it saves and a chunked numpy gather is faster. Both give the
    same numbers up to float32 rounding.
    """

    def __init__(self, confidence: sp.csr_matrix):
        self.confidence = confidence                                       # (n, m), data c
        self.weights = confidence.copy()                                   # data overwritten per product
        self.extra = confidence.data - np.float32(1.0)                     # (nnz,), c - 1
        self.rows = np.repeat(np.arange(confidence.shape[0]), np.diff(confidence.indptr))  # (nnz,)
        self.pattern = None
        if confidence.nnz >= _TORCH_MIN_NNZ:
            with warnings.catch_warnings():  # torch flags its sparse CSR support as beta
                warnings.simplefilter("ignore", UserWarning)
                self.pattern = torch.sparse_csr_tensor(
                    torch.from_numpy(confidence.indptr.astype(np.int64)),
                    torch.from_numpy(confidence.indices.astype(np.int64)),
                    torch.zeros(confidence.nnz, dtype=torch.float32),
                    size=confidence.shape,
                    check_invariants=False,
                )

    def sampled_dot(self, P: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``P[u] . Y[i]`` for every stored pair (u, i), shape (nnz,)."""
        if self.pattern is not None:
            sampled = torch.sparse.sampled_addmm(self.pattern, torch.from_numpy(P),
                                                torch.from_numpy(np.ascontiguousarray(Y.T)), beta=0.0)
            return sampled.values().numpy()
        out = np.empty(len(self.rows), dtype=np.float32)
        cols = self.confidence.indices
        for start in range(0, len(out), _NUMPY_CHUNK):                    # chunks stay in cache
            stop = start + _NUMPY_CHUNK
            out[start:stop] = np.einsum("pk,pk->p", P[self.rows[start:stop]], Y[cols[start:stop]])
        return out

    def correction(self, P: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Rows ``sum_i (c_ui - 1)(p_u . y_i) y_i``, shape (n, k), for P (n, k), Y (m, k)."""
        self.weights.data = self.extra * self.sampled_dot(P, Y)           # (nnz,), (c - 1) p_u . y_i
        return self.weights @ Y


def _conjugate_gradient(pairs: _SparsePairs, X: np.ndarray, Y: np.ndarray, regularization: float,
                        cg_steps: int) -> None:
    """Improve every row of X in place by ``cg_steps`` CG steps on its iALS system."""
    k = X.shape[1]
    gram = Y.T @ Y + np.float32(regularization) * np.eye(k, dtype=np.float32)   # (k, k)

    def times_A(P):                                                        # A_u p_u for all rows, (n, k)
        return P @ gram + pairs.correction(P, Y)

    residual = pairs.confidence @ Y - times_A(X)                          # b - A x, (n, k)
    direction = residual.copy()
    rs_old = np.einsum("nk,nk->n", residual, residual)                    # (n,)
    for _ in range(cg_steps):
        A_dir = times_A(direction)
        curvature = np.einsum("nk,nk->n", direction, A_dir)
        active = rs_old > _TINY
        step = np.where(active, rs_old / np.where(active, curvature, 1.0), 0.0).astype(np.float32)
        X += step[:, None] * direction
        residual -= step[:, None] * A_dir
        rs_new = np.einsum("nk,nk->n", residual, residual)
        beta = np.where(active, rs_new / np.where(active, rs_old, 1.0), 0.0).astype(np.float32)
        direction = residual + beta[:, None] * direction
        rs_old = rs_new
