"""Categorical features and their crosses, as integer codes.

Wide & deep (chapter 08) and the two-tower model (chapter 09) read users and
items through categorical *fields*: a user's age bucket, gender, occupation;
an item's genres and release year. Each field is stored as an int array of
shape (n_rows, width) of codes ``1..V`` (``V`` = the field's vocabulary
size) with ``0`` for "missing / padding", so single-valued fields have width
1 and multi-valued ones (genres) are padded. That one layout feeds both an
``nn.Embedding(V + 1, d, padding_idx=0)`` and a linear model over one-hots.

A *cross* of two fields is the AND of their values, as in the wide part of
Cheng et al. (2016): ``occupation=programmer AND genre=Sci-Fi`` is one binary
feature with its own weight. :func:`cross` computes the codes of all
pairwise combinations, for numpy arrays and torch tensors alike.

>>> users, items = movielens_features(load_movielens_100k())
>>> users["occupation"].shape, items["genres"].shape      # (943, 1), (1682, 6)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Features", "encode", "encode_multi", "bucketize", "cross", "movielens_features", "AGE_EDGES"]

AGE_EDGES = (18, 25, 35, 45, 50, 56)  # MovieLens-1M's age groups: <18, 18-24, ..., 56+


@dataclass
class Features:
    """Named categorical fields of one entity type (users or items).

    Attributes
    ----------
    codes : dict of str -> ndarray of shape (n, width), int64
        Codes ``1..V`` per field; 0 means missing (and pads multi-valued fields).
    labels : dict of str -> ndarray of shape (V,)
        ``labels[name][c - 1]`` is the value that code ``c`` stands for.
    """

    codes: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)

    def __post_init__(self):
        sizes = {name: len(c) for name, c in self.codes.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"every field must have one row per entity; got row counts {sizes}.")
        for name, c in self.codes.items():
            if name not in self.labels:
                raise ValueError(f"field {name!r} has codes but no labels.")
            if c.ndim != 2 or (c.size and (c.min() < 0 or c.max() > len(self.labels[name]))):
                raise ValueError(f"field {name!r} must be a 2-D array of codes in 0..{len(self.labels[name])}.")

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.codes:
            raise KeyError(f"no field {name!r}; the fields are {list(self.codes)}.")
        return self.codes[name]

    def __contains__(self, name: str) -> bool:
        return name in self.codes

    def vocab_size(self, name: str) -> int:
        """Number of distinct values of ``name`` (codes run 1..vocab_size)."""
        self[name]
        return len(self.labels[name])

    @property
    def n(self) -> int:
        return len(next(iter(self.codes.values()))) if self.codes else 0

    def add(self, name: str, codes: np.ndarray, labels) -> "Features":
        """A copy with one more field."""
        return Features({**self.codes, name: codes}, {**self.labels, name: np.asarray(labels)})

    @classmethod
    def ids(cls, n: int, name: str) -> "Features":
        """The identity field: row ``r`` gets code ``r + 1`` (e.g. ``user_id``)."""
        return cls({name: np.arange(1, n + 1, dtype=np.int64)[:, None]}, {name: np.arange(n)})


def encode(values) -> tuple[np.ndarray, np.ndarray]:
    """Codes (n, 1) and sorted labels for a single-valued column; NaN -> 0.

    >>> encode(["b", "a", "b"])
    (array([[2], [1], [2]]), array(['a', 'b'], dtype=object))
    """
    series = pd.Series(values)
    labels = np.sort(series.dropna().unique())
    codes = pd.Index(labels).get_indexer(series) + 1  # missing values get -1 + 1 = 0
    return codes.astype(np.int64)[:, None], labels


def encode_multi(values, sep: str = "|") -> tuple[np.ndarray, np.ndarray]:
    """Codes (n, max values per row), 0-padded, for ``sep``-joined strings.

    >>> encode_multi(["Comedy|Drama", "Drama"])[0]
    array([[1, 2], [2, 0]])
    """
    lists = [[] if pd.isna(v) or v == "" else str(v).split(sep) for v in values]
    labels = np.array(sorted({x for row in lists for x in row}), dtype=object)
    lookup = {label: i + 1 for i, label in enumerate(labels)}
    codes = np.zeros((len(lists), max(1, max(map(len, lists), default=1))), dtype=np.int64)
    for r, row in enumerate(lists):
        codes[r, : len(row)] = [lookup[x] for x in row]
    return codes, labels


def bucketize(values, edges) -> np.ndarray:
    """Interval labels such as ``"25-34"`` for numeric ``values`` cut at ``edges``.

    >>> bucketize([16, 30, 60], AGE_EDGES)
    array(['<18', '25-34', '56+'], dtype=object)
    """
    edges = np.asarray(edges)
    if edges.ndim != 1 or edges.size == 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges={edges.tolist()} must be a non-empty, strictly increasing sequence.")
    names = [f"<{edges[0]}"] + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]
    values = np.asarray(values, dtype=float)
    out = np.array([names[i] for i in np.searchsorted(edges, values, side="right")], dtype=object)
    out[np.isnan(values)] = None
    return out


def cross(a, b, b_vocab: int):
    """Codes of the pairwise AND of two fields, row by row.

    Parameters
    ----------
    a, b : array or tensor of shape (..., width_a) and (..., width_b)
        Codes of two fields for the same rows (0 = missing).
    b_vocab : int
        Vocabulary size of ``b``; the cross has ``vocab(a) * b_vocab`` values.

    Returns
    -------
    Same type, shape (..., width_a * width_b): code ``(a - 1) * b_vocab + b``
    for each pair of present values, 0 where either is missing.

    >>> cross(np.array([[2]]), np.array([[1, 3]]), b_vocab=3)   # a=2 AND b in {1, 3}
    array([[4, 6]])
    """
    pairs = (a[..., :, None] - 1) * b_vocab + b[..., None, :]    # (..., width_a, width_b)
    present = (a[..., :, None] > 0) & (b[..., None, :] > 0)
    pairs = pairs * present                                        # 0 where either is missing
    return pairs.reshape(*pairs.shape[:-2], -1)


def movielens_features(ml) -> tuple[Features, Features]:
    """The course's user and item fields for MovieLens.

    Users: ``user_id``, ``age`` (the ML-1M buckets), ``gender``, ``occupation``.
    Items: ``item_id``, ``genres`` (multi-valued), ``year`` (release year).
    Row ``u`` / ``i`` matches row ``u`` / column ``i`` of the interaction matrix.
    """
    users, items = ml.users, ml.items
    user_f = Features.ids(len(users), "user_id")
    user_f = user_f.add("age", *encode(bucketize(users["age"], AGE_EDGES)))
    user_f = user_f.add("gender", *encode(users["gender"]))
    user_f = user_f.add("occupation", *encode(users["occupation"]))
    item_f = Features.ids(len(items), "item_id")
    item_f = item_f.add("genres", *encode_multi(items["genres"].replace("unknown", "")))
    item_f = item_f.add("year", *encode(items["year"]))
    return user_f, item_f
