"""The MovieLens loader, offline: small files in both source formats, made here."""

import hashlib
import io
import os
import signal
import subprocess
import sys
import zipfile

import pandas as pd
import pytest

from recsys_lab.data import movielens as ml
from recsys_lab.data.movielens import DatasetUnavailableError, load_movielens_100k

GENRE_FLAGS = {"Comedy": 5, "Drama": 8, "Sci-Fi": 15}  # GroupLens column positions among 19 flags


def grouplens_files() -> dict[str, bytes]:
    def flags(*names):
        row = ["0"] * 19
        for name in names:
            row[GENRE_FLAGS[name]] = "1"
        return "|".join(row)

    u_item = "\n".join(
        [
            f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags('Comedy')}",
            f"2|Land Before Time III: The Time of the Great Giving (1995) (V)|01-Jan-1995||http://y|{flags('Drama', 'Sci-Fi')}",
            f"3|unknown||||{'|'.join(['1'] + ['0'] * 18)}",
        ]
    ) + "\n"
    return {
        "u.data": b"1\t2\t4\t881250949\n2\t1\t5\t881250950\n1\t1\t3\t881250949\n",
        "u.item": u_item.encode("latin-1"),
        "u.user": b"1|24|M|technician|85711\n2|53|F|other|94043\n",
    }


def recbole_files() -> dict[str, bytes]:
    return {
        "ml-100k.inter": b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        b"1\t2\t4\t881250949\n2\t1\t5\t881250950\n1\t1\t3\t881250949\n",
        "ml-100k.item": b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        b"1\tToy Story\t1995\tComedy\n"
        b"2\tLand Before Time III: The Time of the Great Giving (1995)\tV\tDrama Sci-Fi\n"
        b"3\tunkonwn\tunkonwn\tunknown\n",
        "ml-100k.user": b"user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        b"1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t94043\n",
    }


def write_zip(path, files, folder="ml-100k"):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}", data)
    return path


@pytest.fixture
def pinned_small(monkeypatch):
    """Pin the canonical checksums to the small tables and cut off the network."""
    tables = ml._read_members(grouplens_files())
    monkeypatch.setattr(ml, "CANONICAL_SHA256", {n: ml._sha256(ml._table_bytes(t)) for n, t in zip(ml.TABLES, tables)})

    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(ml, "_fetch_grouplens", offline)
    monkeypatch.setattr(ml, "_fetch_recbole_wheel", offline)
    return tables


