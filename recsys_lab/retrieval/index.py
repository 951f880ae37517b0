"""Nearest-neighbour retrieval of items for users with ``faiss``: exact and approximate.

A factor model scores a user against every item with one inner product; at
a million items that full scan is the cost of serving. An approximate index
trades a little recall for a large gain in speed or memory:

========  ==========================================  =====================================
kind      how it avoids the full scan                 paper
========  ==========================================  =====================================
flat      it does not: exact brute force (BLAS)       --
ivf       k-means cells; scan the ``nprobe`` nearest  Sivic & Zisserman 2003; Jegou 2011
pq        compress each vector to ``m`` bytes         Jegou, Douze & Schmid 2011
ivfpq     both: cells of compressed residuals         Jegou, Douze & Schmid 2011
hnsw      greedy walk on a small-world graph          Malkov & Yashunin 2018
lsh       random-hyperplane bit codes, Hamming scan   Charikar 2002
========  ==========================================  =====================================

Any ``faiss.index_factory`` string (``"IVF1024,PQ16x4fs,RFlat"``) works too.

Metrics: ``"ip"`` (maximum inner product, what a factor model ranks by),
``"cosine"`` (inner product of unit vectors) and ``"l2"`` (squared
Euclidean distance). MIPS is not a metric-space problem; the reduction of
Bachrach et al. (2014), :func:`mips_to_l2`, adds one coordinate so that the
nearest neighbour in L2 is the maximum inner product, which lets partition
and hashing indexes built for distances answer MIPS (``reduce_mips=True``).
Graphs are the exception: HNSW searches the raw inner product better than
the reduction (Morozov & Babenko, NeurIPS 2018).

Scores are similarities, best first, for ``"ip"`` and ``"cosine"`` and
squared distances, smallest first, for ``"l2"``; compressed indexes return
their estimates. Importing this module imports ``faiss``; ``import
recsys_lab`` does not.

>>> index = build_index(item_factors, "ivf", metric="ip", reduce_mips=True, nlist=256, nprobe=4)
>>> ids, scores = index.search(user_factors[:5], 10, exclude=train.user_items[:5])
"""

from __future__ import annotations

import json
import math
import time

import faiss
import numpy as np
import scipy.sparse as sp

from recsys_lab.retrieval.mips import augment_items, augment_queries
from recsys_lab.validation import check_positive_int, check_random_state, check_vectors

__all__ = ["VectorIndex", "build_index", "load_index", "KINDS", "METRICS"]

KINDS = ("flat", "ivf", "pq", "ivfpq", "hnsw", "lsh")
METRICS = ("ip", "cosine", "l2")
# build parameters each short kind accepts (search-time ones can also be changed later with set_params)
_PARAMS = {
    "flat": set(),
    "ivf": {"nlist", "nprobe"},
    "pq": {"m", "nbits", "refine"},
    "ivfpq": {"nlist", "m", "nbits", "nprobe", "refine"},
    "hnsw": {"M", "ef_construction", "ef_search"},
    "lsh": {"nbits", "refine"},
}
_COMMON = {"reduce_mips", "train_size", "random_state"}
_SEARCH_PARAMS = {"nprobe": "nprobe", "ef_search": "efSearch", "refine": None}


