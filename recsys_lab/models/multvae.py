"""Mult-VAE (and Mult-DAE): an autoencoder over each user's row of clicks.

The encoder reads a user's whole history ``x_u`` (a row of the interaction
matrix, L2-normalised, with dropout on the input: the "denoising" part) and
compresses it into a small code ``z_u``; the decoder spreads the code back
over the catalogue as a multinomial distribution
``pi(z_u) = softmax(f(z_u))``. Training maximises

.. math::

    \\mathcal{L}_\\beta(x_u) = \\mathbb{E}_{q(z_u \\mid x_u)}
    \\big[\\textstyle\\sum_i x_{ui} \\log \\pi_i(z_u)\\big]
    - \\beta \\, \\mathrm{KL}\\big(q(z_u \\mid x_u) \\,\\|\\, \\mathcal N(0, I)\\big),

with :math:`\\beta` annealed from 0 up to ``beta_max`` (Liang et al., 2018).
With ``variational=False`` the code is deterministic and there is no KL
term: Mult-DAE. Because the decoder's last layer is linear, the logits are
``h(z_u) @ W^T + b``: the decoder's hidden state is a user vector and the
rows of ``[W, b]`` are item vectors (:meth:`MultVAE.user_vectors`,
:attr:`MultVAE.item_factors`).

This module imports torch; ``import recsys_lab`` does not.

References
----------
Liang, Krishnan, Hoffman & Jebara (2018). Variational Autoencoders for
Collaborative Filtering. WWW.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recsys_lab.models.base import Recommender
from recsys_lab.models.training import TrainingHistory, pick_device, torch_generator, train
from recsys_lab.validation import check_factors_finite, check_nonnegative_float, check_positive_int, check_user_items

__all__ = ["MultVAEConfig", "MultVAE", "MultVAEModule", "negative_elbo", "annealed_beta"]


@dataclass
class MultVAEConfig:
    """Hyperparameters of :class:`MultVAE` (the paper's [I -> 600 -> 200 -> 600 -> I])."""

    hidden: int = 600            # width of the encoder's and decoder's hidden layer
    latent: int = 200            # size of the code z_u
    dropout: float = 0.5         # input dropout: the denoising corruption
    variational: bool = True     # False: Mult-DAE (deterministic code, no KL term)
    beta_max: float = 0.2        # the KL weight stops growing here
    anneal_epochs: int = 20      # beta grows linearly from 0 to beta_max over this many epochs
    epochs: int = 100            # passes over the users (a cap with early stopping)
    patience: int | None = None  # with a validation metric: stop after this many epochs without a gain
    batch_size: int = 128        # user rows per step
    lr: float = 1e-3             # Adam learning rate
    weight_decay: float = 0.0    # L2 on every parameter
    device: str | None = None    # None: cuda when present, else the CPU

    def __post_init__(self):
        for name in ("hidden", "latent", "anneal_epochs", "epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1).")
        check_nonnegative_float(self.beta_max, "beta_max")
        check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        check_nonnegative_float(self.weight_decay, "weight_decay")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")


class MultVAEModule(nn.Module):
    """Encoder ``x -> (mu, logvar)`` and decoder ``z -> logits`` over the catalogue."""

    def __init__(self, n_items: int, cfg: MultVAEConfig):
        super().__init__()
        self.variational = cfg.variational
        out = 2 * cfg.latent if cfg.variational else cfg.latent
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.Sequential(nn.Linear(n_items, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, out))
        self.decoder_hidden = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.Tanh())
        self.decoder_out = nn.Linear(cfg.hidden, n_items)  # weight (n_items, hidden): the item vectors

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.drop(F.normalize(x, dim=1))                     # (B, n_items): unit rows, then corrupted
        h = self.encoder(x)                                      # (B, 2 * latent) or (B, latent)
        if not self.variational:
            return h, None
        mu, logvar = h.chunk(2, dim=1)                           # (B, latent) each
        return mu, logvar

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        mu, logvar = self.encode(x)
        z = mu
        if self.variational and self.training:                   # reparameterisation trick
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # (B, latent)
        return self.decoder_out(self.decoder_hidden(z)), mu, logvar  # logits (B, n_items)


def negative_elbo(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor | None,
                  beta: float) -> torch.Tensor:
    """The loss Mult-VAE minimises, the batch mean of :math:`-\\mathcal{L}_\\beta`.

    That is the negative multinomial log-likelihood of the clicks ``x`` under
    ``softmax(logits)``, plus ``beta`` times the KL divergence of
    ``N(mu, exp(logvar))`` from ``N(0, I)``.

    ``logits`` and ``x`` are (B, n_items), ``mu`` and ``logvar`` (B, latent);
    ``logvar=None`` (Mult-DAE) drops the KL term.
    """
    nll = -(F.log_softmax(logits, dim=1) * x).sum(dim=1).mean()
    if logvar is None:
        return nll
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1).mean()
    return nll + beta * kl


def annealed_beta(step: int, *, beta_max: float, anneal_steps: int) -> float:
    """The KL weight after ``step`` optimiser steps: linear from 0, flat at ``beta_max`` from ``anneal_steps`` on."""
    return min(beta_max, beta_max * step / anneal_steps)


