"""Tests of recsys_lab.scale.cost: the exact count of shipped vectors and the paper model."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.data import synthetic_user_items
from recsys_lab.scale.cost import als_iteration_cost, expected_vectors_shipped, vectors_shipped


def test_vectors_shipped_counts_each_block_once_by_hand():
    # users 0, 2 fall in block 0 and user 1 in block 1 (id % 2); item 0 is rated by users 0 and 2 (one block),
    # item 1 by users 0 and 1 (two blocks); user 0 rates items 0 and 1 (two item blocks), users 1 and 2 one each
    user_items = sp.csr_matrix(np.array([[1, 1], [0, 1], [1, 0]], dtype=np.float32))
    assert vectors_shipped(user_items, 2) == (3, 4)
    assert vectors_shipped(user_items, 1) == (2, 3)          # one block: each vector once


def test_the_expected_count_matches_the_exact_one_on_hashed_blocks():
    user_items = synthetic_user_items(3_000, 2_000, interactions_per_user=10, random_state=0)
    user_degrees = np.diff(user_items.indptr)
    item_degrees = np.bincount(user_items.indices, minlength=user_items.shape[1])
    for blocks in (1, 4, 50):
        exact = vectors_shipped(user_items, blocks)
        expected = expected_vectors_shipped(user_degrees, item_degrees, blocks)
        assert expected == pytest.approx(exact, rel=0.05)


def test_iteration_cost_scales_with_data_and_splits_memory():
    users, items = np.full(100, 5), np.full(50, 10)
    small = als_iteration_cost(users, items, blocks=10, factors=8, executors=1)
    large = als_iteration_cost(np.tile(users, 10), np.tile(items, 10), blocks=10, factors=8, executors=1)
    spread = als_iteration_cost(np.tile(users, 10), np.tile(items, 10), blocks=10, factors=8, executors=10)
    assert small["interactions"] == 500 and large["interactions"] == 5000
    assert large["shuffle bytes"] == pytest.approx(10 * small["shuffle bytes"])
    assert spread["memory bytes per executor"] == pytest.approx(large["memory bytes per executor"] / 10)
    assert large["shuffle bytes"] <= 2 * 4 * 8 * 5000                  # at most one vector per interaction each way


def test_cost_functions_check_their_inputs():
    with pytest.raises(ValueError, match="blocks=0"):
        expected_vectors_shipped([1], [1], 0)
    with pytest.raises(ValueError, match="item_degrees"):
        expected_vectors_shipped([1, 2], [-1], 2)
    with pytest.raises(ValueError, match="executors=0"):
        als_iteration_cost([1], [1], blocks=2, factors=4, executors=0)
