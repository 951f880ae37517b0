"""Data-parallel training with ``torch.distributed``: the chapter 09 two-tower model on several workers.

DistributedDataParallel (DDP; Li et al., 2020) keeps a full copy of the model
on every worker. Each step every worker runs its slice of the global batch
through its copy and, during the backward pass, DDP averages the gradients
of all copies with an all-reduce; every optimiser step therefore starts from
the same gradient on every worker and the copies never drift apart.

A two-tower model trained with in-batch negatives needs one more piece: a
row's negatives are the *other items of the batch*, and with the batch split
over workers each worker only computes the vectors of its own slice. Each
worker therefore all-gathers the user and item vectors of the whole batch
(an all-gather that passes gradients back to the worker that computed each
vector) and evaluates the in-batch softmax over the global batch. With
``W`` workers the local gradients are ``W`` times each worker's share of the
global one, and DDP's average of them is exactly the full-batch gradient: two
workers with half the batch each take the same steps as one with the whole
batch, up to floating-point rounding.

The same worker runs three ways:

* in this process with ``world_size=1``, no ``torch.distributed`` at all (the reference);
* :func:`spawn_data_parallel`: ``world_size`` processes on this machine, gloo backend;
* on a cluster, one line per machine:
  ``torchrun --nnodes=N --nproc-per-node=P --rdzv-endpoint=HOST:29500 -m recsys_lab.scale.distributed --out run.npz``.

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from recsys_lab.data import leave_last_out, load_movielens_100k
from recsys_lab.features.crosses import movielens_features
from recsys_lab.models.sampled_softmax import in_batch_softmax_loss, log_q
from recsys_lab.models.sasrec import pad_histories
from recsys_lab.models.training import train
from recsys_lab.models.two_tower import TwoTowerConfig, TwoTowerModule
from recsys_lab.validation import check_positive_int

__all__ = ["DataParallelConfig", "DataParallelRun", "shard_rows", "gather_rows", "GlobalInBatchLoss",
           "train_worker", "spawn_data_parallel", "load_run", "main"]


@dataclass
class DataParallelConfig:
    """What every worker trains: the chapter 09 towers on ML-100K's training events."""

    steps: int = 20               # optimiser steps (one global batch each)
    batch_size: int = 512         # global batch: split evenly over the workers
    seed: int = 0                 # initial weights and batch order, the same on every worker
    # dropout draws different masks on different workers; off, the runs can be compared step for step
    towers: TwoTowerConfig = field(default_factory=lambda: TwoTowerConfig(dropout=0.0))

    def __post_init__(self):
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.seed, "seed", minimum=0)


@dataclass
class DataParallelRun:
    """The outcome of one run: final parameters, the loss of each step, wall time."""

    parameters: dict[str, np.ndarray]   # name -> array, as in module.state_dict()
    loss: list[float]                   # global-batch loss of each step
    seconds: float                      # training time on rank 0 (start-up excluded)
    world_size: int


