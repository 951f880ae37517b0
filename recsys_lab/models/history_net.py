"""A small neural model over the user's history, with optional external item vectors.

The third way to use external embeddings (chapter 06): instead of
hand-crafting aggregates of the history, let a network learn how to pool it.
Each item is represented by a learned id embedding plus a learned projection
of its fixed external vector (text, image, ...):

.. math:: e_i = E_i + W x_i,

the last ``max_history`` events are pooled into a user vector (a softmax
attention with a learned query over ``e_i`` plus a recency embedding, or a
plain mean), and the model is trained to predict the next item with a full
softmax over the catalogue, scoring candidate ``j`` as :math:`u^\\top e_j`
(the same item representations on both sides, as in weight tying, so an item
with an external vector but few interactions still gets a sensible score).

It can learn the aggregations of :mod:`recsys_lab.features.external` (a
mean, a recency decay) and more, at the price of training.

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from recsys_lab.data.interactions import Interactions
from recsys_lab.models.base import Recommender
from recsys_lab.models.training import pick_device, prefix_histories, torch_generator, train
from recsys_lab.validation import check_item_vectors, check_nonnegative_float, check_positive_int, check_user_items

__all__ = ["HistoryNetConfig", "HistoryNet"]


@dataclass
class HistoryNetConfig:
    """Hyperparameters of :class:`HistoryNet` (the defaults train on MovieLens-100K in under a minute on a laptop CPU)."""

    dim: int = 64                # size of the id embeddings, the projected external vectors and the user vector
    max_history: int = 20        # only the most recent events are read
    pooling: str = "attention"   # "attention" (learned query + recency embedding) or "mean"
    dropout: float = 0.1         # on the item representations of the history
    epochs: int = 5              # passes over every (history prefix, next item) pair (a cap with early stopping)
    patience: int | None = None  # with a validation metric: stop after this many epochs without a gain
    batch_size: int = 512        # prefixes per step
    lr: float = 3e-3             # Adam learning rate
    weight_decay: float = 0.0    # L2 penalty in Adam
    device: str | None = None    # None: cuda when present, else the CPU

    def validate(self) -> "HistoryNetConfig":
        check_positive_int(self.dim, "dim")
        check_positive_int(self.max_history, "max_history")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        check_nonnegative_float(self.weight_decay, "weight_decay")
        if self.pooling not in ("attention", "mean"):
            raise ValueError(f"pooling={self.pooling!r} must be 'attention' or 'mean'.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1).")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")
        return self


class HistoryModule(nn.Module):
    """Item representations, history pooling and next-item logits."""

    def __init__(self, n_items: int, external: torch.Tensor | None, config: HistoryNetConfig):
        super().__init__()
        self.n_items, self.pooling = n_items, config.pooling
        self.item = nn.Embedding(n_items + 1, config.dim, padding_idx=n_items)   # last row: padding
        nn.init.normal_(self.item.weight, std=0.05)
        with torch.no_grad():
            self.item.weight[n_items].zero_()
        if external is not None:
            padded = torch.cat([external, external.new_zeros(1, external.shape[1])])  # (n_items + 1, d_ext)
            self.register_buffer("external", padded)
            self.project = nn.Linear(external.shape[1], config.dim, bias=False)
        else:
            self.external, self.project = None, None
        self.recency = nn.Embedding(config.max_history, config.dim)              # position 0 = most recent
        nn.init.normal_(self.recency.weight, std=0.05)
        self.key = nn.Linear(config.dim, config.dim)
        self.query = nn.Parameter(torch.zeros(config.dim))
        self.dropout = nn.Dropout(config.dropout)

    def item_table(self) -> torch.Tensor:
        """e_i = E_i (+ W x_i) for every item and the padding row: (n_items + 1, dim)."""
        table = self.item.weight
        if self.project is not None:
            table = table + self.project(self.external)
        return table

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """history (B, L) of item ids, most recent first, padded with n_items -> logits (B, n_items)."""
        table = self.item_table()                                    # (n_items + 1, dim)
        items = self.dropout(table[history])                         # (B, L, dim)
        real = history != self.n_items                               # (B, L)
        if self.pooling == "mean":
            weights = real.float() / real.sum(1, keepdim=True).clamp(min=1)          # (B, L)
        else:
            keys = torch.tanh(self.key(items + self.recency.weight[: history.shape[1]]))  # (B, L, dim)
            logits = (keys @ self.query).masked_fill(~real, float("-inf"))              # (B, L)
            weights = torch.softmax(logits, dim=1).nan_to_num(0.0)                        # empty history -> 0
        user = (weights.unsqueeze(-1) * items).sum(1)                # (B, dim)
        return user @ table[: self.n_items].T                        # (B, n_items)


def _recent_first(sequence: np.ndarray, stop: int, max_history: int, pad: int) -> np.ndarray:
    """The ``max_history`` items before position ``stop``, most recent first, padded."""
    recent = sequence[max(0, stop - max_history): stop][::-1]
    out = np.full(max_history, pad, dtype=np.int64)
    out[: len(recent)] = recent
    return out


class HistoryNet(Recommender):
    """Next-item model over the recent history; items = id embedding + projected external vector.

    Parameters
    ----------
    item_vectors : array-like of shape (n_items, d_ext), optional
        Fixed external vectors (for example chapter 05's text vectors);
        None trains on item ids alone, the baseline to compare against.
    config : HistoryNetConfig, optional
    random_state : None, int or Generator

    Attributes
    ----------
    module : HistoryModule
        The trained network (on ``device``).
    history_ : TrainingHistory
        Loss and seconds per epoch (and a validation metric, if ``fit`` got one).

    Examples
    --------
    >>> model = HistoryNet(text_vectors, config=HistoryNetConfig(epochs=5), random_state=0).fit(split.train)
    >>> evaluate(model, split)

    References
    ----------
    Covington, Adams & Sargin, "Deep neural networks for YouTube recommendations", RecSys 2016
    (an averaged history of id embeddings, trained with a softmax over items).
    """

    needs_order = True  # it reads the most recent items of each history

    def __init__(self, item_vectors=None, *, config: HistoryNetConfig | None = None, random_state=None):
        self.item_vectors = item_vectors
        self.config = config
        self.random_state = random_state
        self.module = None

    @property
    def cfg(self) -> HistoryNetConfig:
        return self.config if self.config is not None else HistoryNetConfig()

    def fit(self, user_items, *, show_progress: bool = True, on_epoch_end=None) -> "HistoryNet":
        """Train on every next-item prediction inside the histories of ``user_items`` (an Interactions).

        ``on_epoch_end(model)`` may return a validation metric (higher is
        better) to record in ``history_.metric``; with ``config.patience``
        set, training then stops once it has not improved for ``patience``
        epochs and keeps the best epoch (``config.epochs`` is the cap).
        """
        check_user_items(user_items)
        if not isinstance(user_items, Interactions):
            raise TypeError(f"HistoryNet reads each history in time order: fit it on an Interactions "
                            f"(for example split.train), not a {type(user_items).__name__}.")
        config = self.cfg.validate()
        self.n_users, self.n_items = user_items.shape
        external = None
        if self.item_vectors is not None:
            external = torch.as_tensor(check_item_vectors(self.item_vectors, self.n_items))
            if not torch.isfinite(external).all():
                raise ValueError("item_vectors contain NaN or infinite values.")
        histories, targets = prefix_histories(user_items.sequences(), config.max_history, pad=self.n_items)

        rng, _ = torch_generator(self.random_state)   # also seeds torch's initialisation
        device = pick_device(config.device)
        self.module = HistoryModule(self.n_items, external, config)

        def batches(rng):
            order = rng.permutation(len(targets))
            for start in range(0, len(order), config.batch_size):
                rows = order[start: start + config.batch_size]
                yield histories[rows], targets[rows]

        def loss_fn(module, history, target):
            return nn.functional.cross_entropy(module(history), target)

        self.history_ = train(self.module, batches, loss_fn, epochs=config.epochs, lr=config.lr,
                              weight_decay=config.weight_decay, rng=rng, device=device, show_progress=show_progress,
                              on_epoch_end=None if on_epoch_end is None else (lambda epoch: on_epoch_end(self)),
                              patience=None if on_epoch_end is None else config.patience, desc="HistoryNet")
        return self

    @property
    def item_factors(self) -> np.ndarray | None:
        """The learned item representations e_i, shape (n_items, dim)."""
        if self.module is None:
            return None
        with torch.no_grad():
            return self.module.item_table()[: self.n_items].cpu().numpy()

    def _score(self, userids, history):
        sequences = history.require_sequences(type(self).__name__)
        L = self.cfg.max_history
        recent = np.stack([_recent_first(s, len(s), L, self.n_items) for s in sequences])   # (n, L)
        device = next(self.module.parameters()).device
        with torch.no_grad():
            return self.module(torch.as_tensor(recent, device=device)).cpu().numpy()        # (n, n_items)

