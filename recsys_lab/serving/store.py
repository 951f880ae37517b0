"""A versioned embedding store on a plain file system.

Training produces vectors; serving reads them. Between the two sits a store
with three promises:

* **atomic publish**: a version is written into a private staging folder,
  flushed to disk, then renamed into ``versions/`` in one step. Readers can
  only ever find complete versions; a publish that fails (or a process that
  dies) half way leaves the previous version serving, and its staging folder
  is deleted the next time any process opens the store.
* **integrity**: ``metadata.json`` records the SHA-256 of every file, and
  every load checks them, so a flipped bit or a truncated copy fails loudly
  instead of serving garbage. A version whose metadata cannot be read is
  reported as broken; the others keep being listed and served.
* **history**: every version stays listed and loadable, and a small
  ``CURRENT`` pointer (itself replaced atomically) says which one serves, so
  a rollback is one call to :meth:`EmbeddingStore.promote`.

Any number of threads and processes may publish, promote and load at once:
the last step of a publish (choose the name, rename into place, promote)
runs under a lock file, so automatic names never collide. The file-level
machinery lives in :mod:`recsys_lab.data.atomic_files`.

Layout::

    root/
      CURRENT                 # the serving version's name, e.g. "v0002"
      versions/v0001/         # immutable once renamed into place
        metadata.json         # model, version, created_at, dimension, sha256 per file, params
        user_factors.npy  item_factors.npy  user_ids.npy  item_ids.npy
        seen.npz              # optional: each user's history, to filter recommendations
        items_ip.index  items_cosine.index   # optional faiss indexes (recsys_lab.retrieval.index)
      .publish.lock           # held while a publish names and renames its version
      .staging-<random>/      # work in progress, owned through .staging-<random>.lock

This module imports numpy and scipy only; faiss is imported when an index is
built or loaded.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys_lab.data.atomic_files import (
    ChecksumError, FileLock, clean_stale_folders, fsync, is_name_taken, owned_folder, read_verified, sha256,
    write_atomic,
)
from recsys_lab.serving.version import (
    INDEX_FILES, BrokenVersionError, EmbeddingVersion, check_factors, check_ids, check_version_name, params_to_json,
    read_metadata,
)

__all__ = ["EmbeddingStore", "EmbeddingVersion", "ChecksumError", "BrokenVersionError"]

logger = logging.getLogger("recsys_lab")

STAGING_PREFIX = ".staging-"
PUBLISH_LOCK = ".publish.lock"  # the file a writer locks to name, rename and promote a version


class EmbeddingStore:
    """Publish, list and load versions of user and item embeddings.

    Parameters
    ----------
    root : str or Path
        Folder of the store; created if missing. Opening it deletes the
        staging folders of publishes whose process died.

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
        try:
            self.clean_staging()
        except OSError as error:  # a read-only store can still be read
            logger.debug("could not clean staging folders in %s: %s", self.root, error)

    def __repr__(self) -> str:
        try:
            current = self.current()
        except BrokenVersionError:
            current = "<unreadable CURRENT>"
        broken = self.broken_versions()
        tail = f", broken={sorted(broken)}" if broken else ""
        return f"EmbeddingStore({str(self.root)!r}, versions={self.list_versions()}, current={current!r}{tail})"

    # ----------------------------------------------------------------- read
    def list_versions(self) -> list[str]:
        """Names of the complete, readable versions, oldest first.

        A version whose ``metadata.json`` cannot be read is left out with a
        warning; :meth:`broken_versions` says why.
        """
        readable, broken = self._scan()
        for name, reason in broken.items():
            logger.warning("version %r of the store at %s is broken and not listed: %s", name, self.root, reason)
        return sorted(readable, key=lambda name: (readable[name]["created_at"], name))

    def broken_versions(self) -> dict[str, str]:
        """``{name: reason}`` for version folders whose metadata cannot be read."""
        return self._scan()[1]

    def current(self) -> str | None:
        """The serving version (None before the first publish)."""
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise BrokenVersionError(f"{self.root / 'CURRENT'} cannot be read ({error}); point it at a good "
                                     f"version with store.promote(name).") from error
        try:
            return check_version_name(name)
        except ValueError:
            raise BrokenVersionError(f"{self.root / 'CURRENT'} holds {name[:80]!r}, not a version name; point "
                                     f"it at a good version with store.promote(name).") from None

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
        BrokenVersionError
            The version's ``metadata.json`` (or ``CURRENT``) cannot be read.
        KeyError
            No such version, or nothing published yet.
        """
        name = self._resolve(version)
        meta = self._metadata(name)
        path = self.root / "versions" / name
        files = meta["files"]

        def array(file):
            return np.load(io.BytesIO(read_verified(path / file, files[file])), allow_pickle=False)

        seen = None
        if "seen.npz" in files:
            seen = sp.load_npz(io.BytesIO(read_verified(path / "seen.npz", files["seen.npz"]))).tocsr()
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
            Stored as float32; every value must be finite in float32.
        model : str
            What produced the vectors (for example ``"ImplicitALS"``).
        version : str, optional
            Name of the version: 1-64 letters, digits, ``.``, ``_`` or ``-``,
            starting with a letter or digit. Default ``v0001``, ``v0002``, ...
            (the next free number, safe with concurrent publishers). Names are
            never reused: publishing an existing name raises ``ValueError``.
        user_ids, item_ids : array, optional
            Raw id of each row; default ``0..n-1``.
        seen : csr_matrix of shape (n_users, n_items), optional
            Histories, stored so the service can filter seen items.
        params : dict, optional
            JSON-serialisable extras (hyperparameters, offline metrics...);
            numpy scalars and arrays are converted, NaN and infinity refused.
        index_kind : str or None
            ``kind`` passed to ``recsys_lab.retrieval.index.build_index`` for the
            two stored item indexes (inner product and cosine); None skips
            them (the service then builds exact ones when it loads the version).
        promote : bool
            Point ``CURRENT`` at the new version once it is in place.

        Returns
        -------
        str : the version's name.
        """
        users, items = check_factors(user_factors, "user_factors"), check_factors(item_factors, "item_factors")
        if users.shape[1] != items.shape[1]:
            raise ValueError(f"user_factors has dimension {users.shape[1]} but item_factors {items.shape[1]}; they must match.")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model={model!r} must be a non-empty string naming what produced the vectors.")
        user_ids = check_ids(user_ids, len(users), "user_ids")
        item_ids = check_ids(item_ids, len(items), "item_ids")
        if seen is not None:
            seen = sp.csr_matrix(seen)
            if seen.shape != (len(users), len(items)):
                raise ValueError(f"seen has shape {seen.shape}; expected {(len(users), len(items))}.")
        if version is not None:
            self._check_unused(check_version_name(version))

        with owned_folder(self.root, prefix=STAGING_PREFIX) as staging:
            arrays = {"user_factors.npy": users, "item_factors.npy": items,
                      "user_ids.npy": user_ids, "item_ids.npy": item_ids}
            for name, value in arrays.items():
                np.save(staging / name, value, allow_pickle=False)
            if seen is not None:
                sp.save_npz(staging / "seen.npz", seen)
            if index_kind is not None:
                from recsys_lab.retrieval.index import build_index

                for metric, name in INDEX_FILES.items():
                    build_index(items, kind=index_kind, metric=metric).save(staging / name)
            files = {p.name: sha256(p.read_bytes()) for p in sorted(staging.iterdir())}
            extras = params_to_json(params or {}, "params")
            for p in staging.iterdir():
                fsync(p)
            with FileLock(self.root / PUBLISH_LOCK):  # name, rename and promote: one writer at a time
                name = self._next_version() if version is None else version
                self._check_unused(name)
                meta = {
                    "model": model, "version": name,
                    "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
                    "dimension": int(users.shape[1]), "n_users": len(users), "n_items": len(items),
                    "index_kind": index_kind, "files": files, "params": extras,
                }
                (staging / "metadata.json").write_text(json.dumps(meta, indent=2, allow_nan=False))
                fsync(staging / "metadata.json")
                fsync(staging)
                try:  # the one step that makes the version visible: an atomic rename
                    os.rename(staging, self.root / "versions" / name)
                except OSError as error:
                    if is_name_taken(error):  # a writer that does not take the lock got there first
                        raise ValueError(f"version {name!r} already exists; versions are immutable, "
                                         f"pick a new name.") from error
                    raise
                fsync(self.root / "versions")
                if promote:
                    self.promote(name)
        return name

    def promote(self, version: str) -> None:
        """Make ``version`` the serving one (also the way to roll back)."""
        self._metadata(version)  # raises KeyError (or BrokenVersionError) if it is not a good version
        write_atomic(self.root / "CURRENT", version.encode())

    def clean_staging(self) -> int:
        """Delete staging folders left by publishes whose process died; returns how many.

        Safe at any time: folders of publishes still running are kept.
        """
        return clean_stale_folders(self.root, prefix=STAGING_PREFIX)

    # -------------------------------------------------------------- helpers
    def _resolve(self, version):
        name = self.current() if version is None else version
        if name is None:
            raise KeyError(f"the store at {self.root} has no published version yet.")
        return name

    def _metadata(self, name: str) -> dict:
        check_version_name(name, error=KeyError)
        try:
            return read_metadata(self.root / "versions" / name)
        except FileNotFoundError:
            raise KeyError(f"version {name!r} is not in the store; it has {self._names()}.") from None

    def _scan(self) -> tuple[dict[str, dict], dict[str, str]]:
        """Metadata of every complete version folder, and the reason each broken one fails."""
        readable, broken = {}, {}
        for folder in (self.root / "versions").iterdir():
            if not (folder / "metadata.json").is_file():
                continue  # a half-copied folder that never had metadata: not a version
            try:
                readable[folder.name] = self._metadata(folder.name)
            except (KeyError, BrokenVersionError) as error:
                broken[folder.name] = error.args[0]
        return readable, broken

    def _names(self):
        return sorted(p.name for p in (self.root / "versions").iterdir())

    def _check_unused(self, name: str) -> None:
        if (self.root / "versions" / name).exists():
            raise ValueError(f"version {name!r} already exists; versions are immutable, pick a new name.")

    def _next_version(self) -> str:
        numbers = [int(n[1:]) for n in self._names() if re.fullmatch(r"v\d+", n)]
        return f"v{max(numbers, default=0) + 1:04d}"

