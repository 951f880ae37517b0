"""Tests of recsys_lab.scale.distributed: batch slicing, the gather, and DDP == one big batch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recsys_lab.scale.distributed import (  # noqa: E402
    DataParallelConfig,
    gather_rows,
    shard_rows,
    spawn_data_parallel,
    train_worker,
)
from recsys_lab.models.two_tower import TwoTowerConfig  # noqa: E402


def test_shard_rows_cut_a_batch_into_contiguous_equal_slices():
    rows = np.arange(10, 22)
    slices = [shard_rows(rows, rank, 3) for rank in range(3)]
    assert [len(s) for s in slices] == [4, 4, 4]
    np.testing.assert_array_equal(np.concatenate(slices), rows)


@pytest.mark.parametrize("rank, world_size, match", [(2, 2, "rank=2"), (-1, 2, "rank=-1"), (0, 0, "world_size=0")])
def test_shard_rows_refuses_a_bad_rank_or_world(rank, world_size, match):
    with pytest.raises(ValueError, match=match):
        shard_rows(np.arange(4), rank, world_size)


def test_shard_rows_refuses_an_uneven_split():
    with pytest.raises(ValueError, match="multiple of world_size"):
        shard_rows(np.arange(5), 0, 2)


def test_gather_rows_without_a_process_group_is_the_identity():
    tensor = torch.arange(6.0).reshape(3, 2)
    assert gather_rows(tensor) is tensor


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="steps=0"):
        DataParallelConfig(steps=0)
    with pytest.raises(ValueError, match="seed=-1"):
        DataParallelConfig(seed=-1)


def test_two_workers_with_half_the_batch_take_the_steps_of_one_worker_with_all_of_it(movielens):
    config = DataParallelConfig(steps=3, batch_size=64, towers=TwoTowerConfig(factors=16, hidden=32, dropout=0.0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = train_worker(0, 1, config)
    finally:
        torch.set_num_threads(threads)
    two = spawn_data_parallel(2, config)
    assert two.world_size == 2 and len(two.loss) == 3
    np.testing.assert_allclose(two.loss, one.loss, rtol=1e-5)
    moved = [n for n in one.parameters if n.endswith(".weight")]
    assert moved
    for name in one.parameters:
        np.testing.assert_allclose(two.parameters[name], one.parameters[name], rtol=1e-4, atol=1e-5, err_msg=name)