class VectorIndex:
    """A ``faiss`` index plus what is needed to search it correctly.

    Build one with :func:`build_index`; it remembers the metric, the
    reduction and its parameters, so queries go in and scores come out in the
    caller's space.

    Attributes
    ----------
    index : faiss.Index
    kind, metric : str
    dim, n_items : int
        Dimension of the caller's vectors and number of indexed items.
    params : dict
        Build and search parameters.
    build_seconds : float
        Wall-clock time of training plus adding (0 after loading).
    """

    def __init__(self, index, *, kind: str, metric: str, dim: int, params: dict,
                 max_norm: float | None = None, build_seconds: float = 0.0):
        self.index, self.kind, self.metric, self.dim = index, kind, metric, dim
        self.params, self.max_norm, self.build_seconds = dict(params), max_norm, build_seconds
        # a bare LSH index answers Hamming distances; an IndexRefine re-ranks them with exact ones
        top = faiss.downcast_index(index)
        self._lsh_bits = top.nbits if isinstance(top, faiss.IndexLSH) else None

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """Size of the serialized index (codes, graph links, centroids), in bytes."""
        return int(faiss.serialize_index(self.index).nbytes)

    @property
    def bytes_per_vector(self) -> float:
        return self.memory_bytes / self.n_items

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"VectorIndex({self.kind!r}, metric={self.metric!r}, n_items={self.n_items}, dim={self.dim}, {params})"

    def set_params(self, **params) -> "VectorIndex":
        """Change search-time parameters (``nprobe``, ``ef_search``, ``refine``) without rebuilding.

        >>> index.set_params(nprobe=32).search(queries, 10)
        """
        space = faiss.ParameterSpace()
        for name, value in params.items():
            if name not in _SEARCH_PARAMS:
                raise ValueError(f"{name}={value!r} is not a search parameter; use one of {sorted(_SEARCH_PARAMS)}.")
            value = check_positive_int(value, name)
            if name == "refine":  # k_factor of the re-ranking stage
                top = faiss.downcast_index(self.index)
                if not isinstance(top, faiss.IndexRefine):
                    raise ValueError(f"refine={value} needs an index built with refine (a re-ranking stage).")
                top.k_factor = value
                self.params[name] = value
                continue
            try:
                space.set_index_parameter(self.index, _SEARCH_PARAMS[name], value)
            except RuntimeError as error:
                raise ValueError(f"{name}={value} does not apply to this {self.kind!r} index.") from error
            self.params[name] = value
        return self

    def search(self, queries, k: int, *, exclude: sp.csr_matrix | None = None):
        """The ``k`` best items per query, best first.

        Parameters
        ----------
        queries : ndarray of shape (n_queries, dim)
        k : int
            Items per query, at most ``n_items``.
        exclude : csr_matrix of shape (n_queries, n_items), optional
            Nonzeros are items never to return for that row (a user's history).
            The index is asked for ``k`` plus the longest excluded row, then the
            excluded items are dropped.

        Returns
        -------
        ids : ndarray of shape (n_queries, k), int64
            -1 where the index found fewer than ``k`` items (small ``nprobe``).
        scores : ndarray of shape (n_queries, k), float32
            Similarities (``ip``, ``cosine``) or squared distances (``l2``);
            -inf / +inf beside an id of -1.
        """
        queries = check_vectors(queries, "queries", self.dim)
        k = check_positive_int(k, "k")
        if k > self.n_items:
            raise ValueError(f"k={k} is larger than the {self.n_items} indexed items.")
        extra = 0
        if exclude is not None:
            if not sp.issparse(exclude) or exclude.shape != (len(queries), self.n_items):
                raise ValueError(f"exclude must be a sparse matrix of shape {(len(queries), self.n_items)}; "
                                 f"got {getattr(exclude, 'shape', type(exclude).__name__)}.")
            exclude = sp.csr_matrix(exclude)
            exclude.sum_duplicates()
            extra = int(np.diff(exclude.indptr).max())
        fetch = min(k + extra, self.n_items)
        q = self._transform_queries(queries)
        scores, ids = self.index.search(q, fetch)                         # (n_queries, fetch) each
        scores = self._to_caller_scores(scores, queries)
        if exclude is not None:
            ids, scores = _drop_excluded(ids, scores, exclude, self.n_items)
        ids, scores = ids[:, :k].astype(np.int64), scores[:, :k]
        scores[ids < 0] = np.inf if self.metric == "l2" else -np.inf
        return ids, scores

    def save(self, path) -> None:
        """Write the index and its settings to one ``.npz`` file at ``path``."""
        meta = {"kind": self.kind, "metric": self.metric, "dim": self.dim, "params": self.params,
                "max_norm": self.max_norm, "build_seconds": self.build_seconds}
        with open(path, "wb") as file:
            np.savez(file, index=faiss.serialize_index(self.index), meta=np.array(json.dumps(meta)))

    # ------------------------------------------------------------ helpers
    def _transform_queries(self, queries):
        if self.metric == "cosine":
            return _unit(queries)
        if self.max_norm is not None:
            return augment_queries(queries)
        return queries

    def _to_caller_scores(self, raw, queries):
        raw = raw.astype(np.float32)
        if self._lsh_bits:  # Hamming distance h of b bits estimates the angle pi h / b (Charikar 2002)
            cosine = np.cos(np.pi * raw / self._lsh_bits)
            if self.metric == "cosine":
                return cosine
            return cosine * np.linalg.norm(queries, axis=1, keepdims=True) * self.max_norm
        if self.max_norm is not None:  # ||q - x~||^2 = ||q||^2 + M^2 - 2 q.x
            sq = np.einsum("ij,ij->i", queries, queries)[:, None]
            return (sq + self.max_norm**2 - raw) / 2
        if self.metric == "cosine" and self.index.metric_type == faiss.METRIC_L2:  # unit vectors: d = 2 - 2 cos
            return 1 - raw / 2
        return raw


