"""Tests of recsys_lab.scale.sharding: shard bounds, the top-k merge, and sharded == unsharded search."""

import os

import numpy as np
import pytest
import scipy.sparse as sp

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
faiss = pytest.importorskip("faiss")

from recsys_lab.data import synthetic_factors  # noqa: E402
from recsys_lab.evaluation import top_k_overlap  # noqa: E402
from recsys_lab.retrieval.index import build_index  # noqa: E402
from recsys_lab.scale.sharding import ShardedIndex, build_sharded_index, merge_top_k, shard_bounds  # noqa: E402


pytestmark = pytest.mark.usefixtures("faiss_one_thread")   # tests/conftest.py


@pytest.fixture(scope="module")
def vectors():
    users, items, _ = synthetic_factors(30, 5_000, 16, n_clusters=8, random_state=0)
    return items, users


def test_shard_bounds_cover_every_item_in_near_equal_ranges():
    bounds = shard_bounds(10, 3)
    np.testing.assert_array_equal(bounds, [0, 4, 7, 10])
    with pytest.raises(ValueError, match="n_shards=11"):
        shard_bounds(10, 11)


def test_merge_top_k_keeps_the_best_and_puts_missing_results_last():
    ids = [np.array([[0, 1]]), np.array([[5, -1]])]
    scores = [np.array([[0.9, 0.1]]), np.array([[0.5, -np.inf]])]
    merged_ids, merged_scores = merge_top_k(ids, scores, 3)
    np.testing.assert_array_equal(merged_ids, [[0, 5, 1]])
    np.testing.assert_allclose(merged_scores, [[0.9, 0.5, 0.1]])
    small_ids, _ = merge_top_k([np.array([[2, 3]])], [np.array([[1.0, 4.0]])], 1, largest=False)
    np.testing.assert_array_equal(small_ids, [[2]])


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_exact_shards_return_the_unsharded_top_k(vectors, metric):
    items, queries = vectors
    want_ids, want_scores = build_index(items, "flat", metric=metric).search(queries, 10)
    sharded = build_sharded_index(items, 3, "flat", metric=metric)
    ids, scores = sharded.search(queries, 10)
    assert top_k_overlap(ids, want_ids) >= 0.99
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-4)
    assert len(sharded.memory_bytes) == 3 and sharded.n_items == len(items)


def test_exclusions_are_applied_inside_each_shard(vectors):
    items, queries = vectors
    first_ids, _ = build_index(items, "flat").search(queries, 10)
    exclude = sp.csr_matrix((np.ones(first_ids.size), (np.repeat(np.arange(len(queries)), 10), first_ids.ravel())),
                            shape=(len(queries), len(items)))
    want_ids, _ = build_index(items, "flat").search(queries, 10, exclude=exclude)
    ids, _ = build_sharded_index(items, 4, "flat").search(queries, 10, exclude=exclude)
    assert not (ids[:, :, None] == first_ids[:, None, :]).any()          # no row returns its excluded items
    assert top_k_overlap(ids, want_ids) >= 0.99


def test_search_and_construction_check_their_inputs(vectors):
    items, queries = vectors
    sharded = build_sharded_index(items, 2, "flat")
    with pytest.raises(ValueError, match="k=5001"):
        sharded.search(queries, 5001)
    with pytest.raises(ValueError, match="exclude"):
        sharded.search(queries, 5, exclude=sp.csr_matrix((2, 2)))
    with pytest.raises(ValueError, match="bounds"):
        ShardedIndex(sharded.shards, np.array([0, len(items)]))
