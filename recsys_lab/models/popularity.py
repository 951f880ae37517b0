"""The popularity baseline: recommend what most users interacted with.

It ignores who the user is, so every personalised model must beat it; on
MovieLens it is a surprisingly strong first line (chapter 00).
"""

from __future__ import annotations

import numpy as np

from recsys_lab.models.base import Recommender
from recsys_lab.validation import check_user_items

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Score every item by how many training users interacted with it.

    Examples
    --------
    >>> model = Popularity().fit(train.user_items)
    >>> ids, counts = model.recommend(0, train.user_items[0], N=10)
    """

    def __init__(self):
        self.item_counts_: np.ndarray | None = None

    def fit(self, user_items, *, show_progress: bool = True) -> "Popularity":
        user_items = check_user_items(user_items)
        self.n_users, self.n_items = user_items.shape
        self.item_counts_ = np.diff(user_items.tocsc().indptr).astype(np.float64)
        return self

    def _score(self, userids, history):
        return np.broadcast_to(self.item_counts_, (len(userids), self.n_items)).copy()