def _unit(vectors):
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _innermost(index):
    index = faiss.downcast_index(index)
    while isinstance(index, (faiss.IndexPreTransform, faiss.IndexRefine)):
        index = faiss.downcast_index(index.index if isinstance(index, faiss.IndexPreTransform) else index.base_index)
    return index


def _n_centroids(index) -> int:
    """The largest k-means an index trains: IVF cells or PQ sub-codebook size."""
    inner = _innermost(index)
    pq = getattr(inner, "pq", None)
    return max(getattr(inner, "nlist", 1), pq.ksub if pq is not None else 1)


def _drop_excluded(ids, scores, exclude, n_items):
    """Remove excluded (row, id) pairs, keeping the order of the rest."""
    rows = np.repeat(np.arange(len(ids), dtype=np.int64), np.diff(exclude.indptr))
    banned = rows * n_items + exclude.indices                         # sorted: CSR rows, sorted columns
    keys = np.arange(len(ids), dtype=np.int64)[:, None] * n_items + ids
    dropped = np.isin(keys, banned) & (ids >= 0)
    order = np.argsort(dropped, axis=1, kind="stable")                # kept items first, in rank order
    ids, scores = np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)
    ids[np.take_along_axis(dropped, order, axis=1)] = -1
    return ids, scores


def _divisor_near(dim: int, target: int) -> int:
    return min((m for m in range(1, dim + 1) if dim % m == 0), key=lambda m: (abs(m - target), m))


def build_index(vectors, kind: str = "flat", *, metric: str = "ip", **params) -> VectorIndex:
    """Build a nearest-neighbour index over item vectors.

    Parameters
    ----------
    vectors : ndarray of shape (n_items, dim)
        Row ``i`` is item ``i``; ids returned by ``search`` are row numbers.
    kind : str
        ``"flat"`` (exact), ``"ivf"``, ``"pq"``, ``"ivfpq"``, ``"hnsw"``, ``"lsh"``, or a
        ``faiss.index_factory`` string.
    metric : {"ip", "cosine", "l2"}
    **params
        ``nlist`` (IVF cells, default ``4 sqrt(n)``), ``nprobe`` (cells scanned,
        default 8); ``m`` (PQ sub-vectors = bytes per code at 8 bits, default
        about dim / 4), ``nbits`` (bits per PQ sub-code, default 8; LSH code
        length, default 2 dim); ``M`` (HNSW links per node, default 32),
        ``ef_construction`` (default 40), ``ef_search`` (default 64);
        ``refine`` (re-rank ``refine * k`` candidates with the exact vectors,
        default 0: off); ``reduce_mips`` (index :func:`mips_to_l2` vectors,
        only with ``metric="ip"``; it helps IVF and LSH, while HNSW does better
        on the raw inner product); ``train_size`` (vectors sampled to train
        k-means, default ``max(10_000, 40 x centroids)``); ``random_state``
        (that sample and the k-means seed).

    Returns
    -------
    VectorIndex
        With ``build_seconds`` (training plus adding) and ``bytes_per_vector``.

    References
    ----------
    Jegou, Douze & Schmid (2011). Product quantization for nearest neighbor
    search. IEEE TPAMI (IVF, PQ, IVF-PQ). Malkov & Yashunin (2018). Efficient
    and robust approximate nearest neighbor search using Hierarchical
    Navigable Small World graphs. IEEE TPAMI. Charikar (2002). Similarity
    estimation techniques from rounding algorithms. STOC (LSH). Bachrach et al.
    (2014). Speeding up the Xbox recommender system using a Euclidean
    transformation for inner-product spaces. RecSys. Douze et al. (2024). The
    Faiss library. arXiv:2401.08281.

    Examples
    --------
    >>> index = build_index(item_factors, "ivf", metric="ip", nlist=1024, nprobe=16)
    >>> ids, scores = index.search(user_factors, 10)
    """
    vectors = check_vectors(vectors, "vectors")
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not one of {METRICS}.")
    short = kind in KINDS
    if not isinstance(kind, str) or (not short and kind.islower()):
        raise ValueError(f"kind={kind!r} is not one of {KINDS} nor a faiss factory string such as 'IVF256,Flat'.")
    allowed = (_PARAMS[kind] if short else {"nprobe", "ef_search", "refine"}) | _COMMON
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"{unknown[0]}={params[unknown[0]]!r} is not a parameter of kind={kind!r}; "
                         f"it accepts {sorted(allowed)}.")
    reduce_mips = bool(params.pop("reduce_mips", False))
    if reduce_mips and metric != "ip":
        raise ValueError(f"reduce_mips=True reduces inner-product search; it does not apply to metric={metric!r}.")
    if kind == "lsh" and metric == "ip" and not reduce_mips:
        raise ValueError("kind='lsh' estimates angles; for metric='ip' pass reduce_mips=True.")
    if kind == "lsh" and metric == "l2":
        raise ValueError("kind='lsh' estimates angles; use metric='cosine' or 'ip' (with reduce_mips=True).")
    rng = check_random_state(params.pop("random_state", 0))
    n, dim = vectors.shape

    start = time.perf_counter()
    data, max_norm = vectors, None
    if metric == "cosine":
        data = _unit(vectors)
    elif reduce_mips:
        max_norm = float(np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64).max()))
        data = augment_items(vectors, max_norm)
    faiss_metric = faiss.METRIC_L2 if metric == "l2" or reduce_mips else faiss.METRIC_INNER_PRODUCT
    d = data.shape[1]
    index, search = _make(kind, d, n, faiss_metric, params)
    if not index.is_trained:
        default = min(n, max(10_000, 40 * _n_centroids(index)))  # faiss wants >= 39 points per centroid
        train_size = check_positive_int(params.get("train_size", default), "train_size")
        if hasattr(faiss.downcast_index(index), "cp"):
            faiss.downcast_index(index).cp.seed = int(rng.integers(2**31 - 1))
        sample = data if train_size >= n else data[np.sort(rng.choice(n, train_size, replace=False))]
        index.train(sample)
    index.add(data)
    result = VectorIndex(index, kind=kind, metric=metric, dim=dim, params={**params, "reduce_mips": reduce_mips},
                         max_norm=max_norm, build_seconds=time.perf_counter() - start)
    return result.set_params(**search)


