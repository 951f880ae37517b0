"""``Interactions``: a log of (user, item, rating, timestamp) events with id maps.

Every model in the course consumes the same two views of one event log:

* ``user_items``: a ``scipy.sparse.csr_matrix`` of shape (n_users, n_items),
  rows are users, columns items, as in ``implicit``;
* ``sequences()``: each user's items in time order, for sequence models.

Raw ids (MovieLens' integers, or any hashable) map to contiguous row and
column indices through ``user_ids`` / ``item_ids``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["Interactions", "interaction_fingerprint", "tie_break_keys", "TIE_BREAK_SEED", "TIE_BREAKS"]

EVENT_COLUMNS = ["user", "item", "rating", "timestamp"]
# Events logged in the same second have no true order. The course orders them by a fixed pseudo-random key
# of (user, item) drawn with this seed, never by item id: ids follow release order and popularity, so an
# id order would leak into the targets (chapter 00). "item" keeps the id order, to show that leak.
TIE_BREAK_SEED = 20_241_127
TIE_BREAKS = ("random", "item")


def tie_break_keys(users: np.ndarray, items: np.ndarray, seed: int = TIE_BREAK_SEED) -> np.ndarray:
    """A fixed pseudo-random uint64 per (user, item) pair: the order of same-second events.

    A hash (SplitMix64's finaliser) rather than a drawn permutation, so the
    order of two events never depends on which other events are in the log:
    a subset or a concatenation keeps it. Integer arithmetic only, so it is
    the same on every machine.
    """
    with np.errstate(over="ignore"):
        x = (users.astype(np.uint64) << np.uint64(32)) ^ items.astype(np.uint64)
        x = x + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def interaction_fingerprint(user_items) -> str:
    """A short hash of which (user, item) pairs a CSR matrix or an ``Interactions`` holds.

    Models remember the fingerprint of what they were fitted on, so the
    evaluator can check that a model scored on a target saw exactly the
    history the protocol allows (values such as confidences do not count,
    only which pairs are present).
    """
    matrix = user_items.user_items if isinstance(user_items, Interactions) else user_items
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.eliminate_zeros()
    matrix.sum_duplicates()
    digest = hashlib.blake2b(digest_size=12)
    for part in (np.asarray(matrix.shape, np.int64), matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64)):
        digest.update(part.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Interactions:
    """An event log over a fixed catalogue of users and items.

    Parameters
    ----------
    events : DataFrame
        Columns ``user`` and ``item`` (row and column indices), ``rating``
        and ``timestamp``. Stored sorted by user, then time; events in the
        same second follow a fixed pseudo-random order (``tie_break``).
    user_ids, item_ids : ndarray
        Raw id of each row / column; their lengths fix the matrix shape, so
        users or items with no events in this log still have a row/column.
    tie_break : {"random", "item"}
        Order of same-second events: ``"random"`` (the course's protocol, a
        seeded hash of (user, item), see :data:`TIE_BREAK_SEED`) or
        ``"item"`` (by item index, which leaks release order; for teaching).

    Examples
    --------
    >>> inter = Interactions.from_frame(ratings_df)  # columns user_id, item_id, ...
    >>> inter.user_items.shape                       # (n_users, n_items)
    """

    events: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    tie_break: str = "random"
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
        if self.tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break={self.tie_break!r} must be one of {TIE_BREAKS}.")
        users, items = events["user"].to_numpy(), events["item"].to_numpy()
        tie = tie_break_keys(users, items) if self.tie_break == "random" else items
        order = np.lexsort((items, tie, events["timestamp"].to_numpy(), users))
        object.__setattr__(self, "events", events.iloc[order].reset_index(drop=True))
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
        tie_break: str = "random",
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
        return cls(events, user_ids, item_ids, tie_break)

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
        """Each user's item indices in time order (same-second events in the ``tie_break`` order)."""
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
        return Interactions(self.events[np.asarray(mask)], self.user_ids, self.item_ids, self.tie_break)

    def concat(self, other: "Interactions") -> "Interactions":
        """This log plus ``other``'s events (same catalogue required)."""
        if not (np.array_equal(self.user_ids, other.user_ids) and np.array_equal(self.item_ids, other.item_ids)):
            raise ValueError("cannot concatenate Interactions over different catalogues.")
        if self.tie_break != other.tie_break:
            raise ValueError(f"cannot concatenate logs ordered by tie_break={self.tie_break!r} and {other.tie_break!r}.")
        return Interactions(pd.concat([self.events, other.events]), self.user_ids, self.item_ids, self.tie_break)

    def with_tie_break(self, tie_break: str) -> "Interactions":
        """The same events with same-second events in another order (``"random"`` or ``"item"``)."""
        return Interactions(self.events, self.user_ids, self.item_ids, tie_break)
