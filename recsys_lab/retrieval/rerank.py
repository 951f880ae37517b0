"""Re-ranking a candidate list for diversity and freshness: maximal marginal relevance.

A first stage ranks each item on its own, so a user who liked three space
operas gets ten more. Maximal marginal relevance (Carbonell & Goldstein,
SIGIR 1998) builds the list one slot at a time instead, and prices each
remaining candidate by its relevance minus its similarity to what the list
already holds. It only reorders a short candidate list, so it costs
``k`` small passes over the candidates and needs no training. Only numpy is
needed here.
"""

from __future__ import annotations

import numbers

import numpy as np

from recsys_lab.validation import check_nonnegative_float, check_positive_int, check_vectors

__all__ = ["mmr"]


def mmr(candidate_ids, relevance, item_vectors, k: int = 10, *, diversity: float = 0.3, freshness=None,
        freshness_weight: float = 0.0):
    """Greedy maximal-marginal-relevance re-ranking of each user's candidates.

    Slot by slot, the next item is the remaining candidate :math:`i` with the
    largest gain

    .. math:: (1 - \\lambda)\\, r_i - \\lambda \\max_{j \\in S} \\cos(v_i, v_j) + w\\, f_i,

    where :math:`S` holds the items already placed (the similarity term is 0
    for the first slot), :math:`r` is the relevance, :math:`\\lambda` the
    ``diversity``, :math:`f` the ``freshness`` and :math:`w` its weight.
    ``diversity=0`` (and no freshness) returns the candidates sorted by
    relevance; ``diversity=1`` ignores relevance (the first slot goes to
    the first candidate) and spreads the list as far as the vectors allow. Put the relevance on the
    scale of a cosine (for example min-max per user into [0, 1]) so that
    :math:`\\lambda` means the same for every user. Ties go to the earlier
    candidate position.

    Parameters
    ----------
    candidate_ids : int array of shape (n_users, n_candidates), or (n_candidates,) for one user
        Item columns of each user's candidates, no repeats within a row.
    relevance : float array of the same shape
        The first stage's score of each candidate (higher is better).
    item_vectors : ndarray of shape (n_items, dim)
        The vectors that define similarity (cosine; an all-zero row is
        similar to nothing).
    k : int
        Length of each re-ranked list, at most ``n_candidates``.
    diversity : float in [0, 1]
        :math:`\\lambda`, the weight of redundancy against relevance.
    freshness : float array of shape (n_items,) in [0, 1], optional
        A per-item bonus score, for example a decayed release year.
    freshness_weight : float >= 0
        :math:`w`; needs ``freshness``.

    Returns
    -------
    ids : int64 array of shape (n_users, k) (or (k,)), the re-ranked item columns
    gains : float64 array of the same shape, each item's gain when it was placed
        (non-increasing from the second slot on: redundancy only grows)

    Examples
    --------
    >>> ids, scores = als.recommend(users, user_items[users], N=100)           # the first stage
    >>> top, _ = mmr(ids, scores, als.item_factors, 10, diversity=0.3)
    """
    one_user = np.ndim(candidate_ids) == 1
    ids, relevance = _check_candidates(candidate_ids, relevance)
    n_items = len(check_vectors(item_vectors, "item_vectors"))        # shape and finiteness; compute in float64
    vectors = np.asarray(item_vectors, dtype=np.float64)
    if ids.max() >= n_items or ids.min() < 0:
        bad = ids[(ids < 0) | (ids >= n_items)][0]
        raise ValueError(f"candidate_ids holds item {bad}, outside the {n_items} rows of item_vectors "
                         f"(valid items are 0..{n_items - 1}); pass one vector per item column.")
    n_users, n_candidates = ids.shape
    k = check_positive_int(k, "k")
    if k > n_candidates:
        raise ValueError(f"k={k} is larger than the {n_candidates} candidates per user; "
                         f"ask the first stage for at least {k} candidates or lower k.")
    lam = _check_diversity(diversity)
    bonus = _freshness_bonus(freshness, freshness_weight, ids, n_items)

    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    candidates = unit[ids]                                             # (n_users, n_candidates, dim)
    base = (1.0 - lam) * relevance + bonus                             # (n_users, n_candidates)
    redundancy = np.zeros_like(base)                                   # max cosine to the placed items
    placed = np.zeros(base.shape, dtype=bool)
    rows = np.arange(n_users)
    picks = np.empty((n_users, k), dtype=np.int64)
    gains = np.empty((n_users, k))
    for slot in range(k):
        gain = base - lam * redundancy                                 # (n_users, n_candidates)
        gain[placed] = -np.inf
        pick = np.argmax(gain, axis=1)                                 # first maximum: the earlier candidate
        picks[:, slot], gains[:, slot] = pick, gain[rows, pick]
        placed[rows, pick] = True
        similarity = np.einsum("ucd,ud->uc", candidates, candidates[rows, pick])   # (n_users, n_candidates)
        redundancy = similarity if slot == 0 else np.maximum(redundancy, similarity)
    top = np.take_along_axis(ids, picks, axis=1)
    return (top[0], gains[0]) if one_user else (top, gains)