def _make(kind, d, n, faiss_metric, params):
    """The empty faiss index for a kind, and the search parameters to set on it."""
    nlist = check_positive_int(params.setdefault("nlist", max(1, min(int(4 * math.sqrt(n)), n // 39))), "nlist") \
        if kind in ("ivf", "ivfpq") else None
    search = {name: params[name] for name in ("nprobe", "ef_search") if name in params}
    if kind in ("ivf", "ivfpq"):
        search.setdefault("nprobe", params.setdefault("nprobe", 8))
    if kind in ("pq", "ivfpq"):
        m = check_positive_int(params.setdefault("m", _divisor_near(d, max(1, d // 4))), "m")
        nbits = check_positive_int(params.setdefault("nbits", 8), "nbits")
        if d % m:
            raise ValueError(f"m={m} must divide the vector dimension {d}.")
    if kind == "flat":
        index = faiss.IndexFlat(d, faiss_metric)
    elif kind == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlat(d, faiss_metric), d, nlist, faiss_metric)
    elif kind == "pq":
        index = faiss.IndexPQ(d, m, nbits, faiss_metric)
    elif kind == "ivfpq":
        index = faiss.IndexIVFPQ(faiss.IndexFlat(d, faiss_metric), d, nlist, m, nbits, faiss_metric)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, check_positive_int(params.setdefault("M", 32), "M"), faiss_metric)
        index.hnsw.efConstruction = check_positive_int(params.setdefault("ef_construction", 40), "ef_construction")
        search["ef_search"] = params.setdefault("ef_search", 64)
    elif kind == "lsh":
        index = faiss.IndexLSH(d, check_positive_int(params.setdefault("nbits", 2 * d), "nbits"), True)
    else:
        try:
            index = faiss.index_factory(d, kind, faiss_metric)
        except RuntimeError as error:
            raise ValueError(f"kind={kind!r} is not one of {KINDS} and faiss cannot parse it as a factory "
                             f"string: {str(error).strip().splitlines()[-1]}") from error
    refine = params.get("refine", 0)
    if refine:
        if not isinstance(faiss.downcast_index(index), faiss.IndexRefine):  # a factory ",RFlat" already is
            index = faiss.IndexRefineFlat(index)
        search["refine"] = refine
    return index, search


def load_index(path) -> VectorIndex:
    """Read an index written by :meth:`VectorIndex.save`.

    >>> index.save("items.npz"); same = load_index("items.npz")
    """
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
        index = faiss.deserialize_index(archive["index"])
    return VectorIndex(index, kind=meta["kind"], metric=meta["metric"], dim=meta["dim"], params=meta["params"],
                       max_norm=meta["max_norm"], build_seconds=meta["build_seconds"])
