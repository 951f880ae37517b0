"""Wide & deep: a linear model over one-hot and crossed features plus an MLP
over embedded features, trained jointly with one logistic loss.

The *wide* part memorises: one weight per feature and per cross
(``occupation x genre``, ``age x item``...), so a combination seen often in
training gets exactly the weight the data supports. The *deep* part
generalises: every field value becomes an embedding, an MLP mixes them, so a
user-item pair never seen together still gets a sensible score. Their logits
add up before the sigmoid (Cheng et al., 2016):

    P(y = 1 | u, i) = sigmoid(w_wide . [x, cross(x)] + w_deep . MLP([e_1, ..., e_F]) + b)

The task here is implicit feedback: observed (user, item) pairs are
positives, sampled unobserved pairs negatives. The fitted model also ranks:
score every item for a user, as any :class:`~recsys_lab.models.Recommender`.

Two options turn the classifier into a ranker. ``loss="softmax"`` trains
each positive against its own sampled negatives with a sampled softmax,
``-log(exp s_ui / (exp s_ui + sum_j exp s_uj))``, so only the order of a
user's items counts (what a top-k list needs), not their calibration.
``dot=True`` adds the dot product of a user-id and an item-id factor
table to the logit, the interaction a factor model gets for free and an MLP
has to learn (Rendle et al., 2020; NeuMF's GMF part).

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys_lab.features.crosses import Features, cross
from recsys_lab.models.base import Recommender
from recsys_lab.models.negatives import sample_negatives
from recsys_lab.models.training import TrainingHistory, pick_device, torch_generator, train
from recsys_lab.validation import check_nonnegative_float, check_positive_int, check_user_items

__all__ = ["WideDeepConfig", "WideDeep", "WideDeepModule"]

MOVIELENS_CROSSES = (("occupation", "genres"), ("age", "genres"), ("gender", "genres"), ("age", "item_id"), ("gender", "item_id"))


@dataclass
class WideDeepConfig:
    """Hyperparameters of :class:`WideDeep` (defaults tuned on ML-100K's validation pairs)."""

    parts: str = "wide_deep"            # "wide", "deep" or "wide_deep": which logits add up
    crosses: tuple = MOVIELENS_CROSSES  # (user field, item field) pairs crossed in the wide part
    wide_fields: tuple | None = None    # one-hot fields in the wide part; None: every field but user_id
    embedding_dim: int = 16             # width of each field's embedding in the deep part
    hidden: tuple = (64, 32)            # MLP layer widths of the deep part
    dropout: float = 0.1                # between MLP layers
    loss: str = "logistic"              # "logistic": pairs labelled 1/0; "softmax": each positive vs its negatives
    dot: bool = False                   # add a user-id . item-id factor dot product to the logit
    negatives: int = 4                  # sampled unobserved items per observed pair, redrawn each epoch
    epochs: int = 6                     # passes over the observed pairs (a cap with early stopping)
    patience: int | None = None         # with a validation metric: stop after this many epochs without a gain
    batch_size: int = 4096              # pairs (positive or negative) per step, either loss
    lr: float = 5e-3                    # Adam learning rate
    weight_decay: float = 0.0           # L2 on every parameter
    device: str | None = None           # None: cuda when present, else the CPU

    def __post_init__(self):
        if self.parts not in ("wide", "deep", "wide_deep"):
            raise ValueError(f"parts={self.parts!r} must be 'wide', 'deep' or 'wide_deep'.")
        if self.loss not in ("logistic", "softmax"):
            raise ValueError(f"loss={self.loss!r} must be 'logistic' or 'softmax'.")
        for name in ("embedding_dim", "negatives", "epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        for width in self.hidden:
            check_positive_int(width, "hidden width")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1).")
        check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        check_nonnegative_float(self.weight_decay, "weight_decay")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")


class WideDeepModule(nn.Module):
    """The network. Field codes live in buffers; ``forward(users, items)`` gives logits."""

    def __init__(self, user_features: Features, item_features: Features, cfg: WideDeepConfig):
        super().__init__()
        self.cfg = cfg
        self.user_fields, self.item_fields = list(user_features.codes), list(item_features.codes)
        for name in self.user_fields:
            self.register_buffer(f"u_{name}", torch.as_tensor(user_features[name]))   # (n_users, width)
        for name in self.item_fields:
            self.register_buffer(f"i_{name}", torch.as_tensor(item_features[name]))   # (n_items, width)
        vocab = {n: user_features.vocab_size(n) for n in self.user_fields}
        vocab.update({n: item_features.vocab_size(n) for n in self.item_fields})
        self.vocab = vocab
        wide = cfg.wide_fields if cfg.wide_fields is not None else [n for n in vocab if n != "user_id"]
        self.wide_groups = {n: vocab[n] for n in wide}
        self.wide_groups.update({f"{a} x {b}": vocab[a] * vocab[b] for a, b in cfg.crosses})
        self.wide = nn.ModuleDict({k.replace(" ", ""): nn.Embedding(v + 1, 1, padding_idx=0) for k, v in self.wide_groups.items()})
        for emb in self.wide.values():
            nn.init.zeros_(emb.weight)
        self.deep = nn.ModuleDict({n: nn.Embedding(v + 1, cfg.embedding_dim, padding_idx=0) for n, v in vocab.items()})
        layers, width = [], cfg.embedding_dim * len(vocab)
        for out in cfg.hidden:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = out
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))
        if cfg.dot:   # factor tables of their own, started small so the product does not swamp the other logits
            self.factors = nn.ModuleDict({n: nn.Embedding(vocab[n] + 1, cfg.embedding_dim, padding_idx=0)
                                          for n in ("user_id", "item_id")})
            with torch.no_grad():
                for emb in self.factors.values():
                    emb.weight.normal_(std=0.01)
                    emb.weight[0] = 0.0                                   # the padding row stays zero
        self.bias = nn.Parameter(torch.zeros(()))

    def fields(self, users: torch.Tensor, items: torch.Tensor) -> dict:
        """Codes of every field for a batch of pairs: name -> (B, width)."""
        out = {n: getattr(self, f"u_{n}")[users] for n in self.user_fields}
        out.update({n: getattr(self, f"i_{n}")[items] for n in self.item_fields})
        return out

    def wide_logit(self, codes: dict) -> torch.Tensor:
        total = 0
        for group in self.wide_groups:
            if " x " in group:
                a, b = group.split(" x ")
                active = cross(codes[a], codes[b], self.vocab[b])   # (B, width_a * width_b)
            else:
                active = codes[group]                                   # (B, width)
            total = total + self.wide[group.replace(" ", "")](active).sum(dim=(1, 2))  # (B,)
        return total

    def deep_logit(self, codes: dict) -> torch.Tensor:
        pooled = []
        for name, emb in self.deep.items():
            c = codes[name]                                             # (B, width)
            count = (c > 0).sum(1, keepdim=True).clamp(min=1)            # (B, 1)
            pooled.append(emb(c).sum(1) / count)                        # (B, d): mean of present values
        return self.mlp(torch.cat(pooled, dim=1)).squeeze(1)            # (B,)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        codes = self.fields(users, items)
        logit = self.bias.expand(len(users))                            # (B,)
        if self.cfg.parts in ("wide", "wide_deep"):
            logit = logit + self.wide_logit(codes)
        if self.cfg.parts in ("deep", "wide_deep"):
            logit = logit + self.deep_logit(codes)
        if self.cfg.dot:
            user_vectors = self.factors["user_id"](codes["user_id"]).sum(1)   # (B, d); one id per row
            item_vectors = self.factors["item_id"](codes["item_id"]).sum(1)   # (B, d)
            logit = logit + (user_vectors * item_vectors).sum(1)
        return logit                                                    # (B,)


