"""Frozen item vectors through a learned projection, scored like content-based recommendation.

A sentence encoder places items by what their descriptions say; users pick
items for other reasons too. This model keeps the encoder frozen and learns
only a linear map :math:`W` (``dim x d``) of its vectors from the training
interactions, so the geometry moves toward behaviour while every item,
interacted with or not, still gets its vector from its text:

.. math:: z_j = \\frac{W x_j}{\\lVert W x_j \\rVert}, \\qquad
          p_{u,t} = \\operatorname{normalise}\\Big(\\sum_{a \\ge 0} 2^{-a/h}\\, z_{i_{t-1-a}}\\Big),

and the next item :math:`i_t` of each training history is predicted with a
softmax over the catalogue of the cosines :math:`p_{u,t}^\\top z_j / \\tau`
(the items of the prefix it reads are masked, as seen items are filtered at
recommendation time). The profile is the same decayed mean that
:class:`~recsys_lab.models.content.ContentRecommender` scores with, over the
last ``max_history`` events, so training optimises the very score used to
rank. :math:`W` starts at the top ``dim`` right singular vectors of the
item vectors, so before training the model is the raw vectors compressed by
a truncated SVD (with ``dim`` equal to the input size: exactly the raw
cosines).

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from recsys_lab.data.interactions import Interactions
from recsys_lab.features.external import recency_weights, unit_rows
from recsys_lab.models.base import FactorRecommender, Recommender
from recsys_lab.models.content import check_pooling, profile_scores
from recsys_lab.models.training import pick_device, prefix_histories, torch_generator, train
from recsys_lab.validation import (check_factors_finite, check_item_vectors, check_nonnegative_float,
                                   check_positive_int, check_user_items)

__all__ = ["ProjectionConfig", "ProjectedContent"]


@dataclass
class ProjectionConfig:
    """Hyperparameters of :class:`ProjectedContent` (defaults: a few seconds per epoch on MovieLens-100K, one CPU core)."""

    dim: int | None = 64         # output size (at most the input size; None: the input size)
    max_history: int = 20        # events of each prefix read by the training profile (most recent first)
    recent_targets: int | None = 20  # train on each user's most recent next items only (None: all of them)
    temperature: float = 0.05    # softmax temperature on the cosines (they lie in [-1, 1])
    epochs: int = 6              # passes over the (history prefix, next item) pairs (a cap with early stopping)
    patience: int | None = None  # with a validation metric: stop after this many epochs without a gain
    batch_size: int = 512        # prefixes per step
    lr: float = 1e-2             # Adam learning rate
    weight_decay: float = 0.0    # L2 penalty in Adam
    device: str | None = None    # None: cuda when present, else the CPU

    def validate(self) -> "ProjectionConfig":
        if self.dim is not None:
            check_positive_int(self.dim, "dim")
        check_positive_int(self.max_history, "max_history")
        if self.recent_targets is not None:
            check_positive_int(self.recent_targets, "recent_targets")
        check_nonnegative_float(self.temperature, "temperature", strictly_positive=True)
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        check_nonnegative_float(self.weight_decay, "weight_decay")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")
        return self


class ProjectionModule(nn.Module):
    """The learned map W and the decayed-profile softmax over the catalogue."""

    def __init__(self, vectors: torch.Tensor, weights: torch.Tensor, candidates: torch.Tensor,
                 config: ProjectionConfig):
        super().__init__()
        n_items, d_in = vectors.shape
        dim = d_in if config.dim is None else config.dim
        self.n_items, self.temperature = n_items, config.temperature
        self.register_buffer("vectors", torch.cat([vectors, vectors.new_zeros(1, d_in)]))   # (n_items + 1, d): last row pads
        self.register_buffer("weights", weights)                                            # (L,) recency weights
        self.register_buffer("blocked", ~candidates)                                        # (n_items,) not a candidate
        self.project = nn.Linear(d_in, dim, bias=False)
        with torch.no_grad():                       # start at the raw vectors' top `dim` directions (a truncated SVD)
            self.project.weight.copy_(torch.linalg.svd(vectors, full_matrices=False).Vh[:dim])   # (dim, d_in)

    def item_table(self) -> torch.Tensor:
        """Unit projected vectors of every item and a zero padding row: (n_items + 1, dim)."""
        return nn.functional.normalize(self.project(self.vectors), dim=1)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """history (B, L) of item ids, most recent first, padded with n_items -> logits (B, n_items)."""
        table = self.item_table()                                          # (n_items + 1, dim)
        profile = (self.weights.unsqueeze(-1) * table[history]).sum(1)     # (B, dim); padding rows are zero
        profile = nn.functional.normalize(profile, dim=1)
        logits = profile @ table.T / self.temperature                      # (B, n_items + 1): last column pads
        logits = logits.scatter(1, history, float("-inf"))                 # the history's items (and the padding)
        return logits[:, : self.n_items].masked_fill(self.blocked, float("-inf"))   # (B, n_items)


class ProjectedContent(Recommender):
    """Content-based recommendation over frozen item vectors passed through a learned linear map.

    Parameters
    ----------
    item_vectors : array-like of shape (n_items, d)
        The frozen vectors, for example ``TextEncoder().encode(item_texts(ml.items))``.
    half_life : float, optional
        Recency half-life in events of the profile, in training and in
        scoring (as in :class:`~recsys_lab.models.content.ContentRecommender`);
        None: equal weights.
    config : ProjectionConfig, optional
    random_state : None, int or Generator

    Attributes
    ----------
    item_factors : ndarray of shape (n_items, dim)
        The unit projected vectors; any item with an input vector has one,
        including items without interactions.
    history_ : TrainingHistory
        Loss and seconds per epoch (and a validation metric, if ``fit`` got one).

    Examples
    --------
    >>> model = ProjectedContent(text_vectors, half_life=0.5, random_state=0).fit(split.train)
    >>> evaluate(model, split)

    References
    ----------
    Covington, Adams & Sargin, "Deep neural networks for YouTube recommendations", RecSys 2016
    (a softmax over the catalogue from the user's history); Reimers & Gurevych,
    "Sentence-BERT", EMNLP 2019 (the frozen encoder).
    """

    needs_order = True  # training reads each history in time order

    def __init__(self, item_vectors, *, half_life: float | None = None, config: ProjectionConfig | None = None,
                 random_state=None):
        self.item_vectors = item_vectors
        self.half_life = half_life
        self.config = config
        self.random_state = random_state
        self.module = None
        self.item_factors = None

    @property
    def cfg(self) -> ProjectionConfig:
        return self.config if self.config is not None else ProjectionConfig()

    @property
    def n_items(self):
        return None if self.item_factors is None else len(self.item_factors)

    def fit(self, user_items, *, show_progress: bool = True, on_epoch_end=None) -> "ProjectedContent":
        """Learn the projection from every next-item prediction inside the histories of ``user_items`` (an Interactions).

        Items that no training history holds are not offered as candidates in
        the training softmax (a new item does not exist when the model is
        trained), but they get projected vectors like every other item.
        ``on_epoch_end(model)`` may return a validation metric (higher is
        better); with ``config.patience`` set, training stops once it has not
        improved for ``patience`` epochs and keeps the best epoch.
        """
        check_user_items(user_items)
        if not isinstance(user_items, Interactions):
            raise TypeError(f"ProjectedContent reads each history in time order: fit it on an Interactions "
                            f"(for example split.train), not a {type(user_items).__name__}.")
        config = self.cfg.validate()
        check_pooling("mean", self.half_life)
        self.n_users, n_items = user_items.shape
        vectors = torch.as_tensor(unit_rows(check_item_vectors(self.item_vectors, n_items)))
        if config.dim is not None and config.dim > vectors.shape[1]:
            raise ValueError(f"dim={config.dim} is larger than the {vectors.shape[1]} dimensions of item_vectors; "
                             f"use dim <= {vectors.shape[1]}.")
        histories, targets = prefix_histories(user_items.sequences(), config.max_history, pad=n_items,
                                              last=config.recent_targets)
        repeat = (histories == targets[:, None]).any(axis=1)     # a repeated item is masked: it cannot be the target
        histories, targets = histories[~repeat], targets[~repeat]
        weights = torch.as_tensor(recency_weights(config.max_history, self.half_life)[::-1].copy(), dtype=torch.float32)
        candidates = torch.as_tensor(np.diff(user_items.user_items.tocsc().indptr) > 0)

        rng, _ = torch_generator(self.random_state)   # the batch order (W starts from the SVD, not at random)
        device = pick_device(config.device)
        self.module = ProjectionModule(vectors, weights, candidates, config)

        def batches(rng):
            order = rng.permutation(len(targets))
            for start in range(0, len(order), config.batch_size):
                rows = order[start: start + config.batch_size]
                yield histories[rows], targets[rows]

        def loss_fn(module, history, target):
            return nn.functional.cross_entropy(module(history), target)

        def after_epoch(epoch):
            self._store_factors()
            return None if on_epoch_end is None else on_epoch_end(self)

        self.history_ = train(self.module, batches, loss_fn, epochs=config.epochs, lr=config.lr,
                              weight_decay=config.weight_decay, rng=rng, device=device, show_progress=show_progress,
                              on_epoch_end=after_epoch, patience=None if on_epoch_end is None else config.patience,
                              desc="ProjectedContent")
        self._store_factors()   # the kept epoch's weights
        return self

    def _store_factors(self) -> None:
        with torch.no_grad():
            table = self.module.item_table()[: self.module.n_items].cpu().numpy()
        check_factors_finite(type(self).__name__, item_factors=table)
        self.item_factors = table

    def _score(self, userids, history):
        return profile_scores(history, self.item_factors, half_life=self.half_life, model_name=type(self).__name__)

    similar_items = FactorRecommender.similar_items
