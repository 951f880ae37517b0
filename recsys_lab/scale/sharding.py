"""A catalogue split over several faiss indexes: scatter the query, gather and merge the top-k.

When the item vectors outgrow one machine's memory (or one machine's
queries per second), the catalogue is cut into shards, each with its own
index, usually on its own machine. A query goes to every shard; each returns
its local top-``k``; a coordinator merges them. The global top-``k`` is
always among the shards' local top-``k`` lists, so for exact shards the
merge returns exactly what one big index would (ties aside); approximate
shards keep their own recall.

:class:`ShardedIndex` does the scatter-gather in one process, each shard a
:class:`~recsys_lab.retrieval.index.VectorIndex` (any kind); across machines
the shard searches become remote calls and nothing else changes.
``faiss.IndexShards`` is faiss's own in-process version (one thread per
shard); the chapter checks both against the unsharded index.

This module imports faiss; ``import recsys_lab`` does not.

>>> sharded = build_sharded_index(item_vectors, 4, "flat", metric="ip")
>>> ids, scores = sharded.search(user_vectors, 10)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_lab.retrieval.index import VectorIndex, build_index
from recsys_lab.validation import check_positive_int, check_vectors

__all__ = ["ShardedIndex", "build_sharded_index", "shard_bounds", "merge_top_k"]


def shard_bounds(n_items: int, n_shards: int) -> np.ndarray:
    """Item-range boundaries of ``n_shards`` near-equal contiguous shards, shape (n_shards + 1,).

    >>> shard_bounds(10, 3)
    array([ 0,  4,  7, 10])
    """
    n_items = check_positive_int(n_items, "n_items")
    n_shards = check_positive_int(n_shards, "n_shards")
    if n_shards > n_items:
        raise ValueError(f"n_shards={n_shards} is more than the {n_items} items: every shard needs an item.")
    sizes = np.full(n_shards, n_items // n_shards)
    sizes[: n_items % n_shards] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def merge_top_k(ids: list[np.ndarray], scores: list[np.ndarray], k: int, *, largest: bool = True):
    """Merge per-shard top lists (global ids, each (n_queries, k_s)) into the global top-``k``.

    What a coordinator does with the shards' answers: concatenate and keep
    the ``k`` best per row (missing results, id -1, sort last). Returns
    ``(ids, scores)``, each (n_queries, k), best first.
    """
    k = check_positive_int(k, "k")
    all_ids, all_scores = np.concatenate(ids, axis=1), np.concatenate(scores, axis=1)   # (n, sum k_s)
    key = np.where(all_ids >= 0, all_scores if largest else -all_scores, -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(all_ids, order, axis=1), np.take_along_axis(all_scores, order, axis=1)


class ShardedIndex:
    """Item vectors split into contiguous shards, each with its own index.

    Build with :func:`build_sharded_index`. ``search`` asks every shard for
    its top ``k`` (excluding each query's excluded items that fall in that
    shard), shifts local ids to global ones and merges.

    Attributes
    ----------
    shards : list of VectorIndex
        Shard ``s`` holds items ``bounds[s]`` to ``bounds[s + 1] - 1``.
    bounds : ndarray of shape (n_shards + 1,)
    """

    def __init__(self, shards: list[VectorIndex], bounds: np.ndarray):
        if len(shards) != len(bounds) - 1:
            raise ValueError(f"{len(shards)} shards need {len(shards) + 1} bounds, got {len(bounds)}.")
        for s, shard in enumerate(shards):
            if shard.n_items != bounds[s + 1] - bounds[s]:
                raise ValueError(f"shard {s} holds {shard.n_items} items; its range has {bounds[s + 1] - bounds[s]}.")
        self.shards, self.bounds = list(shards), np.asarray(bounds)

    @property
    def n_items(self) -> int:
        return int(self.bounds[-1])

    @property
    def dim(self) -> int:
        return self.shards[0].dim

    @property
    def memory_bytes(self) -> list[int]:
        """Serialized size of each shard's index: what each machine must hold."""
        return [shard.memory_bytes for shard in self.shards]

    def __repr__(self) -> str:
        return f"ShardedIndex({len(self.shards)} x {self.shards[0].kind!r}, n_items={self.n_items}, dim={self.dim})"

    def search(self, queries, k: int, *, exclude: sp.csr_matrix | None = None):
        """The ``k`` best items per query over all shards, best first, as ``(ids, scores)``.

        Parameters and returns as :meth:`VectorIndex.search`; each shard is
        asked for ``min(k, its size)`` items.
        """
        queries = check_vectors(queries, "queries", self.dim)
        k = check_positive_int(k, "k")
        if k > self.n_items:
            raise ValueError(f"k={k} is larger than the {self.n_items} indexed items.")
        if exclude is not None:
            if not sp.issparse(exclude) or exclude.shape != (len(queries), self.n_items):
                raise ValueError(f"exclude must be a sparse matrix of shape {(len(queries), self.n_items)}; "
                                 f"got {getattr(exclude, 'shape', type(exclude).__name__)}.")
            exclude = sp.csr_matrix(exclude)
        found_ids, found_scores = [], []
        for shard, start, stop in zip(self.shards, self.bounds[:-1], self.bounds[1:]):
            local_exclude = None if exclude is None else exclude[:, start:stop]
            ids, scores = shard.search(queries, min(k, shard.n_items), exclude=local_exclude)   # (n, k_s) local
            found_ids.append(np.where(ids >= 0, ids + start, -1))
            found_scores.append(scores)
        return merge_top_k(found_ids, found_scores, k, largest=self.shards[0].metric != "l2")


def build_sharded_index(vectors, n_shards: int, kind: str = "flat", *, metric: str = "ip", **params) -> ShardedIndex:
    """Split ``vectors`` (n_items, dim) into ``n_shards`` contiguous shards and index each.

    Parameters
    ----------
    vectors : ndarray of shape (n_items, dim)
    n_shards : int
    kind, metric, **params
        As :func:`recsys_lab.retrieval.index.build_index`, for every shard
        (an IVF shard's ``nlist`` is per shard: scale it to the shard's size).

    Returns
    -------
    ShardedIndex

    Examples
    --------
    >>> sharded = build_sharded_index(item_vectors, 4, "ivf", metric="ip", nlist=256, nprobe=8)
    >>> sharded.memory_bytes          # per shard
    """
    vectors = check_vectors(vectors, "vectors")
    bounds = shard_bounds(len(vectors), n_shards)
    shards = [build_index(vectors[start:stop], kind, metric=metric, **params)
              for start, stop in zip(bounds[:-1], bounds[1:])]
    return ShardedIndex(shards, bounds)
