"""Quality gates between two versions of an embedding space.

Retraining moves every vector, even when nothing about the data changed:
factorizations are only defined up to a rotation, and a different seed
lands in a different (but equally good) basis. Before a new version
replaces the serving one, three questions separate harmless motion from
real change:

* does it still rank as well? (offline metrics on the shared protocol,
  compared with the previous version: :func:`metric_gate`);
* do items keep their neighbours? (:func:`neighbourhood_overlap`: a
  rotation leaves cosine neighbours untouched, a real change does not);
* how far apart are the spaces once the best rotation is removed?
  (:func:`procrustes_align`, orthogonal Procrustes, Schönemann 1966).

References
----------
Schönemann, P. H. (1966). A generalized solution of the orthogonal Procrustes
problem. Psychometrika 31(1), 1-10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_lab.evaluation.metrics import top_k
from recsys_lab.validation import check_positive_int

__all__ = ["neighbourhood_overlap", "procrustes_align", "ProcrustesResult", "metric_gate"]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _check_pair(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must be 2-D with the same rows (one per entity), got {a.shape} and {b.shape}.")
    for name, x in (("a", a), ("b", b)):
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad.size:
            raise ValueError(f"{name} has NaN or infinite values in {bad.size} row(s), first row {bad[0]}; "
                             f"a version with such vectors cannot be compared (did its training diverge?). "
                             f"Fix or drop those entities in both versions first.")
    return a, b


def neighbourhood_overlap(a, b, k: int = 10) -> np.ndarray:
    """Share of each entity's ``k`` cosine neighbours that two spaces agree on.

    Parameters
    ----------
    a : array of shape (n, d_a)
    b : array of shape (n, d_b)
        The same ``n`` entities (row ``i`` is the same item in both) in two
        versions; the dimensions may differ.
    k : int
        Neighbours compared per entity (the entity itself is left out).

    Returns
    -------
    ndarray of shape (n,)
        ``|N_a(i) ∩ N_b(i)| / k`` per entity: 1 means identical neighbours.

    Examples
    --------
    >>> rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 8)))[0]
    >>> neighbourhood_overlap(x, x @ rotation, k=5).mean()   # 1.0: a rotation changes nothing
    """
    a, b = _check_pair(a, b)
    k = check_positive_int(k, "k")
    if k >= len(a):
        raise ValueError(f"k={k} must be smaller than the {len(a)} entities.")

    def neighbours(x):
        unit = _unit(x)
        sims = unit @ unit.T  # (n, n)
        np.fill_diagonal(sims, -np.inf)
        return top_k(sims, k)  # (n, k)

    na, nb = neighbours(a), neighbours(b)
    # compare the two neighbour lists of each row through one sort per row
    both = np.sort(np.concatenate([na, nb], axis=1), axis=1)  # (n, 2k)
    shared = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return shared / k


@dataclass(frozen=True)
class ProcrustesResult:
    """The rotation that best maps one space onto another, and what is left.

    Attributes
    ----------
    rotation : ndarray of shape (d, d), orthogonal
    residual : float
        ``||a R - b||_F / ||b||_F`` after alignment: 0 means ``b`` is a pure
        rotation of ``a``; values near 1 (or above) mean unrelated spaces.
    unaligned : float
        The same ratio before alignment, ``||a - b||_F / ||b||_F``.
    per_row : ndarray of shape (n,)
        ``||a_i R - b_i|| / ||b_i||``: which entities moved most.
    """

    rotation: np.ndarray
    residual: float
    unaligned: float
    per_row: np.ndarray


def procrustes_align(a, b) -> ProcrustesResult:
    """Orthogonal Procrustes: the rotation ``R`` minimising ``||a R - b||_F``.

    With ``U S V^T = svd(a^T b)`` the solution is ``R = U V^T`` (Schönemann,
    1966); ``scipy.linalg.orthogonal_procrustes`` computes the same.

    Parameters
    ----------
    a, b : arrays of shape (n, d)
        Two versions of the same ``n`` vectors, in the same dimension.

    Examples
    --------
    >>> result = procrustes_align(old.item_factors, new.item_factors)
    >>> result.residual      # drift that no rotation explains
    """
    a, b = _check_pair(a, b)
    if a.shape != b.shape:
        raise ValueError(f"procrustes_align needs the same dimension in both spaces, got {a.shape} and {b.shape}.")
    u, _, vt = np.linalg.svd(a.T @ b)  # (d, d) each
    rotation = u @ vt
    scale = max(np.linalg.norm(b), 1e-12)
    moved = a @ rotation - b
    per_row = np.linalg.norm(moved, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    return ProcrustesResult(rotation, float(np.linalg.norm(moved) / scale), float(np.linalg.norm(a - b) / scale), per_row)


def metric_gate(new: float, old: float, *, max_drop: float = 0.01) -> bool:
    """Pass when the new version's offline metric is at most ``max_drop`` below the old one.

    >>> metric_gate(new=0.101, old=0.105, max_drop=0.01)
    True
    """
    for name, value in (("new", new), ("old", old), ("max_drop", max_drop)):
        if not np.isfinite(value):
            raise ValueError(f"{name}={value} must be a finite number.")
    if max_drop < 0:
        raise ValueError(f"max_drop={max_drop} must be >= 0.")
    return bool(new >= old - max_drop)
