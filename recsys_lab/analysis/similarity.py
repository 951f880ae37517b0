"""Similarity in an embedding space: dot product, cosine, Euclidean distance, top-k search.

The three measures answer different questions about two vectors q and x:

* dot product ``<q, x> = |q| |x| cos(theta)``: direction *and* length; in a
  factor model the length of an item vector tends to grow with popularity,
  so the dot product favours popular items;
* cosine ``<q, x> / (|q| |x|)``: direction only, lengths divided out;
* Euclidean distance ``|q - x|``: how far apart the points are; smaller is
  more similar, and it punishes a candidate for being *longer* than q.

On unit-length vectors the three agree: ``|q - x|^2 = 2 - 2 cos(theta)``
and the dot product *is* the cosine, which is why normalising is the usual
way to turn a maximum-inner-product search into a nearest-neighbour search.

Between the two extremes sit partly normalised vectors, ``x / |x|^beta``
(``scale_by_norm``): beta = 0 keeps the length (the dot product), beta = 1
removes it (cosine). And a neighbour search can be limited to candidates
with enough support (``top_k_similar(..., allowed=...)``), because a rare
item's vector is short and its direction rests on a handful of users.

Every function takes row vectors: ``queries`` (n, d) and ``candidates``
(m, d) give an (n, m) matrix; a single 1-D query gives one row.
"""

from __future__ import annotations

import numbers

import numpy as np

from recsys_lab.evaluation.metrics import top_k
from recsys_lab.validation import check_positive_int

__all__ = ["MEASURES", "dot", "cosine", "euclidean", "normalize", "scale_by_norm", "similarity", "top_k_similar"]

MEASURES = ("dot", "cosine", "euclidean")
_EPS = 1e-12


def dot(queries, candidates) -> np.ndarray:
    """Inner products ``queries @ candidates.T``.

    Parameters
    ----------
    queries : array of shape (n, d) or (d,)
    candidates : array of shape (m, d)

    Returns
    -------
    ndarray of shape (n, m), or (m,) for a 1-D query

    Examples
    --------
    >>> dot([1.0, 2.0], [[3.0, 4.0], [1.0, 0.0]])
    array([11.,  1.])
    """
    q, c, single = _check_pair(queries, candidates)
    out = q @ c.T
    return out[0] if single else out


def cosine(queries, candidates) -> np.ndarray:
    """Cosine similarities in [-1, 1]; a zero vector has cosine 0 with everything.

    Examples
    --------
    >>> cosine([1.0, 0.0], [[2.0, 0.0], [0.0, 5.0]])
    array([1., 0.])
    """
    q, c, single = _check_pair(queries, candidates)
    out = np.clip(normalize(q) @ normalize(c).T, -1.0, 1.0)
    return out[0] if single else out


def euclidean(queries, candidates) -> np.ndarray:
    """Euclidean distances ``|q - x|`` (smaller is more similar).

    Computed as ``sqrt(|q|^2 + |x|^2 - 2 <q, x>)``, one matrix product
    instead of an (n, m, d) difference array; rounding below zero is clipped.

    Examples
    --------
    >>> euclidean([0.0, 0.0], [[3.0, 4.0]])
    array([5.])
    """
    q, c, single = _check_pair(queries, candidates)
    squared = (q**2).sum(1)[:, None] + (c**2).sum(1)[None, :] - 2.0 * (q @ c.T)
    out = np.sqrt(np.maximum(squared, 0.0))
    return out[0] if single else out


