"""Synthetic implicit-feedback data at any size, for scale experiments.

Real catalogues have two properties that matter for speed and for recall:
item popularity follows a power law, and tastes have low-rank structure.
The generator plants both: users and items get latent vectors around a few
taste clusters, item popularity is Zipf-distributed, and each user draws
items with probability proportional to popularity x exp(affinity).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_lab.validation import check_nonnegative_float, check_positive_int, check_random_state

__all__ = ["synthetic_factors", "synthetic_user_items"]


def synthetic_factors(n_users: int, n_items: int, dim: int = 64, *, n_clusters: int = 32,
                      popularity_exponent: float = 1.0, random_state=None):
    """Clustered user and item vectors; item norms grow with Zipf popularity.

    Returns
    -------
    user_factors : ndarray of shape (n_users, dim), float32
    item_factors : ndarray of shape (n_items, dim), float32
    popularity : ndarray of shape (n_items,), sums to 1 (Zipf over a random order)

    Examples
    --------
    >>> users, items, popularity = synthetic_factors(1000, 1_000_000, 64, random_state=0)
    """
    n_users = check_positive_int(n_users, "n_users")
    n_items = check_positive_int(n_items, "n_items")
    dim = check_positive_int(dim, "dim")
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    popularity_exponent = check_nonnegative_float(popularity_exponent, "popularity_exponent")
    rng = check_random_state(random_state)

    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def around_centres(n):
        vectors = centres[rng.integers(n_clusters, size=n)]
        vectors += 0.5 / np.sqrt(dim) * rng.standard_normal((n, dim), dtype=np.float32)
        return vectors

    rank = rng.permutation(n_items) + 1
    popularity = 1.0 / rank.astype(np.float64) ** popularity_exponent
    popularity /= popularity.sum()
    users = around_centres(n_users)
    items = around_centres(n_items)
    # popular items get longer vectors, as in learned factor models
    items *= (1.0 + np.log1p(popularity * n_items)).astype(np.float32)[:, None]
    return users, items, popularity


def synthetic_user_items(n_users: int, n_items: int, *, interactions_per_user: int = 20,
                         dim: int = 16, n_clusters: int = 16, popularity_exponent: float = 1.0,
                         candidates_per_user: int = 256, random_state=None) -> sp.csr_matrix:
    """A binary user x item CSR matrix with power-law popularity and taste clusters.

    Each user samples ``candidates_per_user`` items by popularity, then keeps
    the ``interactions_per_user`` they like best (affinity plus Gumbel noise),
    so the cost is O(n_users x candidates), not O(n_users x n_items).

    Examples
    --------
    >>> user_items = synthetic_user_items(100_000, 20_000, random_state=0)
    >>> user_items.shape
    (100000, 20000)
    """
    interactions_per_user = check_positive_int(interactions_per_user, "interactions_per_user")
    candidates_per_user = check_positive_int(candidates_per_user, "candidates_per_user")
    if interactions_per_user > min(n_items, candidates_per_user):
        raise ValueError(
            f"interactions_per_user={interactions_per_user} must not exceed n_items={n_items} "
            f"or candidates_per_user={candidates_per_user}."
        )
    rng = check_random_state(random_state)
    users, items, popularity = synthetic_factors(
        n_users, n_items, dim, n_clusters=n_clusters, popularity_exponent=popularity_exponent, random_state=rng
    )
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    rows, cols = [], []
    chunk = max(1, 2_000_000 // candidates_per_user)
    for start in range(0, n_users, chunk):
        block = users[start : start + chunk]                                   # (b, dim)
        candidates = np.sort(rng.choice(n_items, size=(len(block), candidates_per_user), p=popularity), axis=1)
        affinity = np.einsum("bd,bcd->bc", block, items[candidates]) * 4.0     # (b, c)
        affinity += rng.gumbel(size=affinity.shape)
        # a popular item drawn twice is one candidate: the repeat can never be picked
        affinity[:, 1:][candidates[:, 1:] == candidates[:, :-1]] = -np.inf
        best = np.argpartition(-affinity, interactions_per_user - 1, axis=1)[:, :interactions_per_user]
        rows.append(np.repeat(np.arange(start, start + len(block)), interactions_per_user))
        cols.append(np.take_along_axis(candidates, best, axis=1).ravel())
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    matrix.data[:] = 1.0  # only a user with fewer distinct candidates than picks repeats one
    return matrix