def shard_rows(rows: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Worker ``rank``'s contiguous slice of a global batch; the slices concatenate back to ``rows``.

    >>> shard_rows(np.arange(6), 1, 2)
    array([3, 4, 5])
    """
    world_size = check_positive_int(world_size, "world_size")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} must lie in 0..{world_size - 1}.")
    if len(rows) % world_size:
        raise ValueError(f"a batch of {len(rows)} rows does not split evenly over {world_size} workers; "
                         f"choose batch_size as a multiple of world_size.")
    size = len(rows) // world_size
    return rows[rank * size : (rank + 1) * size]


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every worker's ``tensor`` (B/W, d) into the global (B, d), in rank order.

    Gradients flow back: each worker receives the sum over workers of the
    gradient with respect to the rows it computed. Without a process group
    (one worker) the tensor is returned as it is.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return tensor
    return _GatherRows.apply(tensor)


class _GatherRows(torch.autograd.Function):
    """All-gather forward; backward sums each row's gradient over the workers and keeps one's own rows."""

    @staticmethod
    def forward(ctx, tensor):                                        # (b, d) -> (W b, d)
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad):                                         # (W b, d) -> (b, d)
        grad = grad.contiguous()
        dist.all_reduce(grad)                                        # every worker's loss depends on every row
        rows = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * rows : (dist.get_rank() + 1) * rows]


class GlobalInBatchLoss(nn.Module):
    """The two-tower in-batch softmax over the global batch, from each worker's slice.

    ``forward(users, prefixes, items, batch_items)`` takes this worker's
    slice (users (b,), prefixes (b, L), items (b,)) and the item ids of the
    whole batch (B,), and returns the global-batch loss; wrapped in DDP,
    its backward pass also averages the gradients over the workers.
    """

    def __init__(self, towers: TwoTowerModule, config: TwoTowerConfig):
        super().__init__()
        self.towers, self.config = towers, config

    def forward(self, users, prefixes, items, batch_items):
        user_vectors = gather_rows(self.towers.users(users, prefixes))   # (B, d), every worker's rows
        item_vectors = gather_rows(self.towers.items(items))             # (B, d)
        lq = self.towers.item_log_q[batch_items] if self.config.log_q_correction else None
        return in_batch_softmax_loss(user_vectors, item_vectors, item_log_q=lq, item_ids=batch_items,
                                     temperature=self.config.temperature)


def _next_item_examples(sequences, history_len: int):
    """(user, padded recent prefix, next item) for every event with at least one event before it."""
    users, prefixes, targets = [], [], []
    for user, sequence in enumerate(sequences):
        for t in range(1, len(sequence)):
            users.append(user)
            prefixes.append(sequence[max(0, t - history_len) : t])
            targets.append(sequence[t])
    return np.asarray(users), pad_histories(prefixes, history_len), np.asarray(targets)


def train_worker(rank: int, world_size: int, config: DataParallelConfig, out_path=None) -> DataParallelRun:
    """Train the towers as worker ``rank`` of ``world_size`` (the process group must exist when > 1).

    Every worker loads the same data, seeds the same initial weights and
    draws the same sequence of global batches; it then runs only its slice
    of each batch. Rank 0 returns the run and, given ``out_path``, saves it
    there (``.npz``).
    """
    ml = load_movielens_100k()
    split = leave_last_out(ml.interactions)
    user_features, item_features = movielens_features(ml)
    cfg = config.towers
    users, prefixes, targets = _next_item_examples(split.train.sequences(), cfg.history_len)

    torch.manual_seed(config.seed)
    towers = TwoTowerModule(user_features, item_features, cfg)
    towers.register_buffer("item_log_q", torch.as_tensor(log_q(np.bincount(targets, minlength=split.train.n_items)),
                                                         dtype=torch.float32))
    model = GlobalInBatchLoss(towers, cfg)
    if world_size > 1:
        model = DistributedDataParallel(model)          # broadcasts rank 0's weights, then averages gradients
    rng = np.random.default_rng(config.seed)             # the same batches on every worker

    def one_batch(rng):                                  # one step per "epoch" of the shared loop
        rows = rng.choice(len(targets), size=config.batch_size, replace=False)
        mine = shard_rows(rows, rank, world_size)
        yield users[mine], prefixes[mine], targets[mine], targets[rows]

    started = time.perf_counter()
    history = train(model, one_batch, lambda module, *batch: module(*batch), epochs=config.steps, lr=cfg.lr,
                    weight_decay=cfg.weight_decay, rng=rng, device=torch.device("cpu"), show_progress=False,
                    desc=f"worker {rank}")
    run = DataParallelRun({name: value.detach().numpy().copy() for name, value in towers.state_dict().items()},
                          history.loss, time.perf_counter() - started, world_size)
    if rank == 0 and out_path is not None:
        np.savez(out_path, loss=np.asarray(run.loss), seconds=run.seconds, world_size=world_size,
                 **{f"param:{name}": value for name, value in run.parameters.items()})
    return run


def load_run(path) -> DataParallelRun:
    """Read back a run saved by rank 0."""
    with np.load(path) as saved:
        parameters = {key[len("param:"):]: saved[key] for key in saved.files if key.startswith("param:")}
        return DataParallelRun(parameters, saved["loss"].tolist(), float(saved["seconds"]), int(saved["world_size"]))


def _spawned_worker(rank: int, world_size: int, config: DataParallelConfig, rendezvous: str, out_path: str):
    torch.set_num_threads(1)          # one core per worker: the workers stand for separate machines
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        train_worker(rank, world_size, config, out_path)
    finally:
        dist.destroy_process_group()


def spawn_data_parallel(world_size: int = 2, config: DataParallelConfig | None = None) -> DataParallelRun:
    """Run :func:`train_worker` in ``world_size`` new processes on this machine (gloo, CPU).

    The processes meet through a file in a temporary directory (no network
    port is opened beyond the loopback connections gloo makes between them).

    Examples
    --------
    >>> two = spawn_data_parallel(2, DataParallelConfig(steps=20))
    >>> one = train_worker(0, 1, DataParallelConfig(steps=20))
    >>> all(np.allclose(two.parameters[n], one.parameters[n], atol=1e-5) for n in one.parameters)
    True
    """
    world_size = check_positive_int(world_size, "world_size")
    config = config if config is not None else DataParallelConfig()
    shard_rows(np.arange(config.batch_size), 0, world_size)          # fail early on an uneven split
    with tempfile.TemporaryDirectory(prefix="recsys_lab-ddp-") as folder:
        out_path = os.path.join(folder, "run.npz")
        mp.spawn(_spawned_worker, args=(world_size, config, os.path.join(folder, "rendezvous"), out_path),
                 nprocs=world_size, join=True)
        return load_run(out_path)


def main(argv=None) -> None:
    """Entry point under ``torchrun``, which sets RANK, WORLD_SIZE and the rendezvous address."""
    parser = argparse.ArgumentParser(description="Data-parallel two-tower training (one process per worker).")
    parser.add_argument("--steps", type=int, default=DataParallelConfig.steps)
    parser.add_argument("--batch-size", type=int, default=DataParallelConfig.batch_size)
    parser.add_argument("--seed", type=int, default=DataParallelConfig.seed)
    parser.add_argument("--out", type=Path, required=True, help="where rank 0 saves the run (.npz)")
    args = parser.parse_args(argv)
    dist.init_process_group("gloo")                                  # env:// set by torchrun
    try:
        config = DataParallelConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed)
        train_worker(dist.get_rank(), dist.get_world_size(), config, args.out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