def normalize(vectors) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero); shape preserved.

    >>> normalize([[3.0, 4.0]])
    array([[0.6, 0.8]])
    """
    v = _check_matrix(vectors, "vectors")
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def scale_by_norm(vectors, beta: float) -> np.ndarray:
    """Rows divided by their length to the power ``beta``: ``x / |x|^beta`` (zero rows stay zero).

    A knob between the dot product and cosine. The dot product against
    scaled candidates is ``|x|^(1 - beta) cos(q, x)`` times the query's
    length: ``beta = 0`` keeps the length signal whole (the raw dot
    product), ``beta = 1`` removes it (cosine), and values in between shrink
    it. In a factor model the length of an item vector tracks the item's
    popularity, so ``beta`` trades the popularity signal against the
    direction (chapter 01 measures the trade on MovieLens).

    Parameters
    ----------
    vectors : array of shape (n, d) or (d,)
    beta : float in [0, 1]

    Returns
    -------
    ndarray of the same shape, float64; the lengths become ``|x|^(1 - beta)``.

    Examples
    --------
    >>> scale_by_norm([[3.0, 4.0]], 0.5)          # length 5 becomes sqrt(5)
    array([[1.34164079, 1.78885438]])
    """
    v = _check_matrix(vectors, "vectors")
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta <= 1:
        raise ValueError(f"beta={beta!r} must be a number in [0, 1]: 0 keeps the length (dot product), 1 removes it (cosine).")
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norms ** float(beta), out=np.zeros_like(v), where=norms > _EPS)


def similarity(queries, candidates, measure: str = "cosine") -> np.ndarray:
    """``dot``, ``cosine`` or ``euclidean`` by name (the distance, not negated)."""
    return {"dot": dot, "cosine": cosine, "euclidean": euclidean}[_check_measure(measure)](queries, candidates)


def top_k_similar(queries, candidates, k: int = 10, *, measure: str = "cosine", exclude=None, allowed=None):
    """The ``k`` most similar candidates to each query by ``measure``, best first.

    Exact brute-force search (chapter 07 replaces it with ``faiss``). For
    ``"euclidean"`` the best are the *closest*, and the returned values are
    distances (ascending); for ``"dot"`` and ``"cosine"`` they are
    similarities (descending). Ties go to the smaller candidate index.

    ``allowed`` restricts which candidates may be returned, for example a
    support threshold (``allowed=popularity >= 20``): the vector of an item
    that few users chose is short and its direction is noisy, so by cosine
    or Euclidean distance it can come out close to almost anything.

    Parameters
    ----------
    queries : array of shape (n, d) or (d,)
    candidates : array of shape (m, d)
    k : int
        How many neighbours, 1 <= k <= m (minus the excluded ones).
    measure : {"dot", "cosine", "euclidean"}
    exclude : array of int of shape (n,) or int, optional
        One candidate index per query to leave out, e.g. the query item itself.
    allowed : array of bool of shape (m,), optional
        True for the candidates that may be returned (all of them by default).

    Returns
    -------
    ids : ndarray of shape (n, k), or (k,) for a 1-D query
    values : ndarray of the same shape

    Examples
    --------
    >>> ids, sims = top_k_similar(item_vectors[42], item_vectors, k=5, measure="cosine", exclude=42)
    >>> ids, sims = top_k_similar(item_vectors[42], item_vectors, k=5, exclude=42, allowed=popularity >= 20)
    """
    measure = _check_measure(measure)
    q, c, single = _check_pair(queries, candidates)
    k = check_positive_int(k, "k")
    keep = np.ones(len(c), dtype=bool) if allowed is None else _check_allowed(allowed, len(c))
    skip = None
    if exclude is not None:
        skip = np.broadcast_to(np.asarray(exclude), (len(q),))
        if skip.dtype.kind not in "iu" or skip.min() < 0 or skip.max() >= len(c):
            raise ValueError(f"exclude={exclude!r} must hold candidate indices in 0..{len(c) - 1}.")
    available = int(keep.sum()) - (0 if skip is None else int(keep[skip].max()))
    if k > available:
        raise ValueError(f"k={k} is larger than the {available} candidates that can be returned.")
    values = similarity(q, c, measure)
    order_by = -values if measure == "euclidean" else values.copy()
    order_by[:, ~keep] = -np.inf
    if skip is not None:
        order_by[np.arange(len(q)), skip] = -np.inf
    ids = top_k(order_by, k)
    best = np.take_along_axis(values, ids, axis=1)
    return (ids[0], best[0]) if single else (ids, best)


# ---------------------------------------------------------------- checks
def _check_measure(measure: str) -> str:
    if measure not in MEASURES:
        raise ValueError(f"measure={measure!r} is not one of {MEASURES}.")
    return measure


def _check_allowed(allowed, n_candidates: int) -> np.ndarray:
    keep = np.asarray(allowed)
    if keep.dtype != bool or keep.shape != (n_candidates,):
        raise ValueError(f"allowed must be a boolean mask of shape ({n_candidates},), one flag per candidate; "
                         f"got dtype {keep.dtype} and shape {keep.shape}.")
    return keep


def _check_matrix(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D or 2-D array of vectors, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def _check_pair(queries, candidates):
    q = _check_matrix(queries, "queries")
    c = _check_matrix(candidates, "candidates")
    single = q.ndim == 1
    q = np.atleast_2d(q)
    if c.ndim != 2:
        raise ValueError(f"candidates must be 2-D (m, d), got shape {c.shape}.")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"queries have dimension {q.shape[1]} but candidates {c.shape[1]}; they must match.")
    return q, c, single
