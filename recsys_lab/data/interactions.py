"""``Interactions``: a log of (user, item, rating, timestamp) events with id maps.

Every model in the course consumes the same two views of one event log:

* ``user_items``: a ``scipy.sparse.csr_matrix`` of shape (n_users, n_items),
  rows are users, columns items, as in ``implicit``;
* ``sequences()``: each user's items in time order, for sequence models.

Raw ids (MovieLens' integers, or any hashable) map to contiguous row and
column indices through ``user_ids`` / ``item_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["Interactions"]

EVENT_COLUMNS = ["user", "item", "rating", "timestamp"]


@dataclass(frozen=True, eq=False)
class Interactions:
    """An event log over a fixed catalogue of users and items.

    Parameters
    ----------
    events : DataFrame
        Columns ``user`` and ``item`` (row and column indices), ``rating``
        and ``timestamp``. Stored sorted by (user, timestamp, item): that
        order is the fixed tie-break for same-second events.
    user_ids, item_ids : ndarray
        Raw id of each row / column; their lengths fix the matrix shape, so
        users or items with no events in this log still have a row/column.

    Examples
    --------
    >>> inter = Interactions.from_frame(ratings_df)  # columns user_id, item_id, ...
    >>> inter.user_items.shape                       # (n_users, n_items)
    """

    events: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    _user_lookup: dict = field(init=False, repr=False, compare=False)
    _item_lookup: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        missing = set(EVENT_COLUMNS) - set(self.events.columns)
        if missing:
            raise ValueError(f"events is missing columns {sorted(missing)}; it needs {EVENT_COLUMNS}.")
        events = self.events[EVENT_COLUMNS]
        for column in ("user", "item"):
            limit = len(self.user_ids) if column == "user" else len(self.item_ids)
            values = events[column].to_numpy()
            if values.size and (values.min() < 0 or values.max() >= limit):
                raise ValueError(f"events[{column!r}] holds indices outside 0..{limit - 1}.")
        if events["rating"].isna().any():
            raise ValueError("events['rating'] contains NaN; drop or fill those rows first.")
        ordered = events.sort_values(["user", "timestamp", "item"], kind="stable").reset_index(drop=True)
        object.__setattr__(self, "events", ordered)
        object.__setattr__(self, "_user_lookup", {raw: i for i, raw in enumerate(self.user_ids)})
        object.__setattr__(self, "_item_lookup", {raw: i for i, raw in enumerate(self.item_ids)})

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        user_col: str = "user_id",
        item_col: str = "item_id",
        rating_col: str | None = "rating",
        timestamp_col: str | None = "timestamp",
        user_ids=None,
        item_ids=None,
    ) -> "Interactions":
        """Index a frame of raw ids. ``user_ids``/``item_ids`` fix the catalogue
        (default: the sorted ids seen in ``df``); a rating or timestamp column
        set to None becomes all ones / all zeros."""
        for col in (user_col, item_col, rating_col, timestamp_col):
            if col is not None and col not in df.columns:
                raise ValueError(f"column {col!r} not in the frame; it has {list(df.columns)}.")
        if len(df) == 0:
            raise ValueError("the frame has no rows: there are no interactions to index.")
        user_ids = np.sort(df[user_col].unique()) if user_ids is None else np.asarray(user_ids)
        item_ids = np.sort(df[item_col].unique()) if item_ids is None else np.asarray(item_ids)
        users = pd.Index(user_ids).get_indexer(df[user_col])
        items = pd.Index(item_ids).get_indexer(df[item_col])
        if (users < 0).any() or (items < 0).any():
            raise ValueError("the frame holds user or item ids that are not in user_ids/item_ids.")
        events = pd.DataFrame(
            {
                "user": users.astype(np.int64),
                "item": items.astype(np.int64),
                "rating": df[rating_col].to_numpy(np.float64) if rating_col else 1.0,
                "timestamp": df[timestamp_col].to_numpy(np.int64) if timestamp_col else 0,
            }
        )
        return cls(events, user_ids, item_ids)

    # ------------------------------------------------------------------ shape
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        density = len(self) / max(1, self.n_users * self.n_items)
        return (
            f"Interactions({len(self)} events, {self.n_users} users x {self.n_items} items, "
            f"density {density:.2%})"
        )

    # ------------------------------------------------------------------ views
    @cached_property
    def user_items(self) -> sp.csr_matrix:
        """Binary CSR (n_users, n_items): 1 where the user interacted with the item."""
        return self.to_csr(values="ones")

    def to_csr(self, values: str = "ones") -> sp.csr_matrix:
        """CSR (n_users, n_items) holding ones or the ``"rating"`` of each event.

        Repeated (user, item) events are collapsed: the last rating wins.
        """
        if values not in ("ones", "rating"):
            raise ValueError(f"values={values!r} must be 'ones' or 'rating'.")
        last = self.events.drop_duplicates(["user", "item"], keep="last")
        data = np.ones(len(last), np.float32) if values == "ones" else last["rating"].to_numpy(np.float32)
        matrix = sp.csr_matrix((data, (last["user"], last["item"])), shape=self.shape)
        matrix.sort_indices()
        return matrix

    def sequences(self) -> list[np.ndarray]:
        """Each user's item indices in time order (ties broken by item index)."""
        items = self.events["item"].to_numpy()
        bounds = np.searchsorted(self.events["user"].to_numpy(), np.arange(self.n_users + 1))
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    # ------------------------------------------------------------------ ids
    def user_index(self, raw_id) -> int:
        """Row of a raw user id; ``ValueError`` if the id is unknown."""
        try:
            return self._user_lookup[raw_id]
        except KeyError:
            raise ValueError(f"unknown user id {raw_id!r}; known ids run {self.user_ids[0]!r}..{self.user_ids[-1]!r}.") from None

    def item_index(self, raw_id) -> int:
        """Column of a raw item id; ``ValueError`` if the id is unknown."""
        try:
            return self._item_lookup[raw_id]
        except KeyError:
            raise ValueError(f"unknown item id {raw_id!r}; known ids run {self.item_ids[0]!r}..{self.item_ids[-1]!r}.") from None

    def subset(self, mask: np.ndarray) -> "Interactions":
        """The events where ``mask`` is True, over the same catalogue."""
        return Interactions(self.events[np.asarray(mask)], self.user_ids, self.item_ids)

    def concat(self, other: "Interactions") -> "Interactions":
        """This log plus ``other``'s events (same catalogue required)."""
        if not (np.array_equal(self.user_ids, other.user_ids) and np.array_equal(self.item_ids, other.item_ids)):
            raise ValueError("cannot concatenate Interactions over different catalogues.")
        return Interactions(pd.concat([self.events, other.events]), self.user_ids, self.item_ids)
