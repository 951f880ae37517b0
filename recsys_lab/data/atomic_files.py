"""Crash-safe files: checksums, atomic writes, locks and owned staging folders.

Everything a store on a plain file system needs so that a crash, a killed
process or a second writer never leaves a half-written file where a reader
can find it:

* :func:`sha256` and :func:`read_verified`: a file is read once, hashed, and
  refused with :class:`ChecksumError` when it differs from what was recorded;
* :func:`fsync` and :func:`write_atomic`: a small file (a pointer, say) is
  written under a temporary name unique to the call, flushed, then renamed
  over the old one, so readers see the old content or the new, never half;
* :class:`FileLock`: an exclusive ``flock`` that two processes (or two
  threads, each with its own lock object) take in turn; the kernel drops it
  when its holder dies, so a crash never leaves a lock behind;
* :func:`owned_folder` and :func:`clean_stale_folders`: a private work folder
  whose owner holds a lock on a sibling ``<folder>.lock`` while it works. A
  folder whose lock nobody holds was left by a process that died, and is
  safe to delete; one whose owner is alive is never touched.

Locks use ``fcntl.flock`` (Linux, macOS). Where it does not exist (Windows)
locks are not taken and no folder is ever judged stale: one writer at a
time is then the caller's job. Used by :mod:`recsys_lab.serving.store` and
by the MovieLens cache (:mod:`recsys_lab.data.movielens`).

Examples
--------
>>> with owned_folder(root, prefix=".staging-") as work:
...     (work / "data.npy").write_bytes(payload)
...     os.rename(work, root / "versions" / "v0001")     # publish in one step
>>> clean_stale_folders(root, prefix=".staging-")         # leftovers of killed processes
0
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["ChecksumError", "sha256", "read_verified", "fsync", "write_atomic", "FileLock", "owned_folder",
           "clean_stale_folders", "is_name_taken"]

logger = logging.getLogger("recsys_lab")

LOCK_SUFFIX = ".lock"


class ChecksumError(OSError):
    """A stored file does not match the SHA-256 recorded when it was written."""


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_verified(path: Path, expected: str) -> bytes:
    """The bytes of ``path``, after checking that their SHA-256 is ``expected``.

    Raises
    ------
    ChecksumError
        The file is corrupt, truncated or was changed after it was recorded.
    """
    data = Path(path).read_bytes()
    if sha256(data) != expected:
        raise ChecksumError(f"{path} does not match its recorded sha256 {expected[:12]}...: "
                            f"the file is corrupt or was changed after publishing.")
    return data


def fsync(path: Path) -> None:
    """Flush a file, or a directory's entries, from the page cache to the disk."""
    if os.name == "nt" and os.path.isdir(path):
        return  # Windows cannot open a directory; its renames are flushed with the files
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step.

    The temporary file's name is unique to this call (``tempfile.mkstemp``),
    so concurrent writers in any threads or processes never collide; the last
    rename wins, and every reader sees one complete content.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the file it replaces is for every reader
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync(path.parent)


class FileLock:
    """An exclusive lock on ``path`` (created if missing), held inside a ``with`` block.

    Parameters
    ----------
    path : str or Path
    timeout : float
        Seconds to wait for another holder; then ``TimeoutError`` names the lock.

    Examples
    --------
    >>> with FileLock(root / ".publish.lock"):
    ...     name = next_free_name()        # no other writer can pick it meanwhile
    """

    def __init__(self, path, *, timeout: float = 60.0):
        self.path, self.timeout = Path(path), timeout
        self._fd: int | None = None

    def __enter__(self) -> "FileLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise TimeoutError(f"could not lock {self.path} within {self.timeout:g} s: another "
                                       f"process holds it. Retry once it has finished.") from None
                time.sleep(0.005)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._fd)  # closing the descriptor releases the lock
        self._fd = None


def _lock_if_unowned(lock_path: Path) -> int | None:
    """A descriptor holding ``lock_path``'s lock, or None when a live owner holds it (or it vanished)."""
    if fcntl is None:
        return None  # cannot tell a live owner from a dead one: keep the folder
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:  # gone (its owner just finished), or another user's
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def owned_folder(parent, *, prefix: str):
    """A new, empty folder ``parent/<prefix><random>``, owned by this block.

    While the block runs, a lock on the sibling file ``<folder>.lock`` tells
    :func:`clean_stale_folders` that a live process is working here. On exit
    the folder is deleted unless the block renamed it away (the way to keep
    it), and the lock file is removed.
    """
    parent = Path(parent)
    while True:
        fd, lock_name = tempfile.mkstemp(prefix=prefix, suffix=LOCK_SUFFIX, dir=parent)
        if fcntl is None:
            break
        fcntl.flock(fd, fcntl.LOCK_EX)
        # a cleaner may have found the new lock file unlocked and deleted it: then start again
        if os.path.exists(lock_name) and os.stat(lock_name).st_ino == os.fstat(fd).st_ino:
            break
        os.close(fd)
    folder = Path(lock_name[: -len(LOCK_SUFFIX)])
    try:
        folder.mkdir(mode=0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_name)
        os.close(fd)


def clean_stale_folders(parent, *, prefix: str) -> int:
    """Delete the ``parent/<prefix>*`` folders that no live process owns; return how many.

    A folder is stale when its lock file is missing (older code, or a crash
    between creating the two) or when nobody holds that lock (its owner
    died: the kernel released the lock). A folder whose owner is alive is
    left alone, so this is safe to call at any time, from any process.
    """
    parent = Path(parent)
    removed = 0
    for folder in sorted(parent.glob(f"{prefix}*")):
        if folder.name.endswith(LOCK_SUFFIX) or not folder.is_dir():
            continue
        lock_path = folder.with_name(folder.name + LOCK_SUFFIX)
        has_lock = lock_path.exists() or fcntl is None
        fd = _lock_if_unowned(lock_path) if has_lock else None
        if has_lock and fd is None:
            continue  # a live owner is working in it (or just finished)
        try:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
        finally:
            if fd is not None:
                os.close(fd)
        if not folder.exists():
            removed += 1
            logger.info("removed %s, left by a process that did not finish", folder)
    for lock_path in parent.glob(f"{prefix}*{LOCK_SUFFIX}"):  # locks whose folder is already gone
        if lock_path.with_name(lock_path.name[: -len(LOCK_SUFFIX)]).exists():
            continue
        fd = _lock_if_unowned(lock_path)
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
            os.close(fd)
    return removed


def is_name_taken(error: OSError) -> bool:
    """True when a rename failed because its target folder already exists with content."""
    return error.errno in (errno.EEXIST, errno.ENOTEMPTY)