def logistic_loss(module: WideDeepModule, users, items, labels) -> torch.Tensor:
    """Binary cross-entropy of every (user, item) pair against its 1/0 label."""
    return F.binary_cross_entropy_with_logits(module(users, items), labels)


def sampled_softmax_loss(module: WideDeepModule, users, items) -> torch.Tensor:
    """Cross-entropy of each positive against its own negatives: ``items[:, 0]`` is the positive."""
    logits = module(users.repeat_interleave(items.shape[1]), items.reshape(-1)).view(items.shape)   # (B, 1 + K)
    return F.cross_entropy(logits, torch.zeros(len(users), dtype=torch.long, device=logits.device))


class WideDeep(Recommender):
    """Wide & deep learning for recommender systems (Cheng et al., DLRS 2016).

    Parameters
    ----------
    config : WideDeepConfig, optional
        Parts, crosses, sizes and training settings (defaults when None).
    random_state : None, int or numpy.random.Generator

    Examples
    --------
    >>> users, items = movielens_features(ml)
    >>> model = WideDeep(random_state=0).fit(split.train.user_items, user_features=users, item_features=items)
    >>> model.predict_proba([0, 0], [49, 1000])      # P(interaction) for two pairs

    References
    ----------
    Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
    """

    def __init__(self, config: WideDeepConfig | None = None, *, random_state=None):
        self.config = config
        self.random_state = random_state

    @property
    def cfg(self) -> WideDeepConfig:
        return self.config if self.config is not None else WideDeepConfig()

    def fit(self, user_items, *, user_features: Features | None = None, item_features: Features | None = None,
            show_progress: bool = True, on_epoch_end=None) -> "WideDeep":
        """Learn to score the observed pairs of ``user_items`` above sampled unobserved ones.

        Without features the model sees only ``user_id`` and ``item_id``
        (``dot=True`` needs both fields).
        ``on_epoch_end(model)`` may return a validation metric (higher is
        better) to record in ``history_.metric``; with ``config.patience``
        set, training then stops once it has not improved for ``patience``
        epochs and keeps the best epoch (``config.epochs`` is the cap).
        """
        user_items = check_user_items(user_items)
        cfg = self.cfg
        self.n_users, self.n_items = user_items.shape
        user_features = user_features if user_features is not None else Features.ids(self.n_users, "user_id")
        item_features = item_features if item_features is not None else Features.ids(self.n_items, "item_id")
        for what, feats, n in (("user_features", user_features, self.n_users), ("item_features", item_features, self.n_items)):
            if feats.n != n:
                raise ValueError(f"{what} has {feats.n} rows; user_items has {n}.")
        shared = set(user_features.codes) & set(item_features.codes)
        if shared:
            raise ValueError(f"user and item fields must have distinct names; both have {sorted(shared)}.")
        known = set(user_features.codes) | set(item_features.codes)
        for a, b in cfg.crosses:
            if a not in user_features or b not in item_features:
                raise ValueError(f"cross ({a!r}, {b!r}) needs a user field and an item field; the fields are {sorted(known)}.")
        if cfg.dot and ("user_id" not in user_features or "item_id" not in item_features):
            raise ValueError(f"dot=True needs a 'user_id' user field and an 'item_id' item field; the fields are {sorted(known)}.")
        unknown = set(cfg.wide_fields or ()) - known
        if unknown:
            raise ValueError(f"wide_fields {sorted(unknown)} are not among the fields {sorted(known)}.")
        rng, _ = torch_generator(self.random_state)
        pos_users, pos_items = user_items.nonzero()

        def pair_batches(rng):
            neg_items = sample_negatives(pos_users, user_items, cfg.negatives, rng).ravel()
            users = np.concatenate([pos_users, np.repeat(pos_users, cfg.negatives)])
            items = np.concatenate([pos_items, neg_items])
            labels = np.concatenate([np.ones(len(pos_items)), np.zeros(len(neg_items))]).astype(np.float32)
            order = rng.permutation(len(users))
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                yield users[rows], items[rows], labels[rows]

        def softmax_batches(rng):
            items = np.column_stack([pos_items, sample_negatives(pos_users, user_items, cfg.negatives, rng)])
            order, step = rng.permutation(len(pos_users)), max(1, cfg.batch_size // (1 + cfg.negatives))
            for start in range(0, len(order), step):        # the same number of pairs per step as pair_batches
                rows = order[start : start + step]
                yield pos_users[rows], items[rows]

        batches, loss = (softmax_batches, sampled_softmax_loss) if cfg.loss == "softmax" else (pair_batches, logistic_loss)
        self.module_ = WideDeepModule(user_features, item_features, cfg)
        self.history_: TrainingHistory = train(
            self.module_, batches, loss, epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
            rng=rng, device=pick_device(cfg.device), show_progress=show_progress,
            on_epoch_end=None if on_epoch_end is None else (lambda epoch: on_epoch_end(self)),
            patience=None if on_epoch_end is None else cfg.patience, desc=f"wide & deep ({cfg.parts})",
        )
        self.module_.eval()
        return self

    @torch.no_grad()
    def decision_function(self, users, items, *, batch_size: int = 262_144) -> np.ndarray:
        """Logits for pairs ``(users[k], items[k])``, shape (len(users),)."""
        self._check_fitted()
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(f"users and items must be 1-D arrays of one length; got shapes {users.shape} and {items.shape}.")
        for name, ids, n in (("user", users, self.n_users), ("item", items, self.n_items)):
            if ids.size and (ids.min() < 0 or ids.max() >= n):
                raise ValueError(f"{name} indices must lie in 0..{n - 1}; got {ids.min()}..{ids.max()}.")
        device = self.module_.bias.device
        out = np.empty(len(users), dtype=np.float32)
        for start in range(0, len(users), batch_size):
            u = torch.tensor(users[start : start + batch_size], device=device)  # a copy: callers' arrays may be read-only
            i = torch.tensor(items[start : start + batch_size], device=device)
            out[start : start + len(u)] = self.module_(u, i).cpu().numpy()
        return out

    def predict_proba(self, users, items) -> np.ndarray:
        """P(interaction) for pairs ``(users[k], items[k])``, shape (len(users),).

        Calibrated only under ``loss="logistic"``; the softmax loss learns the
        order of each user's items, not the level of their logits.
        """
        return 1.0 / (1.0 + np.exp(-self.decision_function(users, items).astype(np.float64)))

    def _score(self, userids, history):
        users = np.repeat(userids, self.n_items)                 # (n * n_items,)
        items = np.tile(np.arange(self.n_items), len(userids))   # (n * n_items,)
        return self.decision_function(users, items).reshape(len(userids), self.n_items)
