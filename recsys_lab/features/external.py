"""Ranking features from external item embeddings: aggregation and dual embeddings.

External embeddings are item vectors learned without the recommendation task
(a text encoder, an image model, another product). Chapter 06 tries the
three ways to use them in order of cost; this module holds the first two:

1. **Aggregation.** Average the user's history vectors into a profile
   (optionally with exponential decay, so recent events weigh more) and take
   the cosine to the candidate; then look past the mean at the whole set of
   cosines between the candidate and each history item: their mean, max,
   percentiles and the share above a threshold, also decayed. With explicit
   ratings the same statistics are taken apart over the items the user liked
   and the items they disliked (``liked_disliked_features``): "close to what
   they rated low" is a different signal from "close to what they rated high".
2. **Dual embeddings.** One implicit-ALS user step (Hu, Koren & Volinsky,
   2008) against the *fixed* external item vectors: each user gets the
   vector that best reconstructs their history in the external space, solved
   independently per user; its dimension is the embedding's dimension.

Histories are lists of item columns in time order (oldest first), as given
by ``Interactions.sequences()``; decay counts *events ago*, not seconds, so a
burst of same-second ratings (common in MovieLens) is ordered by the fixed
tie-break rather than collapsed.

Only numpy, scipy and pandas are imported here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_lab.validation import check_nonnegative_float, check_user_items

__all__ = [
    "unit_rows",
    "recency_weights",
    "history_profiles",
    "aggregation_features",
    "liked_disliked_features",
    "dual_user_factors",
]


def unit_rows(vectors) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows (unknown items) stay zero.

    Parameters
    ----------
    vectors : array-like of shape (n, dim)

    Returns
    -------
    ndarray of shape (n, dim), float32

    >>> unit_rows([[3.0, 4.0], [0.0, 0.0]])
    array([[0.6, 0.8],
           [0. , 0. ]], dtype=float32)
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (n, dim) array, got shape {vectors.shape}.")
    if not np.isfinite(vectors).all():
        raise ValueError("vectors contain NaN or infinite values.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def recency_weights(length: int, half_life: float | None) -> np.ndarray:
    """Exponential-decay weight of each position of a history, oldest first.

    The most recent event has weight 1 and an event ``a`` events ago weight
    :math:`2^{-a / h}` with ``h = half_life``; ``None`` gives equal weights
    (the plain mean).

    >>> recency_weights(3, half_life=1.0)
    array([0.25, 0.5 , 1.  ])
    """
    if half_life is None:
        return np.ones(length)
    half_life = check_nonnegative_float(half_life, "half_life", strictly_positive=True)
    age = np.arange(length - 1, -1, -1, dtype=np.float64)  # events ago: oldest has the largest age
    return 0.5 ** (age / half_life)


def _check_histories(histories, n_items: int) -> list[np.ndarray]:
    """Accept a list of item-index arrays (time order) or a CSR (column order)."""
    if sp.issparse(histories):
        histories = sp.csr_matrix(histories)
        if histories.shape[1] != n_items:
            raise ValueError(f"the history matrix has {histories.shape[1]} item columns; the vectors cover {n_items} items.")
        return [histories.indices[histories.indptr[u]: histories.indptr[u + 1]] for u in range(histories.shape[0])]
    out = []
    for history in histories:
        history = np.asarray(history, dtype=np.int64)
        if history.size and (history.min() < 0 or history.max() >= n_items):
            raise ValueError(f"a history holds item index {history.max() if history.max() >= n_items else history.min()}, "
                             f"outside the {n_items} items of item_vectors.")
        out.append(history)
    return out


def history_profiles(histories, item_vectors, *, half_life: float | None = None) -> np.ndarray:
    """Each user's profile: the (decayed) mean of their normalised history vectors, normalised.

    .. math:: p_u = \\frac{\\sum_t w_t\\, \\hat v_{i_t}}{\\lVert \\sum_t w_t\\, \\hat v_{i_t} \\rVert},
              \\qquad w_t = 2^{-(\\text{events ago})/h}

    The cosine between ``p_u`` and a unit candidate vector is then one dot
    product, which is the first and cheapest feature to try.

    Parameters
    ----------
    histories : list of int arrays (time order, oldest first) or csr_matrix (n_users, n_items)
        A matrix has no order: use it only with ``half_life=None``.
    item_vectors : array-like of shape (n_items, dim)
    half_life : float, optional
        In events; None for the plain mean.

    Returns
    -------
    ndarray of shape (n_users, dim), float32; a user with an empty history
    (or only zero vectors) gets a zero profile.

    Examples
    --------
    >>> profiles = history_profiles(split.train.sequences(), text_vectors, half_life=10)
    >>> cosines = profiles @ unit_rows(text_vectors).T      # (n_users, n_items)
    """
    if half_life is not None and sp.issparse(histories):
        raise ValueError("half_life needs the time order of each history: pass Interactions.sequences(), not a matrix.")
    unit = unit_rows(item_vectors)
    histories = _check_histories(histories, len(unit))
    profiles = np.zeros((len(histories), unit.shape[1]), dtype=np.float32)
    for u, history in enumerate(histories):
        if history.size:
            profiles[u] = recency_weights(len(history), half_life) @ unit[history]
    return unit_rows(profiles)


def aggregation_features(histories, users, candidates, item_vectors, *, half_life: float = 20.0,
                         quantiles=(0.5, 0.9), threshold: float = 0.5) -> pd.DataFrame:
    """Cosine features for (user, candidate) pairs from external item vectors.

    For a candidate ``j`` and the user's history ``i_1..i_n`` (oldest first)
    let :math:`c_t = \\cos(v_j, v_{i_t})` and :math:`w_t` the recency weights.
    The columns are

    * ``cos_profile``, ``cos_profile_decay``: cosine to the mean / decayed-mean profile;
    * ``cos_mean``, ``cos_max``, ``cos_q50``, ``cos_q90`` (one per quantile): statistics of the :math:`c_t`;
    * ``share_above``: the share of history items with :math:`c_t > \\text{threshold}`
      (how often the user chose items like this one);
    * ``cos_mean_decay``, ``share_above_decay``: the same two, weighted by :math:`w_t`.

    Parameters
    ----------
    histories : list of int arrays, time order (``Interactions.sequences()``)
    users, candidates : int arrays of shape (n_pairs,)
        Row into ``histories`` and item column of each pair.
    item_vectors : array-like of shape (n_items, dim)
    half_life : float
        Decay half-life in events.
    quantiles : tuple of float in [0, 1]
    threshold : float in [-1, 1]

    Returns
    -------
    DataFrame of shape (n_pairs, 7 + len(quantiles)), in the order of the
    pairs; users with an empty history get zeros.

    Examples
    --------
    >>> feats = aggregation_features(split.train.sequences(), [0, 0], [10, 20], text_vectors)
    """
    quantiles = tuple(float(q) for q in quantiles)
    if any(not 0 <= q <= 1 for q in quantiles):
        raise ValueError(f"quantiles={quantiles} must lie in [0, 1].")
    _check_threshold(threshold)
    unit = unit_rows(item_vectors)
    histories = _check_histories(histories, len(unit))
    users, candidates = _check_pairs(users, candidates, len(histories), len(unit))

    names = (["cos_profile", "cos_profile_decay", "cos_mean", "cos_max"]
             + [f"cos_q{round(100 * q)}" for q in quantiles]
             + ["share_above", "cos_mean_decay", "share_above_decay"])
    out = np.zeros((len(users), len(names)))
    for rows in _rows_by_user(users):
        history = histories[users[rows[0]]]
        if history.size == 0:
            continue
        weights = recency_weights(len(history), half_life)
        weights /= weights.sum()
        cos = unit[candidates[rows]] @ unit[history].T                 # (n_candidates, n_history)
        above = cos > threshold
        profile = unit_rows(unit[history].mean(axis=0, keepdims=True))[0]
        profile_decay = unit_rows((weights @ unit[history])[None])[0]
        out[rows] = np.column_stack(
            [unit[candidates[rows]] @ profile, unit[candidates[rows]] @ profile_decay, cos.mean(axis=1), cos.max(axis=1)]
            + [np.quantile(cos, q, axis=1) for q in quantiles]
            + [above.mean(axis=1), cos @ weights, above @ weights]
        )
    return pd.DataFrame(out, columns=names)


def liked_disliked_features(histories, ratings, users, candidates, item_vectors, *, liked_from: float = 4.0,
                            disliked_to: float = 2.0, half_life: float = 20.0, threshold: float = 0.5) -> pd.DataFrame:
    """Cosine statistics of each candidate to the user's liked items and, apart, to the disliked ones.

    :func:`aggregation_features` treats every rated item alike, so a film the
    user rated 1 pulls similar candidates up as much as one rated 5. Here the
    history is split by rating: *liked* items (rating >= ``liked_from``) and
    *disliked* items (rating <= ``disliked_to``); ratings in between (a 3 on
    MovieLens' 1-5 scale) are neutral and join neither group. For each group
    ``g`` and candidate ``j``, with :math:`c_t = \\cos(v_j, v_{i_t})` over the
    group's items and the recency weights :math:`w_t` of the *whole* history
    (so "recent" means recent in the user's timeline), renormalised over the
    group, the columns are

    * ``{g}_cos_mean``, ``{g}_cos_max``, ``{g}_share_above`` (share of the group with :math:`c_t > \\text{threshold}`);
    * ``{g}_cos_mean_decay``, ``{g}_share_above_decay``: the same mean and share, weighted by :math:`w_t`;
    * ``{g}_count``: how many items the group holds, so that a model can tell
      an empty group (all statistics 0) from cosines near 0.

    Parameters
    ----------
    histories : list of int arrays, time order (``Interactions.sequences()``)
    ratings : csr_matrix of shape (len(histories), n_items)
        The rating of every history item, for example ``history.to_csr("rating")``
        of the same ``Interactions`` (``split.history("test")`` for the test
        targets). A history item without a stored rating is an error.
    users, candidates : int arrays of shape (n_pairs,)
        Row into ``histories`` and item column of each pair.
    item_vectors : array-like of shape (n_items, dim)
    liked_from, disliked_to : float
        The rating bounds of the two groups; ``disliked_to < liked_from``.
    half_life : float
        Decay half-life in events.
    threshold : float in [-1, 1]

    Returns
    -------
    DataFrame of shape (n_pairs, 12), in the order of the pairs: the six
    ``liked_*`` columns, then the six ``disliked_*`` ones.

    Examples
    --------
    >>> history = split.history("test")
    >>> feats = liked_disliked_features(history.sequences(), history.to_csr("rating"), [0, 0], [10, 20], text_vectors)
    """
    liked_from = float(liked_from)
    disliked_to = float(disliked_to)
    if not disliked_to < liked_from:
        raise ValueError(f"disliked_to={disliked_to} must be below liked_from={liked_from}: "
                         f"the disliked ratings lie under the liked ones.")
    _check_threshold(threshold)
    unit = unit_rows(item_vectors)
    histories = _check_histories(histories, len(unit))
    users, candidates = _check_pairs(users, candidates, len(histories), len(unit))
    if not sp.issparse(ratings) or ratings.shape != (len(histories), len(unit)):
        raise ValueError(f"ratings must be a sparse matrix of shape ({len(histories)}, {len(unit)}), one row per "
                         f"history (Interactions.to_csr('rating')); got {getattr(ratings, 'shape', type(ratings).__name__)}.")
    ratings = sp.csr_matrix(ratings, dtype=np.float64, copy=True)
    ratings.sort_indices()

    stats = ["cos_mean", "cos_max", "share_above", "cos_mean_decay", "share_above_decay", "count"]
    names = [f"{group}_{stat}" for group in ("liked", "disliked") for stat in stats]
    out = np.zeros((len(users), len(names)))
    for rows in _rows_by_user(users):
        user = users[rows[0]]
        history = histories[user]
        if history.size == 0:
            continue
        lo, hi = ratings.indptr[user], ratings.indptr[user + 1]
        where = np.searchsorted(ratings.indices[lo:hi], history)       # (n_history,): position in the rated row
        found = where < hi - lo
        found[found] = ratings.indices[lo:hi][where[found]] == history[found]
        if not found.all():
            raise ValueError(f"history {user} holds item {history[~found][0]}, which has no rating in ratings; pass "
                             f"the to_csr('rating') of the same Interactions as the histories.")
        rating = ratings.data[lo:hi][where]                             # (n_history,), time order
        weights = recency_weights(len(history), half_life)
        cos = unit[candidates[rows]] @ unit[history].T                  # (n_candidates, n_history)
        for g, group in enumerate((rating >= liked_from, rating <= disliked_to)):
            if not group.any():
                continue
            c, w = cos[:, group], weights[group] / weights[group].sum()
            above = c > threshold
            out[rows, g * len(stats): (g + 1) * len(stats)] = np.column_stack(
                [c.mean(axis=1), c.max(axis=1), above.mean(axis=1), c @ w, above @ w, np.full(len(rows), group.sum())])
    return pd.DataFrame(out, columns=names)


def _check_threshold(threshold) -> None:
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold={threshold} must be a cosine in [-1, 1].")


def _check_pairs(users, candidates, n_histories: int, n_items: int):
    users = np.asarray(users, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=np.int64)
    if users.shape != candidates.shape or users.ndim != 1:
        raise ValueError(f"users and candidates must be 1-D of one length; got shapes {users.shape} and {candidates.shape}.")
    if users.size and (users.min() < 0 or users.max() >= n_histories):
        raise ValueError(f"users holds index {users.max() if users.max() >= n_histories else users.min()}, "
                         f"outside the {n_histories} histories.")
    if candidates.size and (candidates.min() < 0 or candidates.max() >= n_items):
        raise ValueError(f"candidates holds item {candidates.max() if candidates.max() >= n_items else candidates.min()}, "
                         f"outside the {n_items} items.")
    return users, candidates


def _rows_by_user(users: np.ndarray) -> list[np.ndarray]:
    """The pair positions of each user, one array per distinct user (ascending user order)."""
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.unique(users))
    return np.split(order, bounds[1:]) if users.size else []


def dual_user_factors(user_items, item_vectors, *, regularization: float = 1.0, alpha: float = 10.0) -> np.ndarray:
    """Dual embeddings: one implicit-ALS user step against fixed external item vectors.

    Each user's vector solves the weighted ridge regression of implicit ALS
    with the item side frozen at the external vectors :math:`V`:

    .. math:: x_u = \\arg\\min_x \\sum_i c_{ui} (p_{ui} - x^\\top v_i)^2 + \\lambda \\lVert x \\rVert^2
              = (V^\\top V + V^\\top (C_u - I) V + \\lambda I)^{-1} V^\\top C_u p_u,

    with :math:`p_{ui} = 1` for history items (0 otherwise) and confidence
    :math:`c_{ui} = 1 + \\alpha r_{ui}`. Every missing item is a weak
    negative, so unlike the mean profile this vector is pushed *away* from
    what the user skipped. Users are independent, so it parallelises and a
    new user needs no retraining.

    This is the same step as chapter 03's
    ``recsys_lab.models.als.solve_user_factors`` (the tests check they
    agree), organised for wide external vectors (a text encoder's k = 384 is
    larger than most histories). With :math:`H = (V^\\top V + \\lambda I)^{-1}`
    computed once and :math:`D_u = \\operatorname{diag}(\\alpha r_u)` over the
    user's :math:`n_u` items, the Woodbury identity gives

    .. math:: x_u = P_u^\\top \\left(c_u - (I + D_u S_u)^{-1} D_u S_u c_u\\right),
              \\qquad P_u = V_u H, \\quad S_u = V_u H V_u^\\top,

    an :math:`n_u \\times n_u` solve instead of a :math:`k \\times k` one; users
    with :math:`n_u \\ge k` take the direct solve. Memory stays O(k^2 + n_items k).
    With :math:`\\alpha = 0` every user shares the one system and
    :math:`x_u = H V^\\top p_u`, the sum of the rows of :math:`P = V H` over the
    user's items: one sparse product for all users, no per-user solve.

    Parameters
    ----------
    user_items : csr_matrix of shape (n_users, n_items)
        Interaction strengths r >= 0; a row with none gets the zero vector.
    item_vectors : array-like of shape (n_items, dim)
        Used as given (normalise them first for a cosine geometry).
    regularization, alpha : float
        :math:`\\lambda > 0` and :math:`\\alpha \\ge 0` above.

    Returns
    -------
    ndarray of shape (n_users, dim), float32; scores are ``factors @ item_vectors.T``.

    Examples
    --------
    >>> users = dual_user_factors(split.train.user_items, unit_rows(text_vectors))
    >>> scores = users @ unit_rows(text_vectors).T

    References
    ----------
    Hu, Koren & Volinsky, "Collaborative filtering for implicit feedback datasets", ICDM 2008.
    """
    user_items = check_user_items(user_items)
    item_vectors = np.asarray(item_vectors, dtype=np.float64)
    if item_vectors.ndim != 2 or len(item_vectors) != user_items.shape[1]:
        raise ValueError(f"item_vectors has shape {item_vectors.shape}; expected ({user_items.shape[1]}, dim), "
                         f"one row per item column of user_items.")
    if not np.isfinite(item_vectors).all():
        raise ValueError("item_vectors contain NaN or infinite values.")
    regularization = check_nonnegative_float(regularization, "regularization", strictly_positive=True)
    alpha = check_nonnegative_float(alpha, "alpha")
    dim = item_vectors.shape[1]
    gram = item_vectors.T @ item_vectors + regularization * np.eye(dim)      # (dim, dim) = H^-1, shared by all users
    projected = np.linalg.solve(gram, item_vectors.T).T                        # (n_items, dim): P = V H
    if alpha == 0:  # c_u = 1 everywhere: x_u = P^T p_u for every user at once
        preferences = sp.csr_matrix((np.ones(user_items.nnz), user_items.indices, user_items.indptr),
                                    shape=user_items.shape)                    # (n_users, n_items), p_ui = 1
        return np.asarray(preferences @ projected, dtype=np.float32)
    out = np.zeros((user_items.shape[0], dim))
    for u in range(user_items.shape[0]):
        lo, hi = user_items.indptr[u], user_items.indptr[u + 1]
        if lo == hi:
            continue
        items = user_items.indices[lo:hi]
        v = item_vectors[items]                                                # (n_u, dim)
        weight = alpha * user_items.data[lo:hi].astype(np.float64)             # (n_u,): c_u - 1
        confidence = 1.0 + weight                                              # (n_u,): c_u (p_u = 1 here)
        if hi - lo >= dim:  # long history: solve the dim x dim system directly
            out[u] = np.linalg.solve(gram + (v * weight[:, None]).T @ v, v.T @ confidence)
            continue
        p = projected[items]                                                   # (n_u, dim): V_u H
        s = p @ v.T                                                            # (n_u, n_u): V_u H V_u^T
        inner = np.eye(hi - lo) + weight[:, None] * s                          # I + D_u S_u
        out[u] = p.T @ (confidence - np.linalg.solve(inner, weight * (s @ confidence)))
    return out.astype(np.float32)