def _check_candidates(candidate_ids, relevance) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(candidate_ids)
    if ids.ndim not in (1, 2) or ids.size == 0:
        raise ValueError(f"candidate_ids must be a non-empty (n_users, n_candidates) array, or (n_candidates,) "
                         f"for one user; got shape {ids.shape}.")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"candidate_ids must hold integer item columns, got dtype {ids.dtype}; "
                        f"map raw ids with Interactions.item_index().")
    ids = np.atleast_2d(ids).astype(np.int64)
    scores = np.atleast_2d(np.asarray(relevance, dtype=np.float64))
    if scores.shape != ids.shape:
        raise ValueError(f"relevance has shape {np.shape(relevance)}, candidate_ids {np.shape(candidate_ids)}: "
                         f"pass one score per candidate, in the same order.")
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores).all(axis=1))[0])
        raise ValueError(f"relevance holds NaN or infinite values (first in row {row}); "
                         f"drop those candidates or give them a finite score.")
    ordered = np.sort(ids, axis=1)
    repeated = ordered[:, 1:] == ordered[:, :-1]
    if repeated.any():
        row, col = (int(a[0]) for a in np.nonzero(repeated))
        raise ValueError(f"candidate_ids row {row} lists item {ordered[row, col]} more than once; "
                         f"keep each candidate once per user (for example with np.unique).")
    return ids, scores


def _check_diversity(diversity) -> float:
    if isinstance(diversity, bool) or not isinstance(diversity, numbers.Real):
        raise TypeError(f"diversity={diversity!r} must be a real number in [0, 1].")
    if not 0.0 <= float(diversity) <= 1.0:                            # NaN fails too
        raise ValueError(f"diversity={diversity} must lie in [0, 1]: 0 keeps the relevance order, "
                         f"1 ignores relevance and only spreads the list.")
    return float(diversity)


def _freshness_bonus(freshness, weight, ids: np.ndarray, n_items: int) -> np.ndarray:
    weight = check_nonnegative_float(weight, "freshness_weight")
    if freshness is None:
        if weight > 0:
            raise ValueError(f"freshness_weight={weight} needs freshness, one score in [0, 1] per item.")
        return np.zeros(ids.shape)
    fresh = np.asarray(freshness, dtype=np.float64)
    if fresh.shape != (n_items,):
        raise ValueError(f"freshness has shape {fresh.shape}; it needs one score per item, shape ({n_items},).")
    if not (np.isfinite(fresh).all() and fresh.min() >= 0 and fresh.max() <= 1):
        raise ValueError("freshness must be finite and lie in [0, 1] (for example a release year scaled by "
                         "min-max or decayed by age); fill unknown items with 0.")
    return weight * fresh[ids]
