"""Tests of recsys_lab.retrieval.index: exact search, the MIPS reduction, exclusion, save/load, errors."""

import os

import numpy as np
import pytest
import scipy.sparse as sp

# OpenMP threads that spin while waiting slow faiss down badly on a busy CI machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
faiss = pytest.importorskip("faiss")

from ranking_checks import assert_same_top_k  # noqa: E402
from recsys_lab.data import synthetic_factors  # noqa: E402
from recsys_lab.retrieval.index import KINDS, build_index, load_index  # noqa: E402
from recsys_lab.retrieval.measure import measure_search, recall_at_k  # noqa: E402
from recsys_lab.retrieval.mips import mips_to_l2  # noqa: E402


pytestmark = pytest.mark.usefixtures("faiss_one_thread")   # tests/conftest.py


@pytest.fixture(scope="module")
def vectors():
    """Clustered items with popularity-dependent norms (where MIPS != cosine), and user queries."""
    users, items, _ = synthetic_factors(40, 12_000, 16, n_clusters=8, random_state=0)
    return items, users


def reference(items, queries, metric="ip"):
    """Every query's score for every item in float64, higher is better (negative distances for l2)."""
    if metric == "cosine":
        items = items / np.linalg.norm(items, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    if metric == "l2":
        return -((queries[:, None, :].astype(np.float64) - items[None]) ** 2).sum(-1)
    return queries.astype(np.float64) @ items.T


def brute_force(items, queries, k, metric="ip"):
    scores = reference(items, queries, metric)
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(scores, ids, axis=1)


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_flat_search_equals_brute_force(vectors, metric):
    items, queries = vectors
    ids, scores = build_index(items, "flat", metric=metric).search(queries, 10)
    want_ids, want_scores = brute_force(items, queries, 10, metric)
    assert ids.shape == scores.shape == (len(queries), 10) and ids.dtype == np.int64
    assert_same_top_k(ids, want_ids, reference(items, queries, metric))
    np.testing.assert_allclose(scores, -want_scores if metric == "l2" else want_scores, rtol=1e-4, atol=1e-3)


def test_mips_reduction_ranks_like_the_inner_product(vectors):
    items, queries = vectors
    items_l2, queries_l2 = mips_to_l2(items, queries)
    assert items_l2.shape == (len(items), items.shape[1] + 1) and queries_l2.shape == (len(queries), items.shape[1] + 1)
    norms = np.linalg.norm(items_l2, axis=1)
    np.testing.assert_allclose(norms, norms.max(), rtol=1e-5)  # every item now has the same norm M
    l2_ids, _ = brute_force(items_l2, queries_l2, 10, "l2")
    ip_ids, _ = brute_force(items, queries, 10, "ip")
    assert_same_top_k(l2_ids, ip_ids, reference(items, queries, "ip"))
    # and on the items alone
    assert mips_to_l2(items)[1] is None


def test_reduced_index_returns_inner_products(vectors):
    items, queries = vectors
    ids, scores = build_index(items, "flat", metric="ip", reduce_mips=True).search(queries, 10)
    want_ids, want_scores = brute_force(items, queries, 10)
    assert_same_top_k(ids, want_ids, reference(items, queries, "ip"))
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind, params, floor", [
    ("ivf", dict(nlist=64, nprobe=16), 0.9),
    ("hnsw", dict(M=16, ef_search=64), 0.9),
    ("hnsw", dict(M=16, ef_search=64, reduce_mips=True), 0.9),
    ("ivfpq", dict(nlist=32, nprobe=8, m=8, refine=8), 0.9),
    ("pq", dict(m=8), 0.3),
    ("lsh", dict(nbits=64, reduce_mips=True, refine=20), 0.3),
    ("IVF32,Flat", dict(nprobe=32), 0.99),
])
def test_approximate_indexes_find_most_neighbours(vectors, kind, params, floor):
    items, queries = vectors
    exact = build_index(items, "flat")
    index = build_index(items, kind, **params)
    assert index.n_items == len(items) and index.bytes_per_vector > 0 and index.build_seconds > 0
    assert floor <= recall_at_k(index, exact, queries, 10) <= 1.0