def test_both_formats_give_identical_canonical_tables():
    for ours, theirs in zip(ml._read_members(grouplens_files()), ml._read_members(recbole_files())):
        pd.testing.assert_frame_equal(ours, theirs)
    ratings, items, users = ml._read_members(recbole_files())
    assert list(ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert items.loc[1, "title"] == "Land Before Time III: The Time of the Great Giving"
    assert items.loc[1, "year"] == 1995 and items.loc[1, "genres"] == "Drama|Sci-Fi"
    assert items.loc[2, "title"] == "unknown" and pd.isna(items.loc[2, "year"])
    # same-second ratings of user 1 are ordered by item id
    assert ratings["item_id"].tolist()[:2] == [1, 2]


def test_local_copy_in_either_format_is_cached_and_reused(tmp_path, pinned_small):
    for number, files in enumerate((grouplens_files(), recbole_files())):
        cache = tmp_path / f"cache{number}"
        archive = write_zip(tmp_path / f"copy{number}.zip", files)
        loaded = load_movielens_100k(archive, cache_dir=cache)
        assert loaded.source.startswith("local copy")
        again = load_movielens_100k(cache_dir=cache)  # no path: the cache serves it
        assert again.source.startswith("cache")
        pd.testing.assert_frame_equal(loaded.items, again.items)
        assert again.interactions.shape == (2, 3)


def test_folder_copy_is_read(tmp_path, pinned_small):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name, data in grouplens_files().items():
        (folder / name).write_bytes(data)
    assert len(load_movielens_100k(folder, cache_dir=tmp_path / "c").ratings) == 3


def test_checksum_mismatch_is_refused_and_every_source_is_named(tmp_path, pinned_small, monkeypatch):
    files = recbole_files()
    files["ml-100k.inter"] = files["ml-100k.inter"].replace(b"\t4\t", b"\t1\t")  # a tampered rating
    archive = write_zip(tmp_path / "bad.zip", files)
    with pytest.raises(DatasetUnavailableError) as error:
        load_movielens_100k(archive, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert "local copy" in message and "ratings table has sha256" in message
    assert "GroupLens" in message and "package index recbole==1.2.1" in message
    assert "load_movielens_100k(path=" in message  # says how to place the files by hand
    assert not (tmp_path / "cache" / "ml-100k").exists()  # nothing half-written


def test_corrupt_cache_is_detected_and_fetched_again(tmp_path, pinned_small):
    archive = write_zip(tmp_path / "copy.zip", grouplens_files())
    load_movielens_100k(archive, cache_dir=tmp_path)
    ratings_csv = tmp_path / "ml-100k" / "ratings.csv"
    ratings_csv.write_text(ratings_csv.read_text().replace("881250950", "881250951"))
    reloaded = load_movielens_100k(archive, cache_dir=tmp_path)
    assert reloaded.source.startswith("local copy")
    assert "881250950" in ratings_csv.read_text()


def test_interrupted_write_leaves_no_cache(tmp_path, pinned_small, monkeypatch):
    def crash(table):
        raise KeyboardInterrupt

    monkeypatch.setattr(ml, "_table_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        ml._write_cache(tmp_path / "ml-100k", pinned_small)
    assert list(tmp_path.iterdir()) == []


def test_grouplens_zip_is_checked_by_md5(tmp_path, monkeypatch):
    archive = write_zip(tmp_path / "ml-100k.zip", grouplens_files())
    url = archive.as_uri()
    with pytest.raises(ValueError, match="MD5"):
        ml._fetch_grouplens(url)
    monkeypatch.setattr(ml, "GROUPLENS_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    ratings, items, users = ml._fetch_grouplens(url)
    assert len(ratings) == 3 and len(users) == 2


def test_recbole_wheel_members_are_checked(monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, data in recbole_files().items():
            wheel.writestr(f"recbole/dataset_example/ml-100k/{name}", data)
    payload = buffer.getvalue()
    with pytest.raises(ValueError, match="wheel has sha256"):
        ml._read_recbole_wheel(payload)
    monkeypatch.setattr(ml, "RECBOLE_WHEEL_SHA256", hashlib.sha256(payload).hexdigest())
    with pytest.raises(ValueError, match="ml-100k.inter inside the wheel"):
        ml._read_recbole_wheel(payload)
    monkeypatch.setattr(ml, "RECBOLE_MEMBER_SHA256", {n: hashlib.sha256(d).hexdigest() for n, d in recbole_files().items()})
    assert len(ml._read_recbole_wheel(payload)[0]) == 3


def test_offline_with_nothing_cached_names_the_cache_miss(tmp_path, pinned_small):
    with pytest.raises(DatasetUnavailableError, match="no source was allowed"):
        load_movielens_100k(cache_dir=tmp_path, offline=True)


def test_real_dataset_matches_its_pins(movielens):
    assert movielens.ratings.shape == (100_000, 4)
    assert movielens.users.shape == (943, 5) and movielens.items.shape == (1682, 4)
    assert movielens.ratings["rating"].between(1, 5).all()
    assert movielens.interactions.shape == (943, 1682)


def test_fetch_command_reports_failure_with_exit_code(tmp_path, pinned_small, capsys):
    from recsys_lab.__main__ import main

    assert main(["fetch", "ml-100k", "--cache-dir", str(tmp_path)]) == 1
    assert "Could not load MovieLens-100K" in capsys.readouterr().err
    archive = write_zip(tmp_path / "copy.zip", grouplens_files())
    assert main(["fetch", "ml-100k", "--path", str(archive), "--cache-dir", str(tmp_path)]) == 0
    assert "ready" in capsys.readouterr().out


# ------------------------------------------------------------------ concurrent, unwritable and killed caches
PIN_SMALL_COPY = """
import sys
from pathlib import Path
from recsys_lab.data import movielens as ml
archive, cache_dir = Path(sys.argv[1]), Path(sys.argv[2])
tables = ml._read_local(archive)
ml.CANONICAL_SHA256 = {n: ml._sha256(ml._table_bytes(t)) for n, t in zip(ml.TABLES, tables)}  # pin the small copy
"""
CACHE_WRITER = PIN_SMALL_COPY + """
failures = 0
for _ in range(int(sys.argv[3])):
    try:
        ml._write_cache(cache_dir / "ml-100k", tables)            # a fetch finishing
        ml.load_movielens_100k(cache_dir=cache_dir, offline=True)   # a reader that must find a verified cache
    except Exception as error:
        failures += 1
        print(repr(error), file=sys.stderr)
print(failures)
"""


def test_processes_sharing_one_cache_all_succeed(tmp_path):
    archive = write_zip(tmp_path / "copy.zip", grouplens_files())
    jobs = [subprocess.Popen([sys.executable, "-c", CACHE_WRITER, str(archive), str(tmp_path / "cache"), "16"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [job.communicate(timeout=120) for job in jobs]
    assert [int(out) for out, _ in outputs] == [0, 0, 0], [err[-1000:] for _, err in outputs]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".ml-100k.lock", "ml-100k"]


def test_an_unwritable_cache_still_returns_the_verified_data(tmp_path, pinned_small):
    archive = write_zip(tmp_path / "copy.zip", grouplens_files())
    (tmp_path / "a_file").write_text("the cache folder cannot be created under a file")
    with pytest.warns(UserWarning, match="verified but could not be cached"):
        loaded = load_movielens_100k(archive, cache_dir=tmp_path / "a_file" / "cache")
    assert loaded.source.startswith("local copy") and len(loaded.ratings) == 3


def test_a_read_only_cache_still_returns_the_verified_data(tmp_path, pinned_small):
    archive = write_zip(tmp_path / "copy.zip", grouplens_files())
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o555)
    try:
        try:
            (cache / "probe").mkdir()
            pytest.skip("this user writes to read-only folders (root with CAP_DAC_OVERRIDE)")
        except PermissionError:
            pass
        with pytest.warns(UserWarning, match="could not be cached"):
            assert len(load_movielens_100k(archive, cache_dir=cache).ratings) == 3
    finally:
        cache.chmod(0o755)


STALLED_FETCH = PIN_SMALL_COPY + """
import time

def stall(path):  # the fetch hangs after writing its first table, then is killed
    print("writing", flush=True)
    time.sleep(120)

ml.fsync = stall
ml._write_cache(cache_dir / "ml-100k", tables)
"""


def test_work_folders_of_killed_fetches_are_cleaned(tmp_path, pinned_small):
    archive = write_zip(tmp_path / "copy.zip", grouplens_files())
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / ".ml-100k-oldcode").mkdir()  # a leftover of a fetch killed before fetches took locks
    job = subprocess.Popen([sys.executable, "-c", STALLED_FETCH, str(archive), str(cache_dir)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline().strip() == "writing"
        load_movielens_100k(archive, cache_dir=cache_dir)  # a load while that fetch is alive
        alive = [p for p in cache_dir.glob(".ml-100k-*") if p.is_dir()]
        assert len(alive) == 1 and (alive[0] / "ratings.csv").exists()  # the live fetch keeps its folder
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait(30)
    assert load_movielens_100k(cache_dir=cache_dir, offline=True).source.startswith("cache")
    assert sorted(p.name for p in cache_dir.iterdir()) == [".ml-100k.lock", "ml-100k"]
