"""Explicit-feedback ALS with mean normalization (ALS-WR, Zhou et al., 2008).

Ratings are known only where a user rated an item. Explicit ALS fits
``r_ui ~ m + x_u . y_i`` on those entries alone, where ``m`` is a baseline
(the item's mean rating, the user's, or both). Fixing the item vectors makes each
user's problem a small ridge regression with a closed form,

.. math::

    x_u = (Y_u^\\top Y_u + \\lambda n_u I)^{-1} Y_u^\\top (r_u - m_u),

over the ``n_u`` items the user rated (ALS-WR scales the penalty by
``n_u``); items are solved the same way; the two steps alternate.

Why the mean? A user with no ratings has nothing to regress on, so the
ridge solution is ``x_u = 0``. Without normalization every prediction for
them is then 0 (meaningless on a 1-5 scale); with item means subtracted
first and added back, the same zero vector predicts each item's mean rating,
the sensible guess for someone we know nothing about. The same holds for an
item nobody rated: its vector is 0 and its prediction is the baseline.
``normalize="both"`` subtracts the item's mean and then the user's mean
offset from those item means, a biases baseline ``m_ui = mu_i + b_u`` (Koren
2010, without his shrinkage), so both sides of the matrix get a sensible one.

``normalize="biases"`` learns that baseline instead of computing it up front:
``r_ui ~ mu + b_u + b_i + x_u . y_i`` with the global mean ``mu`` fixed and the
biases fitted by the same alternating solves. Appending a constant 1 to the
other side's vectors turns each bias into one more coordinate of the ridge
regression, ``[x_u, b_u] . [y_i, 1]`` in the user step and ``[x_u, 1] . [y_i, b_i]``
in the item step, penalised like the vectors. The biases then absorb what
the precomputed means get wrong (a harsh user's low ratings of popular films
are not all the films' fault), and a user or item without ratings still gets
``b = 0`` and ``x = 0``: the global mean plus the other side's bias.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from recsys_lab.data.interactions import Interactions
from recsys_lab.models.base import FactorRecommender
from recsys_lab.validation import (
    check_factors_finite,
    check_nonnegative_float,
    check_positive_int,
    check_random_state,
    check_user_items,
    check_userids,
)

__all__ = ["ExplicitALS", "weighted_ridge_solve"]

logger = logging.getLogger("recsys_lab")

NORMALIZATIONS = ("item", "user", "both", "biases", "none")
_OUTER_BUDGET = 2**23  # floats in one block of item outer products


def weighted_ridge_solve(weights: sp.csr_matrix, factors: np.ndarray, targets: np.ndarray, *,
                         ridge, base: np.ndarray | None = None) -> np.ndarray:
    """Solve ``(base + sum_i w_ui f_i f_i^T + ridge_u I) x_u = targets_u`` for every row u.

    The batched closed-form step shared by explicit ALS and implicit ALS.
    The weighted Gram matrices are one sparse-dense product
    ``weights @ [f_i f_i^T]`` (cost O(nnz k^2)), taken in blocks of rows and
    items so memory stays bounded, then ``np.linalg.solve`` on the batch.

    Parameters
    ----------
    weights : csr_matrix of shape (n_rows, m)
        Per-pair weights (1 for explicit ALS; alpha * r for implicit ALS).
    factors : ndarray of shape (m, k)
        The fixed side's vectors.
    targets : ndarray of shape (n_rows, k)
        Right-hand sides.
    ridge : float or ndarray of shape (n_rows,)
        Diagonal added per row (lambda, or lambda * n_u for ALS-WR).
    base : ndarray of shape (k, k), optional
        A matrix shared by every row (``Y^T Y`` in implicit ALS).

    Returns
    -------
    ndarray of shape (n_rows, k), float64

    Examples
    --------
    >>> X = weighted_ridge_solve(pattern, Y, pattern @ Y, ridge=0.1)
    """
    factors = np.asarray(factors, dtype=np.float64)
    n_rows, k = weights.shape[0], factors.shape[1]
    ridge = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (n_rows,))
    base = np.zeros((k, k)) if base is None else np.asarray(base, dtype=np.float64)
    item_block = max(1, _OUTER_BUDGET // (k * k))
    row_block = max(1, _OUTER_BUDGET // (k * k))
    out = np.empty((n_rows, k))
    for start in range(0, n_rows, row_block):
        rows = weights[start : start + row_block]
        active = np.unique(rows.indices)              # only the items these rows touch cost anything
        rows = rows[:, active]
        systems = np.broadcast_to(base, (rows.shape[0], k, k)).copy()                # (r, k, k)
        for first in range(0, len(active), item_block):
            block = factors[active[first : first + item_block]]                       # (b, k)
            outer = np.einsum("bk,bl->bkl", block, block).reshape(len(block), k * k)  # (b, k*k)
            systems += np.asarray(rows[:, first : first + item_block] @ outer).reshape(-1, k, k)
        systems[:, np.arange(k), np.arange(k)] += ridge[start : start + rows.shape[0], None]
        out[start : start + rows.shape[0]] = np.linalg.solve(systems, targets[start : start + row_block, :, None])[..., 0]
    return out


class ExplicitALS(FactorRecommender):
    """Alternating least squares on observed ratings, with mean normalization.

    Parameters
    ----------
    factors : int
        Embedding dimension k.
    regularization : float
        lambda; each row's penalty is ``lambda * max(n_u, 1)`` (ALS-WR).
    iterations : int
        Alternating sweeps (users, then items).
    normalize : {"item", "user", "both", "biases", "none"}
        Which baseline to subtract before factorizing and add back after:
        the item's mean rating, the user's, or both (the item's mean plus
        the user's mean offset from it); ``"biases"`` learns a user and an
        item bias around the global mean with the factors instead. An item
        (user) with no ratings gets the global mean as its mean and an offset
        or bias of 0, so with any normalization a user or item without
        training ratings is predicted its baseline. ``"none"`` predicts 0 for
        them (clipped to the lowest rating by :meth:`predict`): it is there
        to show why the mean matters.
    random_state : None, int or numpy.random.Generator
        Seeds the initial item vectors, normal with scale 0.1.

    Attributes
    ----------
    user_factors : ndarray of shape (n_users, factors)
    item_factors : ndarray of shape (n_items, factors)
    user_means_, item_means_ : ndarray of shape (n_users,), (n_items,)
        The baseline added back, ``user_means_[u] + item_means_[i]`` (zeros
        for the side not normalized; with ``"both"``, ``user_means_`` holds
        each user's offset from the item means; with ``"biases"``, the learned
        ``b_u`` and ``mu + b_i``).
    objective_history_ : list of float
        The ALS-WR objective after each sweep (it never increases).

    References
    ----------
    Zhou, Wilkinson, Schreiber & Pan (2008). Large-scale parallel collaborative
    filtering for the Netflix prize. AAIM. Koren, Bell & Volinsky (2009).
    Matrix factorization techniques for recommender systems. IEEE Computer.
    Koren (2010). Factor in the neighbors: scalable and accurate
    collaborative filtering. ACM TKDD (the biases baseline).

    Examples
    --------
    >>> model = ExplicitALS(20, regularization=0.05, random_state=0).fit(ratings_csr)
    >>> model.predict([0, 0], [10, 20])
    """

    def __init__(self, factors: int = 20, *, regularization: float = 0.05, iterations: int = 15,
                 normalize: str = "item", random_state=None):
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.normalize = normalize
        self.random_state = random_state
        self.objective_history_: list[float] = []

    def fit(self, ratings, *, show_progress: bool = True) -> "ExplicitALS":
        """Fit on ``ratings``: a CSR (n_users, n_items) whose *stored* entries are
        the observed ratings (explicit zeros count), or an ``Interactions``."""
        ratings = _check_ratings(ratings)
        factors = check_positive_int(self.factors, "factors")
        regularization = check_nonnegative_float(self.regularization, "regularization", strictly_positive=True)
        iterations = check_positive_int(self.iterations, "iterations")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize={self.normalize!r} is not one of {NORMALIZATIONS}.")
        rng = check_random_state(self.random_state)

        n_users, n_items = ratings.shape
        self.user_means_, self.item_means_ = _means(ratings, self.normalize)
        residual = ratings.astype(np.float64)                                   # (n_users, n_items)
        rows = np.repeat(np.arange(n_users), np.diff(residual.indptr))
        residual.data = residual.data - self.user_means_[rows] - self.item_means_[residual.indices]
        residual_t = residual.T.tocsr()
        pattern, pattern_t = _ones_like(residual), _ones_like(residual_t)
        ridge_users = regularization * np.maximum(np.diff(residual.indptr), 1)
        ridge_items = regularization * np.maximum(np.diff(residual_t.indptr), 1)

        learn_biases = self.normalize == "biases"
        X = np.zeros((n_users, factors))
        Y = 0.1 * rng.standard_normal((n_items, factors))
        user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
        self.objective_history_ = []
        for sweep in tqdm(range(iterations), disable=not show_progress, desc="explicit ALS"):
            X, user_bias = _solve_side(pattern, residual, Y, item_bias, ridge_users, learn_biases)
            Y, item_bias = _solve_side(pattern_t, residual_t, X, user_bias, ridge_items, learn_biases)
            objective = _objective(residual, X, Y, user_bias, item_bias, ridge_users, ridge_items)
            self.objective_history_.append(objective)
            logger.debug("explicit ALS sweep %d objective %.4f", sweep + 1, objective)
        check_factors_finite(type(self).__name__, user_factors=X, item_factors=Y)
        self.user_factors, self.item_factors = X, Y
        self.user_means_, self.item_means_ = self.user_means_ + user_bias, self.item_means_ + item_bias
        self.rating_range_ = (float(ratings.data.min()), float(ratings.data.max()))
        return self

    def predict(self, userids, itemids, *, clip: bool = True) -> np.ndarray:
        """Predicted ratings for the pairs ``(userids[j], itemids[j])``, shape (n_pairs,).

        ``clip`` keeps predictions inside the training rating range.
        """
        self._check_fitted()
        users, _ = check_userids(userids, self.n_users)
        items, _ = check_userids(itemids, self.n_items, name="itemid")
        if users.shape != items.shape:
            raise ValueError(f"userids and itemids must pair up; got {users.shape} and {items.shape}.")
        predicted = (self.user_means_[users] + self.item_means_[items]
                     + np.einsum("pk,pk->p", self.user_factors[users], self.item_factors[items]))
        return np.clip(predicted, *self.rating_range_) if clip else predicted

    def _score(self, userids, history):
        return (self.user_factors[userids] @ self.item_factors.T
                + self.user_means_[userids, None] + self.item_means_[None, :])


def _check_ratings(ratings) -> sp.csr_matrix:
    """``ratings`` as a float64 CSR matrix, checked like ``check_user_items`` but keeping stored zeros.

    For implicit feedback a stored 0 is no interaction (``check_user_items``
    drops it); here every stored entry is an observed rating, and 0 stars is
    a rating (the tiny table's scale is 0-5).
    """
    if isinstance(ratings, Interactions):
        ratings = ratings.to_csr("rating")
    if not sp.issparse(ratings):
        return check_user_items(ratings)                     # raises the TypeError that names what was passed
    stand_in = ratings.copy()                                # same pattern, zeros replaced, for the shared checks
    stand_in.data = np.where(stand_in.data == 0, 1.0, stand_in.data)
    check_user_items(stand_in)
    return sp.csr_matrix(ratings, dtype=np.float64)


def _means(ratings: sp.csr_matrix, normalize: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-user and per-item baselines; the side not normalized gets zeros.

    A row or column without ratings gets the global mean (``"item"``,
    ``"user"``) or, for the user offset of ``"both"``, zero. ``"biases"``
    starts from the global mean alone.
    """
    n_users, n_items = ratings.shape
    if normalize == "none":
        return np.zeros(n_users), np.zeros(n_items)
    global_mean = float(ratings.data.mean())
    if normalize == "biases":                                  # the biases themselves are learned in fit
        return np.zeros(n_users), np.full(n_items, global_mean)
    if normalize == "user":
        return _row_means(ratings, fallback=global_mean), np.zeros(n_items)
    item_means = _row_means(ratings.T.tocsr(), fallback=global_mean)
    if normalize == "item":
        return np.zeros(n_users), item_means
    offsets = ratings.astype(np.float64)                                      # (n_users, n_items)
    offsets.data = offsets.data - item_means[offsets.indices]
    return _row_means(offsets, fallback=0.0), item_means


def _row_means(matrix: sp.csr_matrix, *, fallback: float) -> np.ndarray:
    """Mean of the stored entries of each row; ``fallback`` for an empty row."""
    sums = np.asarray(matrix.astype(np.float64).sum(axis=1)).ravel()
    counts = np.diff(matrix.indptr)
    return np.where(counts > 0, sums / np.maximum(counts, 1), fallback)


def _ones_like(matrix: sp.csr_matrix) -> sp.csr_matrix:
    ones = matrix.copy()
    ones.data = np.ones_like(ones.data)
    return ones


def _solve_side(pattern, residual, other, other_bias, ridge, learn_bias):
    """One half-sweep: every row's vector, and its bias when ``learn_bias``, with the other side fixed.

    The bias is one more ridge coordinate: the other side's vectors get a
    column of ones, and its biases leave the targets. Without biases the
    returned bias stays zero.
    """
    if not learn_bias:
        return weighted_ridge_solve(pattern, other, residual @ other, ridge=ridge), np.zeros(pattern.shape[0])
    targets = residual.copy()
    targets.data = targets.data - other_bias[targets.indices]
    design = np.hstack([other, np.ones((len(other), 1))])                    # (m, k + 1)
    solved = weighted_ridge_solve(pattern, design, targets @ design, ridge=ridge)
    return solved[:, :-1], solved[:, -1]


def _objective(residual, X, Y, user_bias, item_bias, ridge_users, ridge_items) -> float:
    """Squared error on observed entries plus the ALS-WR penalties (biases penalised like the vectors)."""
    rows = np.repeat(np.arange(residual.shape[0]), np.diff(residual.indptr))
    errors = (residual.data - user_bias[rows] - item_bias[residual.indices]
              - np.einsum("pk,pk->p", X[rows], Y[residual.indices]))
    return float(errors @ errors + ridge_users @ ((X**2).sum(1) + user_bias**2)
                 + ridge_items @ ((Y**2).sum(1) + item_bias**2))
