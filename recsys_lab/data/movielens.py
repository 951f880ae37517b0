"""MovieLens-100K: fetch, verify, cache and load as three canonical tables.

Its license forbids redistribution, so the course fetches it. Sources are
tried in order until one gives tables whose checksums match the pinned ones:

1. a local copy: the cache, or a folder / zip the user points to (either the
   GroupLens files ``u.data``, ``u.item``, ``u.user`` or RecBole's
   ``ml-100k.inter``, ``ml-100k.item``, ``ml-100k.user``);
2. the official GroupLens ``ml-100k.zip`` (short timeout, MD5 checked);
3. the copy inside the ``recbole==1.2.1`` wheel on the package index,
   fetched with ``pip download --no-deps`` (recbole is never installed).

Every source ends in the same canonical tables:

* ``ratings``: user_id, item_id, rating, timestamp
* ``items``: item_id, title (without the year), year (nullable), genres
  (``|``-joined, in the GroupLens genre order)
* ``users``: user_id, age, gender, occupation, zip_code

The cache is written atomically (a folder renamed into place, one writer at
a time under a lock file), so an interrupted fetch leaves nothing
half-written and concurrent processes sharing one cache all succeed; it is
re-verified on every load, so a corrupted cache is detected and fetched
again. A cache folder that cannot be written (read-only, full) costs only a
warning: the verified tables are returned anyway. Work folders of fetches
whose process was killed (``.ml-100k-*``) are deleted on the next load.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_lab.data.interactions import Interactions
from recsys_lab.data.atomic_files import FileLock, clean_stale_folders, fsync, owned_folder

__all__ = ["MovieLens", "load_movielens_100k", "default_cache_dir", "DatasetUnavailableError"]

logger = logging.getLogger("recsys_lab")

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_MD5 = "0e33842e24a9c977be4e0107933c0723"  # published beside the zip
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_MEMBER_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
# sha256 of each canonical table as written by ``_table_bytes``; every source
# must reproduce these exactly.
CANONICAL_SHA256 = {
    "ratings": "ff41a947c20fa065e66308592f7ff9db1801922beaeb030f30efe3f87c234b93",
    "items": "1d80965954f04aa72bb06eb4db5f5ebd451f32b5d83dadcf176da679a0ff112f",
    "users": "f0666955a899ab27004d413eec2d92e393f5050879597e126ede637390e5a238",
}
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
TABLES = ("ratings", "items", "users")
WORK_PREFIX = ".ml-100k-"  # the cache's staging folders, next to it


class DatasetUnavailableError(RuntimeError):
    """Every source of a dataset failed; the message lists each attempt."""


@dataclass(frozen=True)
class MovieLens:
    """The three canonical MovieLens-100K tables and where they came from."""

    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    source: str

    @cached_property
    def interactions(self) -> Interactions:
        """All ratings as an ``Interactions`` over every user and item."""
        return Interactions.from_frame(
            self.ratings, user_ids=self.users["user_id"].to_numpy(), item_ids=self.items["item_id"].to_numpy()
        )

    def __repr__(self) -> str:
        return (
            f"MovieLens({len(self.ratings)} ratings, {len(self.users)} users, "
            f"{len(self.items)} items, source={self.source!r})"
        )


def default_cache_dir() -> Path:
    """``$RECSYS_LAB_DATA``, else ``datasets/cache`` in a source checkout,
    else ``~/.cache/recsys_lab``."""
    if os.environ.get("RECSYS_LAB_DATA"):
        return Path(os.environ["RECSYS_LAB_DATA"])
    checkout_datasets = Path(__file__).resolve().parents[2] / "datasets"
    if checkout_datasets.is_dir():
        return checkout_datasets / "cache"
    return Path.home() / ".cache" / "recsys_lab"


def load_movielens_100k(path=None, *, cache_dir=None, offline: bool = False) -> MovieLens:
    """Load MovieLens-100K, fetching and caching it on first use.

    Parameters
    ----------
    path : str or Path, optional
        Your own copy: a folder or zip with the GroupLens or RecBole files.
    cache_dir : str or Path, optional
        Where the verified tables live; default :func:`default_cache_dir`.
    offline : bool
        Only try local copies (no network).

    Examples
    --------
    >>> ml = load_movielens_100k()
    >>> ml.ratings.shape
    (100000, 4)
    """
    cache = Path(cache_dir or default_cache_dir()) / "ml-100k"
    with contextlib.suppress(OSError):  # a missing or read-only folder has nothing to clean
        clean_stale_folders(cache.parent, prefix=WORK_PREFIX)
    attempts: list[str] = []
    cached = _read_cache(cache, attempts)
    if cached is not None:
        return MovieLens(*cached, source=f"cache {cache}")
    if attempts:
        logger.warning("MovieLens cache is corrupt: %s", attempts[-1])

    sources = []
    if path is not None:
        sources.append((f"local copy {path}", lambda: _read_local(Path(path))))
    if not offline:
        sources.append((f"GroupLens {GROUPLENS_URL}", _fetch_grouplens))
        sources.append((f"package index {RECBOLE_REQUIREMENT} wheel", _fetch_recbole_wheel))
    for name, fetch in sources:
        try:
            tables = fetch()
            _verify_tables(tables)
        except Exception as exc:  # one failed source must not stop the next
            attempts.append(f"{name}: {type(exc).__name__}: {exc}")
            logger.info("MovieLens source failed: %s", attempts[-1])
            continue
        try:
            _write_cache(cache, tables)
            logger.info("MovieLens-100K fetched from %s into %s", name, cache)
        except OSError as exc:  # read-only or full disk: the verified tables are still good
            warnings.warn(f"MovieLens-100K from {name} is verified but could not be cached in {cache} "
                          f"({type(exc).__name__}: {exc}); it will be fetched again next time. Pass "
                          f"cache_dir= a writable folder, or set RECSYS_LAB_DATA.", stacklevel=2)
        return MovieLens(*tables, source=name)

    tried = "\n".join(f"  - {line}" for line in attempts) or "  - (no source was allowed)"
    raise DatasetUnavailableError(
        f"Could not load MovieLens-100K. Tried:\n{tried}\n"
        f"To place it by hand, download ml-100k.zip from https://grouplens.org/datasets/movielens/100k/ "
        f"(or run `pip download --no-deps {RECBOLE_REQUIREMENT}`) on a machine with network access and pass "
        f"its path: load_movielens_100k(path='ml-100k.zip'), or "
        f"`python -m recsys_lab fetch ml-100k --path ml-100k.zip`."
    )


# ---------------------------------------------------------------- cache
def _table_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verify_tables(tables) -> None:
    for name, table in zip(TABLES, tables):
        digest = _sha256(_table_bytes(table))
        if digest != CANONICAL_SHA256[name]:
            raise ValueError(f"the {name} table has sha256 {digest[:12]}..., expected {CANONICAL_SHA256[name][:12]}...")


def _read_cache(cache: Path, attempts: list[str]):
    if not cache.is_dir():
        return None
    try:
        tables = tuple(_parse_canonical(name, (cache / f"{name}.csv").read_bytes()) for name in TABLES)
        _verify_tables(tables)
        return tables
    except Exception as exc:  # replaced by the next successful fetch
        attempts.append(f"cache {cache}: {type(exc).__name__}: {exc} (fetching again)")
        return None


def _write_cache(cache: Path, tables) -> None:
    """Put verified ``tables`` in ``cache`` in one rename; safe with concurrent writers.

    The files are written and flushed in a private work folder; then, under a
    lock, the cache is checked again (a concurrent writer may have just
    placed a good one: nothing to do), a corrupt one is moved aside, and the
    work folder is renamed into place.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    with owned_folder(cache.parent, prefix=WORK_PREFIX) as staging:
        for name, table in zip(TABLES, tables):
            (staging / f"{name}.csv").write_bytes(_table_bytes(table))
            fsync(staging / f"{name}.csv")
        with FileLock(cache.parent / ".ml-100k.lock"):
            if _read_cache(cache, []) is not None:
                return
            with owned_folder(cache.parent, prefix=WORK_PREFIX) as trash:
                if cache.exists():
                    os.rename(cache, trash / "corrupt")  # deleted when the block ends
                os.rename(staging, cache)  # atomic: readers see no cache, or a complete one
                fsync(cache.parent)