class MultVAE(Recommender):
    """Variational (or denoising) autoencoder for collaborative filtering.

    Scores are computed from the history passed to ``recommend`` /
    ``score_items`` (the encoder reads it), so users unseen in training are
    scored without refitting.

    Parameters
    ----------
    config : MultVAEConfig, optional
        Architecture and training hyperparameters (defaults when None).
    random_state : None, int or numpy.random.Generator
        Seeds initialisation, dropout, the sampled codes and batch order.

    Attributes
    ----------
    item_factors : ndarray of shape (n_items, hidden + 1)
        Decoder output weights with the bias as a last column.
    history_ : TrainingHistory
        Mean loss per epoch (and a validation metric, if ``fit`` got one).

    Examples
    --------
    >>> model = MultVAE(MultVAEConfig(epochs=100), random_state=0).fit(split.train.user_items)
    >>> evaluate(model, split, on="valid")

    References
    ----------
    Liang et al. (2018). Variational Autoencoders for Collaborative Filtering. WWW.
    """

    def __init__(self, config: MultVAEConfig | None = None, *, random_state=None):
        self.config = config
        self.random_state = random_state

    @property
    def cfg(self) -> MultVAEConfig:
        return self.config if self.config is not None else MultVAEConfig()

    def fit(self, user_items, *, show_progress: bool = True, on_epoch_end=None) -> "MultVAE":
        """Train on the rows of ``user_items`` (CSR (n_users, n_items), binarised).

        ``on_epoch_end(model)`` may return a validation metric to record.
        With ``config.patience`` set, training then stops once that metric
        has not improved for ``patience`` epochs and keeps the best epoch
        (``config.epochs`` is the cap).
        """
        user_items = check_user_items(user_items)
        cfg = self.cfg
        if not isinstance(cfg, MultVAEConfig):
            raise TypeError(f"config={cfg!r} must be a MultVAEConfig.")
        rows = (user_items > 0).astype(np.float32)
        rows = rows[np.diff(rows.indptr) > 0]                     # users with a history
        self.n_users, self.n_items = user_items.shape
        rng, _ = torch_generator(self.random_state)
        device = pick_device(cfg.device)
        self.module_ = MultVAEModule(self.n_items, cfg)
        step = [0]
        anneal_steps = cfg.anneal_epochs * -(-rows.shape[0] // cfg.batch_size)   # epochs x steps per epoch

        def batches(rng):
            order = rng.permutation(rows.shape[0])
            for start in range(0, len(order), cfg.batch_size):
                yield (rows[order[start : start + cfg.batch_size]].toarray(),)  # (B, n_items), dense

        def loss_fn(module, x):
            logits, mu, logvar = module(x)                                        # (B, n_items)
            beta = annealed_beta(step[0], beta_max=cfg.beta_max, anneal_steps=anneal_steps)
            step[0] += module.training
            return negative_elbo(logits, x, mu, logvar, beta)

        def epoch_end(epoch):
            self._export()
            return on_epoch_end(self)

        self.history_: TrainingHistory = train(
            self.module_, batches, loss_fn, epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
            rng=rng, device=device, show_progress=show_progress,
            on_epoch_end=None if on_epoch_end is None else epoch_end,
            patience=None if on_epoch_end is None else cfg.patience,
            desc="Mult-VAE" if cfg.variational else "Mult-DAE",
        )
        self._export()
        check_factors_finite("MultVAE", item_factors=self.item_factors)
        return self

    @torch.no_grad()
    def _export(self):
        self.module_.eval()
        out = self.module_.decoder_out
        self.item_factors = torch.cat([out.weight, out.bias[:, None]], dim=1).cpu().numpy().copy()  # (n_items, hidden + 1)

    @torch.no_grad()
    def user_vectors(self, user_items, *, batch_size: int = 1024) -> np.ndarray:
        """Decoder hidden state (plus a constant 1) of each history row, shape (n_rows, hidden + 1).

        ``user_vectors(rows) @ item_factors.T`` equals the model's logits, so
        these vectors can query a ``faiss`` index built on ``item_factors``.
        """
        self._check_fitted()
        if not sp.issparse(user_items):
            raise TypeError(f"user_items must be a csr_matrix of histories, got {type(user_items).__name__}.")
        rows = (sp.csr_matrix(user_items) > 0).astype(np.float32)                          # (n_rows, n_items)
        if rows.shape[1] != self.n_items:
            raise ValueError(f"user_items has {rows.shape[1]} columns; the model was fitted on {self.n_items} items.")
        device = next(self.module_.parameters()).device
        out = np.empty((rows.shape[0], self.cfg.hidden + 1), dtype=np.float32)
        for start in range(0, rows.shape[0], batch_size):
            x = torch.as_tensor(rows[start : start + batch_size].toarray(), device=device)  # (b, n_items)
            mu, _ = self.module_.encode(x)                                                   # (b, latent)
            h = self.module_.decoder_hidden(mu)                                              # (b, hidden)
            out[start : start + len(x)] = torch.cat([h, torch.ones_like(h[:, :1])], dim=1).cpu().numpy()
        return out

    def _score(self, userids, history):
        return self.user_vectors(history.user_items) @ self.item_factors.T  # (n, n_items)
