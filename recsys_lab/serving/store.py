"""A versioned embedding store on a plain file system.

Training produces vectors; serving reads them. Between the two sits a store
with three promises:

* **atomic publish**: a version is written into a private staging folder,
  flushed to disk, then renamed into ``versions/`` in one step. Readers can
  only ever find complete versions; a publish that fails (or a process that
  dies) half way leaves the previous version serving.
* **integrity**: ``metadata.json`` records the SHA-256 of every file, and
  every load checks them, so a flipped bit or a truncated copy fails loudly
  instead of serving garbage.
* **history**: every version stays listed and loadable, and a small
  ``CURRENT`` pointer (itself replaced atomically) says which one serves, so
  a rollback is one call to :meth:`EmbeddingStore.promote`.

Layout::

    root/
      CURRENT                 # the serving version's name, e.g. "v0002"
      versions/v0001/         # immutable once renamed into place
        metadata.json         # model, version, created_at, dimension, sha256 per file, params
        user_factors.npy  item_factors.npy  user_ids.npy  item_ids.npy
        seen.npz              # optional: each user's history, to filter recommendations
        items_ip.index  items_cosine.index   # optional faiss indexes (recsys_lab.retrieval.index)
      .staging-<random>/      # work in progress; never listed, safe to delete

This module imports numpy and scipy only; faiss is imported when an index is
built or loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["EmbeddingStore", "EmbeddingVersion", "ChecksumError"]

_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_INDEX_FILES = {"ip": "items_ip.index", "cosine": "items_cosine.index"}


class ChecksumError(OSError):
    """A stored file does not match the SHA-256 recorded when it was published."""


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

    def index(self, metric: str = "ip"):
        """The faiss index stored with this version (``"ip"`` or ``"cosine"``).

        Loaded once, after its checksum is verified; raises ``KeyError`` when
        the version was published without indexes.
        """
        if metric not in _INDEX_FILES:
            raise ValueError(f"metric={metric!r} must be one of {sorted(_INDEX_FILES)}.")
        if metric not in self._indexes:
            name = _INDEX_FILES[metric]
            if name not in self.metadata["files"]:
                raise KeyError(f"version {self.version} was published without an index (index_kind=None).")
            from recsys_lab.retrieval.index import load_index

            _read_verified(self.path, name, self.metadata["files"][name])
            self._indexes[metric] = load_index(self.path / name)
        return self._indexes[metric]


class EmbeddingStore:
    """Publish, list and load versions of user and item embeddings.

    Parameters
    ----------
    root : str or Path
        Folder of the store; created if missing.

    Examples
    --------
    >>> store = EmbeddingStore("/tmp/embeddings")
    >>> v = store.publish(als.user_factors, als.item_factors, model="ImplicitALS")
    >>> store.load().version == v
    True
    """

    def __init__(self, root):
        self.root = Path(root)
        (self.root / "versions").mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.root)!r}, versions={self.list_versions()}, current={self.current()!r})"

    # ----------------------------------------------------------------- read
    def list_versions(self) -> list[str]:
        """Names of the complete versions, oldest first."""
        folders = (p for p in (self.root / "versions").iterdir() if (p / "metadata.json").is_file())
        return sorted((p.name for p in folders), key=lambda name: (self._metadata(name)["created_at"], name))

    def current(self) -> str | None:
        """The serving version (None before the first publish)."""
        try:
            return (self.root / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def metadata(self, version: str | None = None) -> dict:
        """The metadata of ``version`` (default: the current one), without loading vectors."""
        return self._metadata(self._resolve(version))

    def load(self, version: str | None = None) -> EmbeddingVersion:
        """Load and verify ``version`` (default: the current one).

        Each file is read once into memory, hashed, and parsed from those
        same bytes, so what is checked is exactly what is served.

        Raises
        ------
        ChecksumError
            A file differs from what was published.
        KeyError
            No such version, or nothing published yet.
        """
        name = self._resolve(version)
        path = self.root / "versions" / name
        meta = self._metadata(name)
        files = meta["files"]

        def array(file):
            return np.load(io.BytesIO(_read_verified(path, file, files[file])), allow_pickle=False)

        seen = None
        if "seen.npz" in files:
            seen = sp.load_npz(io.BytesIO(_read_verified(path, "seen.npz", files["seen.npz"]))).tocsr()
        return EmbeddingVersion(
            version=name, metadata=meta, user_factors=array("user_factors.npy"),
            item_factors=array("item_factors.npy"), user_ids=array("user_ids.npy"),
            item_ids=array("item_ids.npy"), seen=seen, path=path,
        )

    # ---------------------------------------------------------------- write
    def publish(self, user_factors, item_factors, *, model: str, version: str | None = None,
                user_ids=None, item_ids=None, seen=None, params: dict | None = None,
                index_kind: str | None = "flat", promote: bool = True) -> str:
        """Write a new version atomically and (by default) make it current.

        Parameters
        ----------
        user_factors : array of shape (n_users, d)
        item_factors : array of shape (n_items, d)
        model : str
            What produced the vectors (for example ``"ImplicitALS"``).
        version : str, optional
            Name of the version; default ``v0001``, ``v0002``, ... Names are
            never reused: publishing an existing name raises ``ValueError``.
        user_ids, item_ids : array, optional
            Raw id of each row; default ``0..n-1``.
        seen : csr_matrix of shape (n_users, n_items), optional
            Histories, stored so the service can filter seen items.
        params : dict, optional
            JSON-serialisable extras (hyperparameters, offline metrics...).
        index_kind : str or None
            ``kind`` passed to ``recsys_lab.retrieval.index.build_index`` for the
            two stored item indexes (inner product and cosine); None skips them.
        promote : bool
            Point ``CURRENT`` at the new version once it is in place.

        Returns
        -------
        str : the version's name.
        """
        users, items = _check_factors(user_factors, "user_factors"), _check_factors(item_factors, "item_factors")
        if users.shape[1] != items.shape[1]:
            raise ValueError(f"user_factors has dimension {users.shape[1]} but item_factors {items.shape[1]}; they must match.")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model={model!r} must be a non-empty string naming what produced the vectors.")
        user_ids = _check_ids(user_ids, len(users), "user_ids")
        item_ids = _check_ids(item_ids, len(items), "item_ids")
        if seen is not None:
            seen = sp.csr_matrix(seen)
            if seen.shape != (len(users), len(items)):
                raise ValueError(f"seen has shape {seen.shape}; expected {(len(users), len(items))}.")
        version = self._next_version() if version is None else version
        if not isinstance(version, str) or not _VERSION_NAME.match(version):
            raise ValueError(f"version={version!r} must be 1-64 letters, digits, '.', '_' or '-'.")
        if (self.root / "versions" / version).exists():
            raise ValueError(f"version {version!r} already exists; versions are immutable, pick a new name.")

        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            arrays = {"user_factors.npy": users, "item_factors.npy": items,
                      "user_ids.npy": user_ids, "item_ids.npy": item_ids}
            for name, value in arrays.items():
                np.save(staging / name, value, allow_pickle=False)
            if seen is not None:
                sp.save_npz(staging / "seen.npz", seen)
            if index_kind is not None:
                from recsys_lab.retrieval.index import build_index

                for metric, name in _INDEX_FILES.items():
                    build_index(items, kind=index_kind, metric=metric).save(staging / name)
            files = {p.name: _sha256(p.read_bytes()) for p in sorted(staging.iterdir())}
            meta = {
                "model": model, "version": version,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
                "dimension": int(users.shape[1]), "n_users": len(users), "n_items": len(items),
                "index_kind": index_kind, "files": files, "params": params or {},
            }
            (staging / "metadata.json").write_text(json.dumps(meta, indent=2, default=_jsonable))
            for p in staging.iterdir():
                _fsync(p)
            # the one step that makes the version visible: an atomic rename
            os.rename(staging, self.root / "versions" / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync(self.root / "versions")
        if promote:
            self.promote(version)
        return version

    def promote(self, version: str) -> None:
        """Make ``version`` the serving one (also the way to roll back)."""
        self._metadata(version)  # raises KeyError if it is not a complete version
        pointer = self.root / f".CURRENT-{os.getpid()}-{id(self)}"
        pointer.write_text(version)
        _fsync(pointer)
        os.replace(pointer, self.root / "CURRENT")

    def clean_staging(self) -> int:
        """Delete staging folders left by crashed publishes; returns how many.

        Only call it when no publish is running.
        """
        leftovers = list(self.root.glob(".staging-*"))
        for p in leftovers:
            shutil.rmtree(p, ignore_errors=True)
        return len(leftovers)

    # -------------------------------------------------------------- helpers
    def _resolve(self, version):
        name = self.current() if version is None else version
        if name is None:
            raise KeyError(f"the store at {self.root} has no published version yet.")
        return name

    def _metadata(self, name: str) -> dict:
        if not isinstance(name, str) or not _VERSION_NAME.match(name):
            raise KeyError(f"version {name!r} is not a valid version name.")
        file = self.root / "versions" / str(name) / "metadata.json"
        try:
            return json.loads(file.read_text())
        except FileNotFoundError:
            raise KeyError(f"version {name!r} is not in the store; it has {self._names()}.") from None

    def _names(self):
        return sorted(p.name for p in (self.root / "versions").iterdir())

    def _next_version(self) -> str:
        numbers = [int(n[1:]) for n in self._names() if re.fullmatch(r"v\d+", n)]
        return f"v{max(numbers, default=0) + 1:04d}"


def _check_factors(value, name) -> np.ndarray:
    value = np.asarray(value)
    if value.ndim != 2 or 0 in value.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {value.shape}.")
    if not np.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values; refusing to publish them.")
    return np.ascontiguousarray(value, dtype=np.float32)


def _check_ids(ids, n, name) -> np.ndarray:
    ids = np.arange(n) if ids is None else np.asarray(ids)
    if ids.shape != (n,):
        raise ValueError(f"{name} has shape {ids.shape}; expected ({n},), one raw id per row.")
    if ids.dtype == object:
        ids = ids.astype(str)
    if len(np.unique(ids)) != n:
        raise ValueError(f"{name} holds duplicate ids; each row needs its own.")
    return ids


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_verified(folder: Path, name: str, expected: str) -> bytes:
    data = (folder / name).read_bytes()
    if _sha256(data) != expected:
        raise ChecksumError(f"{folder / name} does not match its recorded sha256 {expected[:12]}...: "
                            f"the file is corrupt or was changed after publishing.")
    return data


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"params holds a value of type {type(value).__name__}, which cannot be written as JSON.")
