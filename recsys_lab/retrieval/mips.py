"""Maximum inner product search as nearest-neighbour search in L2 (Bachrach et al., RecSys 2014).

A factor model ranks items by inner product, but partition and hashing
indexes are built for distances. One extra coordinate per vector makes every
item the same length, and then the nearest item in L2 is the one with the
largest inner product. Only numpy is needed here.
"""

from __future__ import annotations

import numpy as np

from recsys_lab.validation import check_vectors

__all__ = ["mips_to_l2", "augment_items", "augment_queries"]


def augment_items(items: np.ndarray, max_norm: float) -> np.ndarray:
    sq = np.einsum("ij,ij->i", items, items, dtype=np.float64)
    extra = np.sqrt(np.maximum(max_norm**2 - sq, 0.0)).astype(np.float32)
    return np.hstack([items, extra[:, None]])


def augment_queries(queries: np.ndarray) -> np.ndarray:
    return np.hstack([queries, np.zeros((len(queries), 1), np.float32)])


def mips_to_l2(items, queries=None):
    """Reduce maximum inner product search to L2 nearest-neighbour search.

    Each item gets the extra coordinate :math:`\\sqrt{M^2 - \\|x\\|^2}` with
    :math:`M = \\max_j \\|x_j\\|`, each query a zero, so every item has norm
    :math:`M` and :math:`\\|q - \\tilde x\\|^2 = \\|q\\|^2 + M^2 - 2\\,q^\\top x`:
    the nearest item is the one with the largest inner product
    (Bachrach et al., RecSys 2014).

    Parameters
    ----------
    items : ndarray of shape (n_items, dim)
    queries : ndarray of shape (n_queries, dim), optional

    Returns
    -------
    items_l2 : ndarray of shape (n_items, dim + 1), float32
    queries_l2 : ndarray of shape (n_queries, dim + 1), float32, or None

    Examples
    --------
    >>> items_l2, queries_l2 = mips_to_l2(item_factors, user_factors)
    >>> index = build_index(items_l2, "hnsw", metric="l2")
    """
    items = check_vectors(items, "items")
    max_norm = float(np.sqrt(np.einsum("ij,ij->i", items, items, dtype=np.float64).max()))
    if queries is None:
        return augment_items(items, max_norm), None
    queries = check_vectors(queries, "queries", items.shape[1])
    return augment_items(items, max_norm), augment_queries(queries)
