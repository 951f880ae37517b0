"""Random negatives for models trained on (user, positive, negative) examples.

A sampled "negative" that the user in fact interacted with teaches the model
the opposite of the data, so samplers redraw those (BPR, Rendle et al. 2009;
LightGCN's reference code does the same).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["sample_negatives"]


def sample_negatives(users: np.ndarray, exclude: sp.csr_matrix, per_user: int, rng) -> np.ndarray:
    """For each entry of ``users``, ``per_user`` random item columns not in ``exclude[user]``.

    Returns an int64 array of shape (len(users), per_user). Uniform over the
    catalogue; collisions with ``exclude`` are redrawn until none is left.
    """
    n_items = exclude.shape[1]
    full = np.flatnonzero(np.diff(exclude.indptr) >= n_items)
    if np.isin(users, full).any():
        raise ValueError(f"user {users[np.isin(users, full)][0]} has every item in exclude: no negative to sample.")
    items = rng.integers(n_items, size=(len(users), per_user))
    while True:
        bad = np.asarray(exclude[np.repeat(users, per_user), items.ravel()]).reshape(items.shape) > 0
        if not bad.any():
            return items
        items[bad] = rng.integers(n_items, size=int(bad.sum()))
