"""The one small training loop every torch model of the course shares.

A model supplies its ``nn.Module``, a function that yields mini-batches for
an epoch, and a loss; the loop handles the device, seeding, the optimiser,
progress bars, a NaN check, the per-epoch loss history and early stopping on
a validation metric. Keeping it in one place means chapters 06 and 08-12
differ only in what is actually new. ``prefix_histories`` builds the
(recent history, next item) pairs that the next-item models train on.

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from recsys_lab.validation import check_nonnegative_float, check_positive_int, check_random_state

__all__ = ["pick_device", "torch_generator", "prefix_histories", "TrainingHistory", "train"]

logger = logging.getLogger("recsys_lab")


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else ``cuda`` when present, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torch_generator(random_state) -> tuple[np.random.Generator, int]:
    """A numpy Generator for batching plus an int seed for torch, both from ``random_state``.

    ``torch.manual_seed`` is set from the same seed, so parameter
    initialisation and dropout repeat from run to run on the CPU.
    """
    rng = check_random_state(random_state)
    seed = int(rng.integers(2**31 - 1))
    torch.manual_seed(seed)
    return rng, seed


def prefix_histories(sequences, max_history: int, pad: int, *, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every (history before position t, item at t) pair of every sequence, t >= 1 (or its ``last`` ones).

    Parameters
    ----------
    sequences : list of int arrays, oldest first (``Interactions.sequences()``)
    max_history : int
        Events kept per prefix.
    pad : int
        Fill value of prefixes shorter than ``max_history``.
    last : int, optional
        Keep only the ``last`` pairs of each sequence (its most recent targets).

    Returns
    -------
    histories : ndarray of shape (n_pairs, max_history), int64, most recent first
    targets : ndarray of shape (n_pairs,), int64

    >>> prefix_histories([np.array([4, 5, 6])], max_history=2, pad=-1)
    (array([[ 4, -1], [ 5,  4]]), array([5, 6]))
    """
    max_history = check_positive_int(max_history, "max_history")
    if last is not None:
        check_positive_int(last, "last")
    histories, targets = [], []
    for sequence in sequences:
        sequence = np.asarray(sequence, dtype=np.int64)
        if len(sequence) < 2:
            continue
        padded = np.concatenate([np.full(max_history, pad, dtype=np.int64), sequence])
        windows = np.lib.stride_tricks.sliding_window_view(padded, max_history)   # row k: sequence[k - L: k]
        start = 1 if last is None else max(1, len(sequence) - last)
        histories.append(windows[start: len(sequence), ::-1])                   # (len - start, L), most recent first
        targets.append(sequence[start:])
    if not targets:
        raise ValueError("no user has two or more events: there is no next item to learn from.")
    return np.concatenate(histories), np.concatenate(targets)


@dataclass
class TrainingHistory:
    """Mean training loss and wall time per epoch (plus any validation metric).

    ``best_epoch`` (1-based) is set when training used early stopping: the module
    holds that epoch's weights, and a refit on more data trains that many
    epochs (see :func:`recsys_lab.evaluation.refit`).
    """

    loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    metric: list[float] = field(default_factory=list)
    best_epoch: int | None = None

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")


def train(
    module: torch.nn.Module,
    batches: Callable[[np.random.Generator], Iterable[tuple]],
    loss_fn: Callable[..., torch.Tensor],
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 0.0,
    rng: np.random.Generator,
    device: torch.device,
    show_progress: bool = True,
    on_epoch_end: Callable[[int], float | None] | None = None,
    patience: int | None = None,
    desc: str = "training",
) -> TrainingHistory:
    """Train ``module`` with Adam for at most ``epochs`` passes.

    Parameters
    ----------
    batches : callable
        ``batches(rng)`` yields tuples of tensors (already on ``device`` or
        numpy arrays); called once per epoch so each epoch reshuffles.
    loss_fn : callable
        ``loss_fn(module, *batch) -> scalar tensor``.
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch)`` may return a validation metric to record
        (higher is better).
    patience : int, optional
        Early stopping: stop once the metric has not improved for
        ``patience`` epochs, then restore the weights of the best epoch
        (``history.best_epoch``). ``epochs`` is then a cap. Needs
        ``on_epoch_end`` to return the metric after every epoch.
    """
    epochs = check_positive_int(epochs, "epochs")
    if patience is not None:
        patience = check_positive_int(patience, "patience")
        if on_epoch_end is None:
            raise ValueError("patience needs a validation metric: pass on_epoch_end, a function that returns "
                             "the metric (higher is better) after each epoch.")
    lr = check_nonnegative_float(lr, "lr", strictly_positive=True)
    weight_decay = check_nonnegative_float(weight_decay, "weight_decay")
    module.to(device)
    optimiser = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    history = TrainingHistory()
    best_weights = None
    bar = tqdm(range(epochs), disable=not show_progress, desc=desc)
    for epoch in bar:
        module.train()
        started, total, count = time.perf_counter(), 0.0, 0
        for batch in batches(rng):
            batch = tuple(torch.as_tensor(b, device=device) for b in batch)
            loss = loss_fn(module, *batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} in epoch {epoch + 1}: training diverged. "
                    f"Lower the learning rate (lr={lr}) or raise the regularization."
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item()
            count += 1
        module.eval()
        history.loss.append(total / max(count, 1))
        history.seconds.append(time.perf_counter() - started)
        if on_epoch_end is not None:
            metric = on_epoch_end(epoch)
            if metric is not None:
                history.metric.append(float(metric))
        bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
        logger.debug("%s epoch %d loss %.5f", desc, epoch + 1, history.loss[-1])
        if patience is not None:
            if len(history.metric) != epoch + 1:
                raise ValueError(f"on_epoch_end returned no metric after epoch {epoch + 1}; "
                                 "early stopping (patience) needs one after every epoch.")
            if history.best_epoch is None or history.metric[-1] > history.metric[history.best_epoch - 1]:
                history.best_epoch = epoch + 1
                best_weights = {name: value.detach().clone() for name, value in module.state_dict().items()}
            elif epoch + 1 - history.best_epoch >= patience:
                break
    if best_weights is not None:
        module.load_state_dict(best_weights)
    return history
