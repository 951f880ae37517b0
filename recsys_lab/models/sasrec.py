"""SASRec: a causal transformer over each user's time-ordered history.

The model reads a user's last ``max_len`` items, runs causal self-attention
blocks over them (position ``t`` sees only items ``<= t``) and predicts the
next item at every position. Its output layer *is* its input item-embedding
table (weight tying, as in GPT-2 and Transformers4Rec's NextItemPredictionTask),
so the final hidden state of a history and the item embeddings live in one
space: ``score(u, i) = h_u . e_i`` and the pair goes straight into ``faiss``.

Training uses the full softmax over the catalogue (cross-entropy at every
position): with a few thousand items it costs little and, as Klenitskiy &
Vasilev (2023) show, beats the original paper's one-sampled-negative binary
loss by a wide margin. Chapter 09 shows the sampled alternative that a
million-item catalogue needs.

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys_lab.data.interactions import Interactions
from recsys_lab.models.base import Recommender
from recsys_lab.models.training import TrainingHistory, pick_device, torch_generator, train
from recsys_lab.validation import check_factors_finite, check_nonnegative_float, check_positive_int

__all__ = ["SASRecConfig", "SASRec", "SASRecModule", "pad_histories"]


@dataclass
class SASRecConfig:
    """Hyperparameters of :class:`SASRec` (defaults tuned on ML-100K's validation targets)."""

    max_len: int = 50          # most recent items the model reads; older ones are cut off
    factors: int = 64          # width d of item, position and hidden vectors
    n_blocks: int = 2          # stacked self-attention blocks
    n_heads: int = 1           # attention heads per block (factors must divide evenly)
    dropout: float = 0.3       # on embeddings, attention weights and block outputs
    epochs: int = 40           # passes over the users (a cap with early stopping)
    patience: int | None = None  # with a validation metric: stop after this many epochs without a gain
    batch_size: int = 64       # user histories per step
    lr: float = 2e-3           # Adam learning rate
    weight_decay: float = 0.0  # L2 on every parameter (Adam's weight_decay)
    device: str | None = None  # None: cuda when present, else the CPU

    def __post_init__(self):
        for name in ("max_len", "factors", "n_blocks", "n_heads", "epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        if self.factors % self.n_heads:
            raise ValueError(f"factors={self.factors} must be divisible by n_heads={self.n_heads}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1).")
        check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        check_nonnegative_float(self.weight_decay, "weight_decay")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")


def pad_histories(sequences, max_len: int) -> np.ndarray:
    """Left-pad (or cut) each history to its last ``max_len`` items.

    Items are shifted by one so that 0 can mean "no item": the result has
    shape (len(sequences), max_len), int64, and the most recent item of every
    history sits in the last column.

    >>> pad_histories([np.array([4, 7])], 3)
    array([[0, 5, 8]])
    """
    out = np.zeros((len(sequences), max_len), dtype=np.int64)
    for row, items in enumerate(sequences):
        recent = np.asarray(items, dtype=np.int64)[-max_len:]
        if recent.size:
            out[row, max_len - recent.size :] = recent + 1
    return out


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``t`` attends to ``<= t`` only."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.qkv = nn.Linear(cfg.factors, 3 * cfg.factors)
        self.proj = nn.Linear(cfg.factors, cfg.factors)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape                                              # batch, positions, width
        q, k, v = self.qkv(x).split(d, dim=2)                          # each (B, L, d)
        q, k, v = (t.view(B, L, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d/h)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0
        )                                                              # (B, h, L, d/h)
        return self.proj(y.transpose(1, 2).reshape(B, L, d))           # (B, L, d)


class Block(nn.Module):
    """Pre-norm transformer block: attention then a position-wise feed-forward net."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.factors), nn.LayerNorm(cfg.factors)
        self.attn = CausalSelfAttention(cfg)
        self.ffn = nn.Sequential(nn.Linear(cfg.factors, cfg.factors), nn.GELU(), nn.Linear(cfg.factors, cfg.factors))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), allowed))  # (B, L, d)
        return x + self.drop(self.ffn(self.ln2(x)))          # (B, L, d)


class SASRecModule(nn.Module):
    """The network: item + position embeddings, causal blocks, a final LayerNorm.

    There is no separate output layer: next-item logits are the hidden states
    times the item-embedding table itself (:meth:`item_vectors`).
    """

    def __init__(self, n_items: int, cfg: SASRecConfig):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, cfg.factors, padding_idx=0)  # row 0: padding
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.factors)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_blocks))
        self.ln_f = nn.LayerNorm(cfg.factors)
        nn.init.normal_(self.item_emb.weight[1:], std=cfg.factors**-0.5)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position; ``seq`` (B, L) holds item + 1, 0 = padding."""
        B, L = seq.shape
        real = seq > 0                                                      # (B, L)
        x = self.item_emb(seq) * math.sqrt(self.item_emb.embedding_dim)     # (B, L, d)
        x = x + self.pos_emb(torch.arange(L, device=seq.device))            # (B, L, d)
        x = self.drop(x) * real.unsqueeze(-1)                               # padding stays zero
        causal = torch.ones(L, L, dtype=torch.bool, device=seq.device).tril()  # (L, L): key <= query
        diagonal = torch.eye(L, dtype=torch.bool, device=seq.device)        # a padded row still sees itself
        allowed = (causal & real[:, None, None, :]) | diagonal               # (B, 1, L, L)
        for block in self.blocks:
            x = block(x, allowed)                                           # (B, L, d)
        return self.ln_f(x)                                                 # (B, L, d)

    def item_vectors(self) -> torch.Tensor:
        """The tied output layer: the item-embedding table without its padding row, (n_items, d)."""
        return self.item_emb.weight[1:]


def next_item_loss(module: SASRecModule, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Full-softmax cross-entropy of the next item at every non-padded position."""
    hidden = module(inputs)                                 # (B, L, d)
    has_target = targets > 0                                # (B, L)
    logits = hidden[has_target] @ module.item_vectors().T   # (n_positions, n_items)
    return F.cross_entropy(logits, targets[has_target] - 1)


class SASRec(Recommender):
    """Self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

    ``fit`` takes an ``Interactions`` (the model needs each history's order);
    scoring reads the user's history in time order, so pass
    ``split.history("test")`` (train plus the validation event) to score the
    test targets and ``split.train`` for the validation targets.

    Parameters
    ----------
    config : SASRecConfig, optional
        Architecture and training hyperparameters (defaults when None).
    random_state : None, int or numpy.random.Generator
        Seeds initialisation, dropout and batch order.

    Attributes
    ----------
    item_factors : ndarray of shape (n_items, factors)
        The tied item embeddings (input table = output layer).
    history_ : TrainingHistory
        Loss and seconds per epoch.

    Examples
    --------
    >>> model = SASRec(SASRecConfig(epochs=40), random_state=0).fit(split.train)
    >>> ids, scores = model.recommend(0, split.history("test"), N=10)

    References
    ----------
    Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
    Klenitskiy & Vasilev, "Turning Dross Into Gold Loss: is BERT4Rec really
    better than SASRec?", RecSys 2023 (full softmax instead of sampled BCE).
    """

    needs_order = True  # it reads each history as a sequence

    def __init__(self, config: SASRecConfig | None = None, *, random_state=None):
        self.config = config
        self.random_state = random_state

    @property
    def cfg(self) -> SASRecConfig:
        return self.config if self.config is not None else SASRecConfig()

    def fit(self, user_items, *, show_progress: bool = True, on_epoch_end=None) -> "SASRec":
        """Train on every user's time-ordered history in ``user_items`` (an ``Interactions``).

        ``on_epoch_end(model)`` may return a validation metric (higher is
        better) to record in ``history_.metric``; with ``config.patience``
        set, training then stops once it has not improved for ``patience``
        epochs and keeps the best epoch (``config.epochs`` is the cap).
        """
        if not isinstance(user_items, Interactions):
            raise TypeError(
                f"SASRec reads each history in time order: fit it on an Interactions "
                f"(for example split.train), not a {type(user_items).__name__}."
            )
        if len(user_items) == 0:
            raise ValueError("the Interactions has no events: there is nothing to learn from.")
        cfg = self.cfg
        if not isinstance(cfg, SASRecConfig):
            raise TypeError(f"config={cfg!r} must be a SASRecConfig.")
        self.n_users, self.n_items = user_items.shape
        rng, _ = torch_generator(self.random_state)
        device = pick_device(cfg.device)
        # one window per user: inputs are items 0..n-2, targets items 1..n-1 of the last max_len + 1
        windows = pad_histories(user_items.sequences(), cfg.max_len + 1)  # (n_users, max_len + 1)
        windows = windows[(windows > 0).sum(axis=1) >= 2]                  # a target needs a predecessor
        inputs, targets = windows[:, :-1], windows[:, 1:].copy()           # (n, max_len) each
        targets[inputs == 0] = 0                                           # no loss where nothing precedes

        def batches(rng):
            order = rng.permutation(len(inputs))
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                yield inputs[rows], targets[rows]

        def epoch_end(epoch):
            self._export()
            return on_epoch_end(self)

        self.module_ = SASRecModule(self.n_items, cfg)
        self.history_: TrainingHistory = train(
            self.module_, batches, next_item_loss, epochs=cfg.epochs, lr=cfg.lr,
            weight_decay=cfg.weight_decay, rng=rng, device=device, show_progress=show_progress,
            on_epoch_end=None if on_epoch_end is None else epoch_end,
            patience=None if on_epoch_end is None else cfg.patience, desc="SASRec",
        )
        self._export()
        check_factors_finite("SASRec", item_factors=self.item_factors)
        return self

    def _export(self):
        self.module_.eval()
        self.item_factors = self.module_.item_vectors().detach().cpu().numpy().copy()

    @torch.no_grad()
    def user_vectors(self, sequences, *, batch_size: int = 512) -> np.ndarray:
        """Final hidden state of each history, shape (len(sequences), factors).

        ``user_vectors(seqs) @ item_factors.T`` are the model's scores, so these
        vectors can query a ``faiss`` index built on ``item_factors``.
        """
        self._check_fitted()
        padded = pad_histories(sequences, self.cfg.max_len)       # (n, L)
        if padded.size and padded.max() > self.n_items:
            raise ValueError(f"a history holds item {padded.max() - 1}; the model knows {self.n_items} items.")
        device = next(self.module_.parameters()).device
        out = np.empty((len(padded), self.cfg.factors), dtype=np.float32)
        for start in range(0, len(padded), batch_size):
            seq = torch.as_tensor(padded[start : start + batch_size], device=device)
            out[start : start + len(seq)] = self.module_(seq)[:, -1].cpu().numpy()  # (b, d): last position
        return out

    def _score(self, userids, history):
        sequences = history.require_sequences("SASRec")
        return self.user_vectors(sequences) @ self.item_factors.T  # (n, n_items)