def test_recall_of_exact_search_is_one(vectors):
    items, queries = vectors
    exact = build_index(items, "flat")
    truth, _ = exact.search(queries, 10)
    assert recall_at_k(exact, truth, queries, 10) == 1.0
    result = measure_search(exact, queries, 10, exact_ids=truth, repeat=2)
    assert result["recall"] == 1.0 and result["qps"] > 0
    assert result["bytes_per_vector"] >= 4 * items.shape[1]


def test_set_params_changes_search_without_rebuilding(vectors):
    items, queries = vectors
    index = build_index(items, "ivf", nlist=64, nprobe=1)
    truth, _ = build_index(items, "flat").search(queries, 10)
    low = recall_at_k(index, truth, queries)
    high = recall_at_k(index.set_params(nprobe=64), truth, queries)
    assert index.params["nprobe"] == 64 and high == 1.0 and high >= low


@pytest.mark.parametrize("kind, params", [
    ("flat", {}), ("hnsw", dict(M=8, reduce_mips=True)), ("ivfpq", dict(nlist=16, m=4, refine=4)),
    ("lsh", dict(nbits=32, metric="cosine")),
])
def test_saved_and_loaded_index_answers_the_same(vectors, tmp_path, kind, params):
    items, queries = vectors
    index = build_index(items, kind, **params)
    path = tmp_path / "items.index"
    index.save(path)
    loaded = load_index(path)
    assert (loaded.kind, loaded.metric, loaded.params, loaded.n_items) == (index.kind, index.metric, index.params, index.n_items)
    for got, want in zip(loaded.search(queries, 10), index.search(queries, 10)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_exclusion_skips_seen_items(vectors, kind):
    items, queries = vectors
    # exclude each query's own exact top 5 plus some random items
    top5, _ = brute_force(items, queries, 5)
    rng = np.random.default_rng(0)
    cols = np.hstack([top5, rng.integers(len(items), size=(len(queries), 20))])
    rows = np.repeat(np.arange(len(queries)), cols.shape[1])
    exclude = sp.csr_matrix((np.ones(rows.size), (rows, cols.ravel())), shape=(len(queries), len(items)))
    ids, _ = build_index(items, kind).search(queries, 10, exclude=exclude)
    for row in range(len(queries)):
        assert not np.isin(ids[row], exclude[row].indices).any()
    scores = queries.astype(np.float64) @ items.T
    scores[exclude.nonzero()] = -np.inf
    want = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    if kind == "flat":
        assert_same_top_k(ids, want, scores)


def test_excluding_almost_everything_pads_with_minus_one():
    items = np.eye(4, dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 0]]))
    ids, scores = build_index(items).search(items[:1], 3, exclude=exclude)
    np.testing.assert_array_equal(ids, [[3, -1, -1]])
    assert scores[0, 0] == 0 and np.isneginf(scores[0, 1:]).all()


def test_cosine_ignores_the_norm():
    items = np.array([[1, 0], [10, 1], [0, 1]], dtype=np.float32)
    query = np.array([[1, 0]], dtype=np.float32)
    assert build_index(items, metric="ip").search(query, 1)[0][0, 0] == 1
    assert build_index(items, metric="cosine").search(query, 1)[0][0, 0] == 0


