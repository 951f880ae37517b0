"""LightGCN: embeddings smoothed over the user-item graph.

Users and items are the nodes of one bipartite graph with an edge per
interaction. LightGCN keeps only what helps collaborative filtering from a
graph convolution: no feature transforms, no non-linearities, just repeated
averaging over neighbours with the symmetric normalisation

.. math::

    E^{(l+1)} = \\tilde A E^{(l)}, \\qquad
    \\tilde A = D^{-1/2} A D^{-1/2}, \\qquad
    A = \\begin{pmatrix} 0 & R \\\\ R^\\top & 0 \\end{pmatrix},

and the final embedding is the mean of the layers, :math:`E = \\frac{1}{L+1}
\\sum_{l=0}^{L} E^{(l)}`. Only :math:`E^{(0)}` is learned, with the BPR loss
on (user, seen item, random item) triples. After training the averaged
embeddings are ordinary user and item factors: ``score = user_factors @
item_factors.T`` and they go straight into ``faiss``.

This module imports torch; ``import recsys_lab`` does not.

References
----------
He, Deng, Wang, Li, Zhang & Wang (2020). LightGCN: Simplifying and Powering
Graph Convolution Network for Recommendation. SIGIR.
Rendle, Freudenthaler, Gantner & Schmidt-Thieme (2009). BPR: Bayesian
personalized ranking from implicit feedback. UAI.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recsys_lab.models.base import FactorRecommender
from recsys_lab.models.negatives import sample_negatives
from recsys_lab.models.training import TrainingHistory, pick_device, torch_generator, train
from recsys_lab.validation import check_factors_finite, check_nonnegative_float, check_positive_int, check_user_items

__all__ = ["LightGCNConfig", "LightGCN", "LightGCNModule", "normalized_adjacency"]


@dataclass
class LightGCNConfig:
    """Hyperparameters of :class:`LightGCN` (defaults tuned on ML-100K's validation targets)."""

    factors: int = 64          # embedding dimension d of every node
    n_layers: int = 3          # propagation steps L; 0 is plain BPR matrix factorization
    epochs: int = 30           # passes over all training interactions (a cap with early stopping)
    patience: int | None = None  # with a validation metric: stop after this many epochs without a gain
    batch_size: int = 4096     # (user, positive, negative) triples per step
    lr: float = 1e-2           # Adam learning rate
    l2: float = 1e-4           # L2 on the layer-0 embeddings of each batch, as in the paper
    device: str | None = None  # None: cuda when present, else the CPU

    def __post_init__(self):
        for name in ("factors", "epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.n_layers, "n_layers", minimum=0)
        check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        check_nonnegative_float(self.l2, "l2")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")


def normalized_adjacency(user_items: sp.csr_matrix) -> sp.csr_matrix:
    """The symmetric normalised bipartite adjacency ``D^-1/2 A D^-1/2``.

    Parameters
    ----------
    user_items : csr_matrix of shape (n_users, n_items)

    Returns
    -------
    csr_matrix of shape (n_users + n_items, n_users + n_items)
        Users first, then items; entry (u, n_users + i) is
        ``1 / sqrt(deg(u) deg(i))`` when u interacted with i. Nodes without
        edges get an all-zero row.

    >>> normalized_adjacency(sp.csr_matrix(np.ones((1, 2)))).toarray().round(3)[0]
    array([0.   , 0.   , 0.707])
    """
    binary = (sp.csr_matrix(user_items) > 0).astype(np.float32)
    adjacency = sp.bmat([[None, binary], [binary.T, None]], format="csr")  # (n, n), n = users + items
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0).astype(np.float32)
    scale = sp.diags(inv_sqrt)
    return (scale @ adjacency @ scale).tocsr().astype(np.float32)


def _to_torch(matrix: sp.csr_matrix) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (same indices, same values)."""
    matrix = sp.csr_matrix(matrix)
    with warnings.catch_warnings():  # torch flags sparse CSR support as beta
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(matrix.indptr, dtype=torch.int64), torch.as_tensor(matrix.indices, dtype=torch.int64),
            torch.as_tensor(matrix.data), size=matrix.shape, check_invariants=True,
        )


class _SymmetricPropagate(torch.autograd.Function):
    """``graph @ x`` for a symmetric sparse ``graph``.

    The gradient of ``G x`` with respect to ``x`` is ``G^T grad = G grad``, so
    the backward pass reuses the same CSR product instead of transposing a
    sparse matrix on every step (several times faster on the CPU).
    """

    @staticmethod
    def forward(ctx, graph, x):
        ctx.graph = graph
        return torch.sparse.mm(graph, x)

    @staticmethod
    def backward(ctx, grad):
        return None, torch.sparse.mm(ctx.graph, grad)


class LightGCNModule(nn.Module):
    """Layer-0 embeddings of every node and the parameter-free propagation."""

    def __init__(self, graph: torch.Tensor, n_users: int, n_items: int, cfg: LightGCNConfig):
        super().__init__()
        self.n_users, self.n_items, self.n_layers = n_users, n_items, cfg.n_layers
        self.graph = graph                                             # sparse CSR (n, n), n = users + items
        self.embedding = nn.Embedding(n_users + n_items, cfg.factors)  # E^(0), (n, d)
        nn.init.normal_(self.embedding.weight, std=0.1)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-averaged user (n_users, d) and item (n_items, d) embeddings."""
        layer = self.embedding.weight                                  # (n, d)
        total = layer
        for _ in range(self.n_layers):
            layer = _SymmetricPropagate.apply(self.graph, layer)       # (n, d): one hop of neighbour averaging
            total = total + layer
        mean = total / (self.n_layers + 1)                             # (n, d)
        return mean[: self.n_users], mean[self.n_users :]


def bpr_loss(module: LightGCNModule, users, positives, negatives, l2: float) -> torch.Tensor:
    """BPR: ``-log sigmoid(s(u, i) - s(u, j))`` plus L2 on the batch's layer-0 vectors."""
    user_emb, item_emb = module()                                      # (n_users, d), (n_items, d)
    u, i, j = user_emb[users], item_emb[positives], item_emb[negatives]  # (B, d) each
    ranking = -F.logsigmoid((u * i).sum(1) - (u * j).sum(1)).mean()
    ego = module.embedding.weight
    e_u, e_i, e_j = ego[users], ego[module.n_users + positives], ego[module.n_users + negatives]  # (B, d)
    penalty = (e_u.pow(2).sum() + e_i.pow(2).sum() + e_j.pow(2).sum()) / (2 * len(users))
    return ranking + l2 * penalty


class LightGCN(FactorRecommender):
    """Light graph convolution for collaborative filtering (He et al., SIGIR 2020).

    Parameters
    ----------
    config : LightGCNConfig, optional
        Architecture and training hyperparameters (defaults when None).
    random_state : None, int or numpy.random.Generator
        Seeds initialisation, negative sampling and batch order.

    Attributes
    ----------
    user_factors : ndarray of shape (n_users, factors)
    item_factors : ndarray of shape (n_items, factors)
        The layer-averaged embeddings.
    history_ : TrainingHistory
        Mean BPR loss per epoch (and a validation metric, if ``fit`` got one).

    Examples
    --------
    >>> model = LightGCN(LightGCNConfig(n_layers=3), random_state=0).fit(split.train.user_items)
    >>> evaluate(model, split, on="valid")

    References
    ----------
    He et al. (2020). LightGCN: Simplifying and Powering Graph Convolution
    Network for Recommendation. SIGIR.
    """

    def __init__(self, config: LightGCNConfig | None = None, *, random_state=None):
        self.config = config
        self.random_state = random_state

    @property
    def cfg(self) -> LightGCNConfig:
        return self.config if self.config is not None else LightGCNConfig()

    def fit(self, user_items, *, show_progress: bool = True, on_epoch_end=None) -> "LightGCN":
        """Train on ``user_items`` (CSR (n_users, n_items); nonzeros are edges).

        ``on_epoch_end(model)`` may return a validation metric to record in
        ``history_.metric`` (the factors are refreshed before each call).
        With ``config.patience`` set, training then stops once that metric
        has not improved for ``patience`` epochs and keeps the best epoch
        (``config.epochs`` is the cap).
        """
        user_items = check_user_items(user_items)
        cfg = self.cfg
        if not isinstance(cfg, LightGCNConfig):
            raise TypeError(f"config={cfg!r} must be a LightGCNConfig.")
        n_users, n_items = user_items.shape
        rng, _ = torch_generator(self.random_state)
        device = pick_device(cfg.device)
        graph = _to_torch(normalized_adjacency(user_items)).to(device)
        self.module_ = LightGCNModule(graph, n_users, n_items, cfg)
        coo = user_items.tocoo()
        edge_users, edge_items = coo.row.astype(np.int64), coo.col.astype(np.int64)

        def batches(rng):
            order = rng.permutation(len(edge_users))
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                users = edge_users[rows]
                yield users, edge_items[rows], sample_negatives(users, user_items, 1, rng).ravel()

        def epoch_end(epoch):
            self._export()
            return on_epoch_end(self)

        self.history_: TrainingHistory = train(
            self.module_, batches, lambda m, u, i, j: bpr_loss(m, u, i, j, cfg.l2), epochs=cfg.epochs,
            lr=cfg.lr, rng=rng, device=device, show_progress=show_progress,
            on_epoch_end=None if on_epoch_end is None else epoch_end,
            patience=None if on_epoch_end is None else cfg.patience, desc="LightGCN",
        )
        self._export()
        check_factors_finite("LightGCN", user_factors=self.user_factors, item_factors=self.item_factors)
        return self

    @torch.no_grad()
    def _export(self):
        self.module_.eval()
        users, items = self.module_()
        self.user_factors = users.cpu().numpy().copy()
        self.item_factors = items.cpu().numpy().copy()