def _parse_canonical(name: str, data: bytes) -> pd.DataFrame:
    dtypes = {
        "ratings": {"user_id": "int64", "item_id": "int64", "rating": "int64", "timestamp": "int64"},
        "items": {"item_id": "int64", "title": "string", "year": "Int64", "genres": "string"},
        "users": {"user_id": "int64", "age": "int64", "gender": "string", "occupation": "string", "zip_code": "string"},
    }[name]
    return pd.read_csv(io.BytesIO(data), dtype=dtypes, keep_default_na=False, na_values={"year": [""]})


# ---------------------------------------------------------------- raw formats
def _canonical(ratings, items, users):
    ratings = ratings.astype("int64").sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    items = items.astype({"item_id": "int64", "title": "string", "year": "Int64", "genres": "string"})
    users = users.astype({"user_id": "int64", "age": "int64", "gender": "string", "occupation": "string", "zip_code": "string"})
    return (
        ratings.reset_index(drop=True),
        items.sort_values("item_id").reset_index(drop=True),
        users.sort_values("user_id").reset_index(drop=True),
    )


def _split_title(title: str) -> tuple[str, float]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); a title with no year keeps NaN.

    One GroupLens title ends in a video marker, '... (1995) (V)': it is dropped.
    """
    title = title.strip().removesuffix("(V)").strip()
    if len(title) >= 6 and title.endswith(")") and title[-6] == "(" and title[-5:-1].isdigit():
        return title[:-6].strip(), float(title[-5:-1])
    return title, np.nan


def parse_grouplens(u_data: bytes, u_item: bytes, u_user: bytes):
    """Canonical tables from the GroupLens files (``|`` and tab separated, latin-1)."""
    ratings = pd.read_csv(io.BytesIO(u_data), sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    item_cols = ["item_id", "raw_title", "release", "video", "url", *GENRES]
    raw_items = pd.read_csv(io.BytesIO(u_item), sep="|", names=item_cols, encoding="latin-1", keep_default_na=False)
    titles, years = zip(*(_split_title(t) for t in raw_items["raw_title"]))
    flags = raw_items[GENRES].to_numpy().astype(bool)
    genres = ["|".join(g for g, on in zip(GENRES, row) if on) for row in flags]
    items = pd.DataFrame({"item_id": raw_items["item_id"], "title": titles, "year": years, "genres": genres})
    users = pd.read_csv(
        io.BytesIO(u_user), sep="|", names=["user_id", "age", "gender", "occupation", "zip_code"], dtype={"zip_code": str}
    )
    return _canonical(ratings, items, users)


def parse_recbole(inter: bytes, item: bytes, user: bytes):
    """Canonical tables from RecBole's atomic files (tab separated, typed headers)."""

    def read(data):
        frame = pd.read_csv(io.BytesIO(data), sep="\t", dtype=str, keep_default_na=False)
        frame.columns = [c.split(":")[0] for c in frame.columns]
        return frame

    ratings = read(inter)[["user_id", "item_id", "rating", "timestamp"]].astype(float)
    raw_items = read(item)
    # RecBole spells the placeholder movie 'unkonwn'; GroupLens says 'unknown' with no year.
    # Where RecBole took a trailing '(V)' for the year, split the title again.
    title_year = [
        (title, float(year)) if year.isdigit() else _split_title(title)
        for title, year in zip(raw_items["movie_title"].replace({"unkonwn": "unknown"}), raw_items["release_year"])
    ]
    title, year = zip(*title_year)
    genres = raw_items["class"].str.split(" ").str.join("|")
    items = pd.DataFrame({"item_id": raw_items["item_id"], "title": title, "year": year, "genres": genres})
    users = read(user)[["user_id", "age", "gender", "occupation", "zip_code"]]
    return _canonical(ratings, items, users)


