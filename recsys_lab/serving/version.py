"""One version of the embedding store: what it holds and how that is checked.

A version is a folder of plain files: four arrays (user and item vectors and
their raw ids), optionally the users' histories and two faiss indexes, and a
``metadata.json`` that records who made it, when, and the SHA-256 of every
file. This module holds the rules for that content, on the way in and out:

* :func:`check_version_name`: a name is 1-64 letters, digits, ``.``, ``_``
  or ``-`` starting with a letter or digit, matched in full (so ``"v2\\n"``
  is refused rather than written and then lost);
* :func:`check_factors`, :func:`check_ids`, :func:`params_to_json`: what a
  publish accepts (vectors must be finite *after* the cast to float32, since
  that is what is stored; params must be standard JSON, so no NaN);
* :func:`read_metadata`: a version whose metadata cannot be parsed raises
  :class:`BrokenVersionError`, which the store reports without failing;
* :class:`EmbeddingVersion`: a loaded, verified version and its indexes.

The store that writes and lists versions is :mod:`recsys_lab.serving.store`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys_lab.data.atomic_files import read_verified

__all__ = ["EmbeddingVersion", "BrokenVersionError", "check_version_name", "check_factors", "check_ids",
           "params_to_json", "read_metadata", "INDEX_FILES"]

logger = logging.getLogger("recsys_lab")

VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # always used with fullmatch
INDEX_FILES = {"ip": "items_ip.index", "cosine": "items_cosine.index"}
ARRAY_FILES = ("user_factors.npy", "item_factors.npy", "user_ids.npy", "item_ids.npy")
METADATA_KEYS = ("model", "version", "created_at", "dimension", "n_users", "n_items", "files", "params")


class BrokenVersionError(OSError):
    """A version folder (or the ``CURRENT`` pointer) whose metadata cannot be read."""


def check_version_name(name, *, error=ValueError) -> str:
    """``name`` if it is a valid version name, else raise ``error`` (ValueError or KeyError) naming it."""
    if not isinstance(name, str) or not VERSION_NAME.fullmatch(name):
        raise error(f"version={name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a "
                    f"letter or digit.")
    return name


def check_factors(value, name: str) -> np.ndarray:
    """A non-empty 2-D array as contiguous float32, every value finite after the cast."""
    value = np.asarray(value)
    if value.ndim != 2 or 0 in value.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {value.shape}.")
    if value.dtype.kind not in "fiu":
        raise ValueError(f"{name} has dtype {value.dtype}; it must hold real numbers.")
    with np.errstate(over="ignore", invalid="ignore"):
        stored = np.ascontiguousarray(value, dtype=np.float32)  # what is written, so what is checked
    bad = ~np.isfinite(stored)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{name}[{row}, {col}] = {value[row, col].item()!r} is NaN, infinite or too large for "
                         f"float32 (|x| > 3.4e38); refusing to publish it. Did the training run diverge?")
    return stored


def check_ids(ids, n: int, name: str) -> np.ndarray:
    """Raw ids for ``n`` rows (default ``0..n-1``), one per row and all different."""
    ids = np.arange(n) if ids is None else np.asarray(ids)
    if ids.shape != (n,):
        raise ValueError(f"{name} has shape {ids.shape}; expected ({n},), one raw id per row.")
    if ids.dtype == object:
        ids = ids.astype(str)
    if len(np.unique(ids)) != n:
        raise ValueError(f"{name} holds duplicate ids; each row needs its own.")
    return ids


def params_to_json(value, where: str = "params"):
    """``value`` as plain JSON types: numpy scalars and arrays converted; NaN, inf and objects refused.

    >>> params_to_json({"alpha": np.float32(2.0), "shape": np.array([3, 4])})
    {'alpha': 2.0, 'shape': [3, 4]}
    """
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} = {value}: JSON has no NaN or infinity; store None or a string instead.")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        if not all(isinstance(key, (str, int)) for key in value):
            raise TypeError(f"{where} has a key that is not a string; JSON keys must be strings.")
        return {str(key): params_to_json(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [params_to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"params holds a value of type {type(value).__name__}, which cannot be written as JSON "
                    f"({where}).")


def read_metadata(folder: Path) -> dict:
    """The parsed ``metadata.json`` of the version in ``folder``.

    Raises
    ------
    FileNotFoundError
        No metadata: not a (complete) version.
    BrokenVersionError
        The file is not JSON, or not the metadata of this version.
    """
    file = Path(folder) / "metadata.json"
    try:
        meta = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as error:  # bad JSON, bad UTF-8, unreadable file
        raise BrokenVersionError(f"{file} cannot be read ({type(error).__name__}: {error}); version "
                                 f"{file.parent.name!r} is broken: promote or publish another.") from error
    missing = [key for key in METADATA_KEYS if key not in meta] if isinstance(meta, dict) else list(METADATA_KEYS)
    if missing or meta["version"] != file.parent.name or not isinstance(meta["files"], dict) \
            or not set(ARRAY_FILES) <= set(meta["files"]):
        raise BrokenVersionError(f"{file} is not the metadata of version {file.parent.name!r} (missing keys "
                                 f"{missing}, files or the right name); the version is broken: promote or "
                                 f"publish another.")
    return meta


@dataclass(frozen=True)
class EmbeddingVersion:
    """One loaded, verified version of the store.

    Attributes
    ----------
    version : str
    metadata : dict
        ``model``, ``version``, ``created_at`` (ISO 8601, UTC), ``dimension``,
        ``n_users``, ``n_items``, ``files`` (name -> sha256) and ``params``.
    user_factors : ndarray of shape (n_users, dimension), float32
    item_factors : ndarray of shape (n_items, dimension), float32
    user_ids, item_ids : ndarray
        Raw id of each row of the factor matrices.
    seen : csr_matrix of shape (n_users, n_items) or None
    path : Path
        The version's folder (indexes are loaded from it on demand).
    """

    version: str
    metadata: dict
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    seen: sp.csr_matrix | None
    path: Path
    _indexes: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def dimension(self) -> int:
        return int(self.metadata["dimension"])

    def index(self, metric: str = "ip", *, build_if_missing: bool = False):
        """The faiss index stored with this version (``"ip"`` or ``"cosine"``).

        Loaded once, after its checksum is verified. A version published with
        ``index_kind=None`` has none: this raises ``KeyError``, or with
        ``build_if_missing=True`` builds an exact (flat) index in memory.
        """
        if metric not in INDEX_FILES:
            raise ValueError(f"metric={metric!r} must be one of {sorted(INDEX_FILES)}.")
        if metric not in self._indexes:
            from recsys_lab.retrieval.index import build_index, load_index

            name = INDEX_FILES[metric]
            if name in self.metadata["files"]:
                read_verified(self.path / name, self.metadata["files"][name])
                self._indexes[metric] = load_index(self.path / name)
            elif build_if_missing:
                logger.info("version %s has no stored %s index; building a flat one in memory", self.version, metric)
                self._indexes[metric] = build_index(self.item_factors, kind="flat", metric=metric)
            else:
                raise KeyError(f"version {self.version} was published without an index (index_kind=None); "
                               f"pass build_if_missing=True to build an exact one in memory.")
        return self._indexes[metric]
