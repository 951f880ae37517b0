"""A two-tower retrieval model, YouTube style: users and items meet in one space.

The *user tower* averages the embeddings of the user's recent items (the
"watch vector" of Covington et al., 2016), joins the user's features (age,
gender, occupation) and maps them through an MLP to ``u``; the *item tower*
maps an item's id, genres and release year to ``v``. Score = ``u . v``, so
the items of the whole catalogue can sit in a ``faiss`` index and a user's
candidates are one nearest-neighbour query away.

Training predicts each training event from the events before it (the next
item, not a held-out random one: Covington et al. found that predicting the
future works better than predicting a random hold-out) with an in-batch
sampled softmax and the log-Q correction
(:mod:`recsys_lab.models.sampled_softmax`).

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys_lab.data.interactions import Interactions
from recsys_lab.features.crosses import Features
from recsys_lab.models.base import Recommender
from recsys_lab.models.sasrec import pad_histories
from recsys_lab.models.sampled_softmax import in_batch_softmax_loss, log_q
from recsys_lab.models.training import TrainingHistory, pick_device, torch_generator, train
from recsys_lab.validation import check_factors_finite, check_nonnegative_float, check_positive_int

__all__ = ["TwoTowerConfig", "TwoTower", "TwoTowerModule"]


@dataclass
class TwoTowerConfig:
    """Hyperparameters of :class:`TwoTower` (defaults tuned on ML-100K's validation targets)."""

    factors: int = 64            # width of the shared space (and of every embedding)
    history_len: int = 50        # most recent items the user tower averages
    hidden: int = 128            # width of each tower's hidden layer
    dropout: float = 0.1         # on the towers' hidden layers
    temperature: float = 0.1     # softmax temperature over the unit-norm dot products
    log_q_correction: bool = True  # subtract log q(item) from the in-batch logits (Yi et al., 2019)
    epochs: int = 12             # passes over the training events (a cap with early stopping)
    patience: int | None = None  # with a validation metric: stop after this many epochs without a gain
    batch_size: int = 512        # events per step = in-batch negatives per row + 1
    lr: float = 2e-3             # Adam learning rate
    weight_decay: float = 0.0    # L2 on every parameter
    device: str | None = None    # None: cuda when present, else the CPU

    def __post_init__(self):
        for name in ("factors", "history_len", "hidden", "epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1).")
        check_nonnegative_float(self.temperature, "temperature", strictly_positive=True)
        check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        check_nonnegative_float(self.weight_decay, "weight_decay")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")


def _mean_pool(emb: nn.Embedding, codes: torch.Tensor) -> torch.Tensor:
    """Mean embedding of the nonzero codes of each row: (B, width) -> (B, d)."""
    count = (codes > 0).sum(1, keepdim=True).clamp(min=1)   # (B, 1)
    return emb(codes).sum(1) / count                       # (B, d)


class TwoTowerModule(nn.Module):
    """User and item towers over categorical fields; both end in unit vectors."""

    def __init__(self, user_features: Features, item_features: Features, cfg: TwoTowerConfig):
        super().__init__()
        d = cfg.factors
        self.user_fields = [n for n in user_features.codes if n != "user_id"]  # ids do not generalise to new users
        self.item_fields = list(item_features.codes)
        for name in self.user_fields:
            self.register_buffer(f"u_{name}", torch.as_tensor(user_features[name]))  # (n_users, width)
        for name in self.item_fields:
            self.register_buffer(f"i_{name}", torch.as_tensor(item_features[name]))  # (n_items, width)
        self.history_emb = nn.Embedding(item_features.n + 1, d, padding_idx=0)     # history items (+1 shift)
        self.user_emb = nn.ModuleDict({n: nn.Embedding(user_features.vocab_size(n) + 1, d, padding_idx=0) for n in self.user_fields})
        self.item_emb = nn.ModuleDict({n: nn.Embedding(item_features.vocab_size(n) + 1, d, padding_idx=0) for n in self.item_fields})

        def tower(n_inputs):
            return nn.Sequential(nn.Linear(n_inputs * d, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, d))

        self.user_tower = tower(1 + len(self.user_fields))
        self.item_tower = tower(len(self.item_fields))

    def users(self, userids: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """User vectors (B, d) from ids (B,) and padded recent histories (B, L) of item + 1."""
        parts = [_mean_pool(self.history_emb, history)]                                         # [(B, d)]
        parts += [_mean_pool(self.user_emb[n], getattr(self, f"u_{n}")[userids]) for n in self.user_fields]
        return F.normalize(self.user_tower(torch.cat(parts, dim=1)), dim=1)                     # (B, d)

    def items(self, itemids: torch.Tensor) -> torch.Tensor:
        """Item vectors (B, d) from item columns (B,)."""
        parts = [_mean_pool(self.item_emb[n], getattr(self, f"i_{n}")[itemids]) for n in self.item_fields]
        return F.normalize(self.item_tower(torch.cat(parts, dim=1)), dim=1)                     # (B, d)


class TwoTower(Recommender):
    """Two-tower candidate generator (Covington et al., 2016; Yi et al., 2019).

    Parameters
    ----------
    config : TwoTowerConfig, optional
    random_state : None, int or numpy.random.Generator

    Attributes
    ----------
    item_factors : ndarray of shape (n_items, factors)
        Unit-norm item-tower outputs: build the ``faiss`` index on these.

    Examples
    --------
    >>> model = TwoTower(random_state=0).fit(split.train, user_features=users, item_features=items)
    >>> u = model.user_vectors(np.arange(943), split.history("test"))   # (943, 64) queries

    References
    ----------
    Covington, Adams & Sargin, "Deep Neural Networks for YouTube Recommendations", RecSys 2016.
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations", RecSys 2019.
    """

    needs_order = True  # the user tower reads the most recent items of each history

    def __init__(self, config: TwoTowerConfig | None = None, *, random_state=None):
        self.config = config
        self.random_state = random_state

    @property
    def cfg(self) -> TwoTowerConfig:
        return self.config if self.config is not None else TwoTowerConfig()

    def fit(self, user_items, *, user_features: Features | None = None, item_features: Features | None = None,
            show_progress: bool = True, on_epoch_end=None) -> "TwoTower":
        """Train on every event of ``user_items`` (an ``Interactions``) given the events before it.

        ``on_epoch_end(model)`` may return a validation metric (higher is
        better) to record in ``history_.metric``; with ``config.patience``
        set, training then stops once it has not improved for ``patience``
        epochs and keeps the best epoch (``config.epochs`` is the cap).
        """
        if not isinstance(user_items, Interactions):
            raise TypeError(f"TwoTower learns from histories in time order: fit it on an Interactions "
                            f"(for example split.train), not a {type(user_items).__name__}.")
        cfg = self.cfg
        self.n_users, self.n_items = user_items.shape
        user_features = user_features if user_features is not None else Features.ids(self.n_users, "user_id")
        item_features = item_features if item_features is not None else Features.ids(self.n_items, "item_id")
        for what, feats, n in (("user_features", user_features, self.n_users), ("item_features", item_features, self.n_items)):
            if feats.n != n:
                raise ValueError(f"{what} has {feats.n} rows; user_items has {n}.")
        rng, _ = torch_generator(self.random_state)
        # one example per event with at least one event before it: (user, padded prefix, item)
        users, prefixes, targets = [], [], []
        for u, seq in enumerate(user_items.sequences()):
            for t in range(1, len(seq)):
                users.append(u)
                prefixes.append(seq[max(0, t - cfg.history_len) : t])
                targets.append(seq[t])
        if not targets:
            raise ValueError("no user has two events: the model needs a history before each target.")
        users, targets = np.asarray(users), np.asarray(targets)
        prefixes = pad_histories(prefixes, cfg.history_len)                  # (n_events, L)
        item_log_q = torch.as_tensor(log_q(np.bincount(targets, minlength=self.n_items)), dtype=torch.float32)

        def batches(rng):
            order = rng.permutation(len(targets))
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                yield users[rows], prefixes[rows], targets[rows]

        def loss(module, users, prefixes, items):
            lq = module.item_log_q[items] if cfg.log_q_correction else None
            return in_batch_softmax_loss(module.users(users, prefixes), module.items(items), item_log_q=lq,
                                         item_ids=items, temperature=cfg.temperature)

        def epoch_end(epoch):
            self._export()
            return on_epoch_end(self)

        self.module_ = TwoTowerModule(user_features, item_features, cfg)
        self.module_.register_buffer("item_log_q", item_log_q)               # (n_items,)
        self.history_: TrainingHistory = train(
            self.module_, batches, loss, epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, rng=rng,
            device=pick_device(cfg.device), show_progress=show_progress,
            on_epoch_end=None if on_epoch_end is None else epoch_end,
            patience=None if on_epoch_end is None else cfg.patience, desc="two-tower",
        )
        self._export()
        check_factors_finite("TwoTower", item_factors=self.item_factors)
        return self

    @torch.no_grad()
    def _export(self):
        self.module_.eval()
        all_items = torch.arange(self.n_items, device=self.module_.item_log_q.device)
        self.item_factors = self.module_.items(all_items).cpu().numpy()  # (n_items, d)

    @torch.no_grad()
    def user_vectors(self, userids, history: Interactions, *, batch_size: int = 1024) -> np.ndarray:
        """Query vectors (len(userids), factors) from each user's features and recent history."""
        self._check_fitted()
        ids, _ = self._check_userids(userids)
        if not isinstance(history, Interactions):
            raise TypeError(f"history must be an Interactions (e.g. split.history('test')), not {type(history).__name__}.")
        sequences = history.sequences()
        return self._user_vectors(ids, [sequences[u] for u in ids], batch_size)

    @torch.no_grad()
    def _user_vectors(self, ids, sequences, batch_size=1024):
        padded = pad_histories(sequences, self.cfg.history_len)                  # (n, L)
        device = self.module_.item_log_q.device
        out = np.empty((len(ids), self.cfg.factors), dtype=np.float32)
        for start in range(0, len(ids), batch_size):
            u = torch.as_tensor(ids[start : start + batch_size], device=device)
            h = torch.as_tensor(padded[start : start + batch_size], device=device)
            out[start : start + len(u)] = self.module_.users(u, h).cpu().numpy()
        return out

    def _score(self, userids, history):
        sequences = history.require_sequences("TwoTower")
        return self._user_vectors(userids, sequences) @ self.item_factors.T      # (n, n_items)
