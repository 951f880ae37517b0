"""Full-ranking top-N metrics and rating errors.

Full ranking means the held-out item competes with *every* item the user has
not interacted with, not with 100 sampled negatives: sampled metrics can
reorder models (Krichene & Rendle, KDD 2020), full ranking cannot.

Ties count against the target everywhere in the course: its rank is 1 +
(items scoring strictly higher) + (other items scoring exactly the same). A
model that scores every item alike therefore ranks every target last and
earns nothing; no tie-break by item index can hand it free hits.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "target_ranks",
    "hit_rate",
    "ndcg",
    "reciprocal_rank",
    "recall_at_k",
    "top_k",
    "top_k_overlap",
    "rmse",
    "mae",
]


def target_ranks(scores: np.ndarray, targets: np.ndarray, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """1-based rank of each row's target item among its non-excluded items.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_items)
    targets : ndarray of shape (n_rows,), the held-out item column per row
    exclude : csr_matrix of shape (n_rows, n_items), optional
        Items that do not compete (the user's history); the target itself is
        never excluded.

    Returns
    -------
    ndarray of shape (n_rows,), int64
        A tie with the target counts against it: the target ranks after
        every other item with the same score.

    >>> target_ranks(np.array([[0.1, 0.9, 0.5], [0.5, 0.5, 0.5]]), np.array([2, 2]))
    array([2, 3])
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"scores must be (n_rows, n_items) and targets (n_rows,); got {scores.shape} and {targets.shape}.")
    if targets.size and (targets.min() < 0 or targets.max() >= scores.shape[1]):
        raise ValueError(f"targets must be item columns in 0..{scores.shape[1] - 1}.")
    if np.isnan(scores).any():
        raise ValueError(f"scores hold NaN in rows {np.flatnonzero(np.isnan(scores).any(axis=1))[:5].tolist()}...: "
                         "a NaN cannot be ranked; check the model for diverged or missing factors.")
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets][:, None]
    item_index = np.arange(scores.shape[1])[None, :]
    ahead = (scores > target_scores) | ((scores == target_scores) & (item_index != targets[:, None]))
    rank = 1 + ahead.sum(axis=1)
    if exclude is not None:
        if exclude.shape != scores.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, scores {scores.shape}.")
        # subtract excluded items that would have been ranked ahead of the target
        ex = exclude.tocoo()
        keep = ex.col != targets[ex.row]
        ex_rows, ex_cols = ex.row[keep], ex.col[keep]
        ex_ahead = ahead[ex_rows, ex_cols]
        rank -= np.bincount(ex_rows[ex_ahead], minlength=len(targets))
    return rank.astype(np.int64)


def hit_rate(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-user HR@k: 1 if the target is in the top k."""
    return (np.asarray(ranks) <= k).astype(np.float64)


def ndcg(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-user NDCG@k with one relevant item: 1 / log2(rank + 1) inside the top k."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    """Per-user reciprocal rank over the full ranking (MRR is its mean)."""
    return 1.0 / np.asarray(ranks, dtype=np.float64)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k best scores per row, best first (ties: smaller index).

    >>> top_k(np.array([[0.1, 0.9, 0.5]]), 2)
    array([[1, 2]])
    """
    scores = np.asarray(scores)
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k={k} must be between 1 and the {scores.shape[1]} items.")
    n_rows, n_items = scores.shape
    # the k-th best score per row, found in O(n_items) by argpartition
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]                 # (n_rows, 1)
    above = scores > kth
    tied = scores == kth
    # of the items tied with the k-th score, keep those with the smallest index
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    columns = np.nonzero(chosen)[1].reshape(n_rows, k)                        # (n_rows, k)
    order = np.lexsort((columns, -np.take_along_axis(scores, columns, axis=1)), axis=1)
    return np.take_along_axis(columns, order, axis=1)


def recall_at_k(scores: np.ndarray, relevant: sp.csr_matrix, k: int = 10, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Per-row Recall@k: share of the row's relevant items found in its top k.

    Rows without relevant items get NaN (leave them out of the mean).
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        scores[exclude.nonzero()] = -np.inf
    found = top_k(scores, k)
    relevant = sp.csr_matrix(relevant)
    hits = np.asarray(relevant[np.arange(len(scores))[:, None], found].sum(axis=1)).ravel()
    n_relevant = np.diff(relevant.indptr)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, hits / np.minimum(n_relevant, k), np.nan)


def top_k_overlap(ids_a, ids_b) -> float:
    """Mean share of each top-k list in ``ids_a`` that the same row of ``ids_b`` also holds.

    The way to say "these two searches agree": two computations of the same
    ranking (a batch and a single query, faiss and numpy, two CPUs) can swap
    items whose scores tie to the last digits, so compare the lists as sets
    and ask for agreement above a threshold rather than exact equality.
    Padding ids (-1) are ignored.

    Parameters
    ----------
    ids_a, ids_b : array-like of shape (k,) or (n_rows, k)

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> top_k_overlap([[1, 2, 3], [4, 5, 6]], [[3, 2, 1], [4, 5, 7]])
    0.8333333333333333
    """
    a, b = np.atleast_2d(np.asarray(ids_a)), np.atleast_2d(np.asarray(ids_b))
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"ids_a has {a.shape[0]} rows and ids_b {b.shape[0]}; compare the same queries.")
    shares = [np.isin(row_a[row_a >= 0], row_b[row_b >= 0]).mean() if (row_a >= 0).any() else 1.0
              for row_a, row_b in zip(a, b)]
    return float(np.mean(shares))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error of rating predictions."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error of rating predictions."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def _check_pair(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty 1-D arrays of one shape; got {y_true.shape} and {y_pred.shape}.")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("y_true or y_pred contains NaN or infinite values.")
    return y_true, y_pred
