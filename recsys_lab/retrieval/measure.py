"""How good and how fast an approximate index is: recall against exact search, and queries per second."""

from __future__ import annotations

import math
import time

import numpy as np

from recsys_lab.retrieval.index import VectorIndex
from recsys_lab.validation import check_positive_int, check_vectors

__all__ = ["recall_at_k", "measure_search"]


def recall_at_k(index: VectorIndex, exact, queries, k: int = 10, *, exclude=None, found=None) -> float:
    """Mean share of the exact top ``k`` that ``index`` also returns in its top ``k``.

    Parameters
    ----------
    index : VectorIndex
        The approximate index under test.
    exact : VectorIndex or ndarray of shape (n_queries, >= k)
        An exact (flat) index over the same items, or its result ids.
    queries : ndarray of shape (n_queries, dim)
    k : int
    exclude : csr_matrix of shape (n_queries, n_items), optional
        Items skipped by both searches (users' histories).
    found : ndarray of shape (n_queries, k), optional
        ``index``'s answer if already computed (it is then not searched again).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> truth, _ = build_index(items, "flat").search(users, 10)
    >>> recall_at_k(build_index(items, "hnsw"), truth, users, 10)
    """
    k = check_positive_int(k, "k")
    if isinstance(exact, VectorIndex):
        exact, _ = exact.search(queries, k, exclude=exclude)
    exact = np.asarray(exact)
    if exact.ndim != 2 or exact.shape[1] < k or exact.shape[0] != len(queries):
        raise ValueError(f"exact ids must have shape ({len(queries)}, >= {k}); got {exact.shape}.")
    if found is None:
        found, _ = index.search(queries, k, exclude=exclude)
    truth = exact[:, :k]
    hits = sum(np.isin(found[i], truth[i][truth[i] >= 0]).sum() for i in range(len(truth)))
    return float(hits / max(1, (truth >= 0).sum()))


def measure_search(index: VectorIndex, queries, k: int = 10, *, exact_ids=None, repeat: int = 1) -> dict:
    """Time one batch search: queries per second (best of ``repeat``), and recall@k against ``exact_ids``.

    The batch goes to faiss in one call, so it runs on ``faiss.omp_get_max_threads()``
    threads; time exact and approximate search in the same run, with the same
    threads, and compare ratios.

    Parameters
    ----------
    index : VectorIndex
    queries : ndarray of shape (n_queries, dim)
    k : int
    exact_ids : ndarray of shape (n_queries, >= k), optional
        The exact top-k ids (from a flat index); without it ``recall`` is NaN.
    repeat : int
        Number of timed runs; the fastest counts.

    Returns
    -------
    dict
        ``qps``, ``ms_per_query``, ``recall``, ``bytes_per_vector``, ``build_s``, and
        ``ids`` (n_queries, k), the result of the search (the truth, when ``index`` is exact).

    Examples
    --------
    >>> exact = measure_search(build_index(items, "flat"), users)
    >>> measure_search(build_index(items, "hnsw"), users, exact_ids=exact["ids"])["recall"]
    """
    queries = check_vectors(queries, "queries", index.dim)
    best, ids = math.inf, None
    for _ in range(check_positive_int(repeat, "repeat")):
        start = time.perf_counter()
        ids, _ = index.search(queries, k)
        best = min(best, time.perf_counter() - start)
    recall = math.nan
    if exact_ids is not None:
        recall = recall_at_k(index, exact_ids, queries, k, found=ids)
    return {"qps": len(queries) / best, "ms_per_query": 1000 * best / len(queries), "recall": recall,
            "bytes_per_vector": index.bytes_per_vector, "build_s": index.build_seconds, "ids": ids}
