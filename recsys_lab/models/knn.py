"""Item-based nearest neighbours: the oldest collaborative filter that still works.

Two items are similar when the same users interacted with both: the cosine
of their columns of the binary user x item matrix. A user's score for an
item is the sum of its similarities to the items in the user's history, so
the model reads the history when it scores (like EASE) and needs no user
vectors. Keeping only each item's ``neighbours`` most similar items makes
most scores exactly zero, which chapter 00 uses to show how sampled metrics
reward such a model differently from full ranking.

References
----------
Sarwar, B. et al. (2001). Item-based collaborative filtering recommendation
algorithms. WWW.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import normalize

from recsys_lab.models.base import Recommender
from recsys_lab.validation import check_positive_int, check_user_items

__all__ = ["ItemKNN"]

MAX_ITEMS = 30_000  # the dense item x item similarity matrix needs n_items^2 floats


class ItemKNN(Recommender):
    """Score items by summed cosine similarity to the user's history.

    Parameters
    ----------
    neighbours : int or None
        Keep only each item's ``neighbours`` most similar items (the rest of
        its row is set to zero); None keeps every item.

    Attributes
    ----------
    similarity_ : ndarray of shape (n_items, n_items)
        Entry ``(i, j)`` is the cosine of items ``i`` and ``j``. After pruning,
        row ``i`` keeps only item ``i``'s ``neighbours`` largest entries, so a
        history item votes only for its nearest items. The diagonal is zero,
        so an item never recommends itself.

    Examples
    --------
    >>> model = ItemKNN(neighbours=50).fit(split.train.user_items)
    >>> ids, scores = model.recommend(0, split.train.user_items[0], N=10)
    """

    def __init__(self, neighbours: int | None = None):
        self.neighbours = neighbours

    def fit(self, user_items, *, show_progress: bool = True) -> "ItemKNN":
        user_items = check_user_items(user_items)
        self.n_users, self.n_items = user_items.shape
        if self.n_items > MAX_ITEMS:
            raise ValueError(f"ItemKNN keeps a dense {self.n_items} x {self.n_items} similarity matrix; "
                             f"it supports at most {MAX_ITEMS} items. Filter rare items first.")
        if self.neighbours is not None:
            check_positive_int(self.neighbours, "neighbours")
            if self.neighbours >= self.n_items:
                raise ValueError(f"neighbours={self.neighbours} must be smaller than the number of items "
                                 f"({self.n_items}); use neighbours=None to keep every item.")
        unit_columns = normalize((user_items > 0).T.astype(np.float64))       # (n_items, n_users), unit rows
        similarity = (unit_columns @ unit_columns.T).toarray()                # (n_items, n_items)
        np.fill_diagonal(similarity, 0.0)
        if self.neighbours is not None:                                       # zero all but each row's k largest
            weakest = np.argpartition(similarity, -self.neighbours, axis=1)[:, : -self.neighbours]
            np.put_along_axis(similarity, weakest, 0.0, axis=1)
        self.similarity_ = similarity
        return self

    def _score(self, userids, history):
        return np.asarray((history.user_items > 0).astype(np.float64) @ self.similarity_)   # (n, n_items)