def _read_members(files: dict[str, bytes]):
    """Pick whichever of the two known formats ``files`` (basename -> bytes) holds."""
    if {"u.data", "u.item", "u.user"} <= files.keys():
        return parse_grouplens(files["u.data"], files["u.item"], files["u.user"])
    if set(RECBOLE_MEMBER_SHA256) <= files.keys():
        return parse_recbole(files["ml-100k.inter"], files["ml-100k.item"], files["ml-100k.user"])
    raise FileNotFoundError(
        f"found neither u.data/u.item/u.user nor ml-100k.inter/.item/.user (saw {sorted(files)[:8]})"
    )


def _zip_members(archive: zipfile.ZipFile) -> dict[str, bytes]:
    wanted = {"u.data", "u.item", "u.user", *RECBOLE_MEMBER_SHA256}
    return {Path(n).name: archive.read(n) for n in archive.namelist() if Path(n).name in wanted}


def _read_local(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_file():
        with zipfile.ZipFile(path) as archive:
            return _read_members(_zip_members(archive))
    wanted = {"u.data", "u.item", "u.user", *RECBOLE_MEMBER_SHA256}
    return _read_members({p.name: p.read_bytes() for p in path.rglob("*") if p.name in wanted and p.is_file()})


# ---------------------------------------------------------------- network sources
def _fetch_grouplens(url: str | None = None, timeout: float = 5.0):
    with urllib.request.urlopen(url or GROUPLENS_URL, timeout=timeout) as response:
        payload = response.read()
    digest = hashlib.md5(payload).hexdigest()
    if digest != GROUPLENS_MD5:
        raise ValueError(f"ml-100k.zip has MD5 {digest}, expected the published {GROUPLENS_MD5}")
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return _read_members(_zip_members(archive))


def _fetch_recbole_wheel(timeout: float = 120.0):
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--quiet", "--timeout", "15", "--retries", "1", "-d", folder, RECBOLE_REQUIREMENT]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        wheels = list(Path(folder).glob("recbole-*.whl"))
        if done.returncode != 0 or not wheels:
            last_line = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise RuntimeError(f"pip download failed: {last_line[0]}")
        return _read_recbole_wheel(wheels[0].read_bytes())


def _read_recbole_wheel(payload: bytes):
    """Canonical tables from the bytes of the recbole wheel, every file checked."""
    if _sha256(payload) != RECBOLE_WHEEL_SHA256:
        raise ValueError(f"the recbole wheel has sha256 {_sha256(payload)}, expected {RECBOLE_WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        members = _zip_members(archive)
    for name, expected in RECBOLE_MEMBER_SHA256.items():
        if _sha256(members.get(name, b"")) != expected:
            raise ValueError(f"{name} inside the wheel does not match its pinned sha256")
    return _read_members(members)