def test_lsh_scores_estimate_cosine(vectors):
    items, queries = vectors
    index = build_index(items, "lsh", metric="cosine", nbits=256)
    ids, scores = index.search(queries, 10)
    unit_items = items / np.linalg.norm(items, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    true = np.take_along_axis(unit_queries @ unit_items.T, ids, axis=1)
    assert np.abs(scores - true).mean() < 0.15


# ---------------------------------------------------------------- errors
def test_errors_name_the_bad_value(vectors):
    items, queries = vectors
    index = build_index(items, "flat")
    with pytest.raises(ValueError, match="queries have 8 dims; the index holds 16-dim"):
        index.search(queries[:, :8], 10)
    with pytest.raises(ValueError, match=f"k=12001 is larger than the {len(items)}"):
        index.search(queries, len(items) + 1)
    with pytest.raises(ValueError, match="k=0 must be at least 1"):
        index.search(queries, 0)
    with pytest.raises(ValueError, match="vectors is empty"):
        build_index(np.zeros((0, 16), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        build_index(np.zeros(16, np.float32))
    bad = items.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values.*\\(first in row 7\\)"):
        build_index(bad)
    huge = items.astype(np.float64)
    huge[5, 0] = 1e300                                   # finite in float64, inf once cast to float32
    with pytest.raises(ValueError, match="too large for float32 \\(first in row 5\\)"):
        build_index(huge)
    bad_queries = queries.copy()
    bad_queries[2, 0] = np.inf
    with pytest.raises(ValueError, match="queries contains NaN"):
        index.search(bad_queries, 10)
    with pytest.raises(ValueError, match="kind='annoy' is not one of"):
        build_index(items, "annoy")
    with pytest.raises(ValueError, match="kind='Nonsense42' is not one of .* faiss cannot parse"):
        build_index(items, "Nonsense42")
    with pytest.raises(ValueError, match="metric='dot' is not one of"):
        build_index(items, metric="dot")
    with pytest.raises(ValueError, match="nprobe=4 is not a parameter of kind='hnsw'"):
        build_index(items, "hnsw", nprobe=4)
    with pytest.raises(ValueError, match="m=5 must divide the vector dimension 16"):
        build_index(items, "pq", m=5)
    with pytest.raises(ValueError, match="reduce_mips=True .* metric='cosine'"):
        build_index(items, metric="cosine", reduce_mips=True)
    with pytest.raises(ValueError, match="for metric='ip' pass reduce_mips=True"):
        build_index(items, "lsh")
    with pytest.raises(ValueError, match="exclude must be a sparse matrix of shape"):
        index.search(queries, 10, exclude=sp.csr_matrix((3, len(items))))
    with pytest.raises(ValueError, match="efs=3 is not a search parameter"):
        index.set_params(efs=3)
    with pytest.raises(ValueError, match="nprobe=4 does not apply to this 'flat' index"):
        index.set_params(nprobe=4)
    with pytest.raises(ValueError, match="refine=4 needs an index built with refine"):
        index.set_params(refine=4)
    with pytest.raises(ValueError, match="exact ids must have shape"):
        recall_at_k(index, np.zeros((len(queries), 5), np.int64), queries, 10)


def test_every_short_kind_builds(vectors):
    items, queries = vectors
    for kind in KINDS:
        params = dict(reduce_mips=True) if kind == "lsh" else {}
        ids, scores = build_index(items, kind, **params).search(queries, 5)
        assert ids.shape == (len(queries), 5) and (ids >= 0).all() and np.isfinite(scores).all()


def test_mips_reduction_property():
    """For any finite items and query, L2 distances on the reduction are ||q||^2 + M^2 - 2 q.x."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    values = st.floats(-10, 10, allow_nan=False, width=32)

    @settings(max_examples=50, deadline=None)
    @given(arrays(np.float32, st.tuples(st.integers(1, 30), st.just(5)), elements=values),
           arrays(np.float32, (1, 5), elements=values))
    def check(items, query):
        items_l2, query_l2 = mips_to_l2(items, query)
        max_norm = np.linalg.norm(items.astype(np.float64), axis=1).max()
        dist = ((query_l2.astype(np.float64) - items_l2) ** 2).sum(axis=1)
        want = (query.astype(np.float64) ** 2).sum() + max_norm**2 - 2 * items.astype(np.float64) @ query[0]
        np.testing.assert_allclose(dist, want, rtol=1e-4, atol=1e-2 * (1 + max_norm**2))

    check()
