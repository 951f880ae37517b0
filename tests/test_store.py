"""The versioned embedding store: atomic publish, integrity, history, and races between writers.

Races run real threads and real processes (``python -c``), each bounded in time.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

import recsys_lab.serving.store as store_module
from ranking_checks import assert_same_top_k
from recsys_lab.serving.store import BrokenVersionError, ChecksumError, EmbeddingStore


def vectors(fill, n_users=50, n_items=40, dim=8):
    return np.full((n_users, dim), fill, np.float32), np.full((n_items, dim), -fill, np.float32)


def test_publish_load_roundtrip(tmp_path):
    store = EmbeddingStore(tmp_path)
    assert store.current() is None and store.list_versions() == []
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    seen = sp.random(5, 4, density=0.5, format="csr", random_state=0)
    name = store.publish(users, items, model="toy", user_ids=[10, 11, 12, 13, 14], item_ids=list("abcd"),
                         seen=seen, params={"alpha": np.float64(2.0)}, index_kind=None)
    assert name == "v0001" and store.current() == "v0001"
    loaded = store.load()
    np.testing.assert_allclose(loaded.user_factors, users.astype(np.float32))
    np.testing.assert_allclose(loaded.item_factors, items.astype(np.float32))
    assert loaded.user_ids.tolist() == [10, 11, 12, 13, 14] and loaded.item_ids.tolist() == list("abcd")
    assert (loaded.seen != seen).nnz == 0
    meta = loaded.metadata
    assert meta["model"] == "toy" and meta["dimension"] == 3 and meta["params"] == {"alpha": 2.0}
    assert set(meta["files"]) == {"user_factors.npy", "item_factors.npy", "user_ids.npy", "item_ids.npy", "seen.npz"}
    assert all(len(h) == 64 for h in meta["files"].values())
    assert "T" in meta["created_at"] and meta["created_at"].endswith("+00:00")


def test_versions_are_listed_immutable_and_promotable(tmp_path):
    store = EmbeddingStore(tmp_path)
    for fill in (1, 2, 3):
        store.publish(*vectors(fill), model="toy", index_kind=None)
    assert store.list_versions() == ["v0001", "v0002", "v0003"] and store.current() == "v0003"
    assert store.load("v0001").user_factors[0, 0] == 1
    store.promote("v0002")  # a rollback
    assert store.load().user_factors[0, 0] == 2
    store.publish(*vectors(9), model="toy", index_kind=None, version="candidate", promote=False)
    assert store.current() == "v0002" and "candidate" in store.list_versions()
    with pytest.raises(ValueError, match="already exists"):
        store.publish(*vectors(4), model="toy", index_kind=None, version="v0001")
    with pytest.raises(KeyError, match="nope"):
        store.load("nope")
    with pytest.raises(KeyError):
        store.promote("../outside")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"user_factors": np.zeros((3, 2)), "item_factors": np.zeros((3, 4))}, "dimension 2 but item_factors 4"),
        ({"user_factors": np.full((3, 2), np.nan)}, "NaN"),
        ({"user_factors": np.zeros(3)}, "2-D"),
        ({"model": ""}, "model=''"),
        ({"version": "a/b"}, "version='a/b'"),
        ({"user_ids": [1, 1, 2]}, "duplicate"),
        ({"item_ids": [1, 2]}, r"item_ids has shape \(2,\)"),
        ({"seen": sp.csr_matrix((2, 2))}, r"seen has shape \(2, 2\)"),
    ],
)
def test_publish_rejects_bad_input_by_name(tmp_path, kwargs, match):
    args = {"user_factors": np.zeros((3, 2)), "item_factors": np.zeros((3, 2)), "model": "toy", "index_kind": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        EmbeddingStore(tmp_path).publish(args.pop("user_factors"), args.pop("item_factors"), **args)


def test_interrupted_publish_leaves_previous_version_serving(tmp_path, monkeypatch):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1), model="toy", index_kind=None)

    def crash(path):
        raise KeyboardInterrupt("power cut while flushing")

    monkeypatch.setattr(store_module, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        store.publish(*vectors(2), model="toy", index_kind=None)
    monkeypatch.undo()
    assert store.list_versions() == ["v0001"] and store.current() == "v0001"
    assert store.load().user_factors[0, 0] == 1
    assert not list(tmp_path.glob(".staging-*"))  # cleaned up after the failure (folder and its lock)


def test_crashed_publish_leftovers_are_never_served(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1), model="toy", index_kind=None)
    # a process killed mid-publish leaves a staging folder and maybe a half-copied version folder
    staging = tmp_path / ".staging-dead"
    staging.mkdir()
    np.save(staging / "user_factors.npy", np.zeros((2, 2)))
    (tmp_path / "versions" / "v0002").mkdir()
    np.save(tmp_path / "versions" / "v0002" / "user_factors.npy", np.zeros((2, 2)))
    assert store.list_versions() == ["v0001"] and store.load().version == "v0001"
    assert store.clean_staging() == 1 and not staging.exists()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_files_are_detected_by_checksum(tmp_path, damage):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1), model="toy", index_kind=None)
    file = tmp_path / "versions" / "v0001" / "item_factors.npy"
    data = bytearray(file.read_bytes())
    if damage == "flip":
        data[-1] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    file.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="item_factors.npy"):
        store.load()


def test_edited_metadata_cannot_hide_a_changed_file(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1), model="toy", index_kind=None)
    folder = tmp_path / "versions" / "v0001"
    np.save(folder / "user_factors.npy", np.zeros((50, 8), np.float32))
    with pytest.raises(ChecksumError):
        store.load()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["version"] == "v0001"


def test_concurrent_readers_never_see_a_partial_version(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1, n_users=3000, dim=32), model="toy", index_kind=None, params={"fill": 1})
    stop, problems, loads = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            try:
                v = EmbeddingStore(tmp_path).load()
                fill = v.metadata["params"]["fill"]
                if v.user_factors.shape != (3000, 32) or not (v.user_factors == fill).all() \
                        or not (v.item_factors == -fill).all():
                    problems.append(f"mixed content in {v.version}")
                loads[0] += 1
            except Exception as exc:  # any error is a failure of the store's promise
                problems.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for fill in range(2, 8):
        store.publish(*vectors(fill, n_users=3000, dim=32), model="toy", index_kind=None, params={"fill": fill})
    stop.set()
    for t in threads:
        t.join(30)
    assert problems == []
    assert loads[0] > 0 and store.current() == "v0007"


def test_store_with_faiss_index(tmp_path):
    pytest.importorskip("faiss")
    pytest.importorskip("recsys_lab.retrieval.index")
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(6, 4)), rng.normal(size=(30, 4))
    store = EmbeddingStore(tmp_path)
    store.publish(users, items, model="toy")
    version = store.load()
    ids, _ = version.index("ip").search(users[:2].astype(np.float32), 5)
    expected = np.argsort(-(users[:2] @ items.T), axis=1)[:, :5]
    assert_same_top_k(np.asarray(ids), expected, users[:2] @ items.T)
    with pytest.raises(ValueError, match="metric='l1'"):
        version.index("l1")
    index_file = tmp_path / "versions" / "v0001" / "items_cosine.index"
    index_file.write_bytes(index_file.read_bytes()[:-4])
    with pytest.raises(ChecksumError):
        store.load().index("cosine")


# ------------------------------------------------------------------ names, values, params
@pytest.mark.parametrize("name", ["v2\n", "v2\r\n", " v2", "v2 ", "-v2", ".v2", "v/2", "", "x" * 65, 7])
def test_version_names_are_matched_in_full(tmp_path, name):
    store = EmbeddingStore(tmp_path)
    with pytest.raises(ValueError, match="must be 1-64 letters"):
        store.publish(*vectors(1), model="toy", index_kind=None, version=name)
    assert store.list_versions() == [] and store.current() is None
    with pytest.raises(KeyError):
        store.load(name)


def test_a_hand_written_pointer_is_read_or_refused_clearly(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1), model="toy", index_kind=None)
    (tmp_path / "CURRENT").write_text("v0001\n")  # as `echo v0001 > CURRENT` writes it
    assert store.load().version == "v0001"
    (tmp_path / "CURRENT").write_text("../../etc\n")
    with pytest.raises(BrokenVersionError, match="not a version name"):
        store.load()
    assert "unreadable CURRENT" in repr(store)


@pytest.mark.parametrize("value", [1e300, -1e39, np.inf])
def test_values_that_overflow_float32_are_refused(tmp_path, value):
    users = np.ones((50, 8))
    users[3, 5] = value
    with pytest.raises(ValueError, match=r"user_factors\[3, 5\] .* too large for float32"):
        EmbeddingStore(tmp_path).publish(users, vectors(1)[1], model="toy", index_kind=None)
    users[3, 5] = np.finfo(np.float32).max  # the largest float32 is still fine
    name = EmbeddingStore(tmp_path).publish(users, vectors(1)[1], model="toy", index_kind=None)
    assert np.isfinite(EmbeddingStore(tmp_path).load(name).user_factors).all()


def test_params_are_standard_json(tmp_path):
    store = EmbeddingStore(tmp_path)
    with pytest.raises(ValueError, match=r"params\['metrics'\]\['rmse'\] = nan"):
        store.publish(*vectors(1), model="toy", index_kind=None, params={"metrics": {"rmse": np.float64("nan")}})
    with pytest.raises(TypeError, match="params holds a value of type object"):
        store.publish(*vectors(1), model="toy", index_kind=None, params={"trained_by": object()})
    assert store.list_versions() == [] and not list(tmp_path.glob(".staging-*"))
    name = store.publish(*vectors(1), model="toy", index_kind=None,
                         params={"shape": np.array([3, 4]), "alpha": np.float32(0.5), "missing": None})
    text = (tmp_path / "versions" / name / "metadata.json").read_text()
    assert json.loads(text)["params"] == {"shape": [3, 4], "alpha": 0.5, "missing": None}
    assert "NaN" not in text and "Infinity" not in text


# ------------------------------------------------------------------ broken versions
def test_one_corrupt_metadata_does_not_break_the_store(tmp_path):
    store = EmbeddingStore(tmp_path)
    for fill in (1, 2, 3):
        store.publish(*vectors(fill), model="toy", index_kind=None)
    (tmp_path / "versions" / "v0001" / "metadata.json").write_text('{"model": "toy", "vers')  # truncated
    (tmp_path / "versions" / "v0002" / "metadata.json").write_text('{"model": "toy"}')      # not a version's
    assert store.list_versions() == ["v0003"]
    assert set(store.broken_versions()) == {"v0001", "v0002"}
    assert "broken=['v0001', 'v0002']" in repr(store)
    assert store.load().user_factors[0, 0] == 3  # the current version keeps serving
    with pytest.raises(BrokenVersionError, match="v0001"):
        store.load("v0001")
    with pytest.raises(BrokenVersionError):
        store.promote("v0002")
    assert store.publish(*vectors(4), model="toy", index_kind=None) == "v0004"


# ------------------------------------------------------------------ races and leftovers
PUBLISHER = """
import sys
import numpy as np
from recsys_lab.serving.store import EmbeddingStore
root, fill, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
store = EmbeddingStore(root)
for _ in range(rounds):
    name = store.publish(np.full((30, 4), fill), np.full((20, 4), -fill), model="job", index_kind=None,
                         params={"fill": fill})
    print(name, flush=True)
"""


def test_two_processes_publishing_auto_named_versions_all_succeed(tmp_path):
    rounds = 15
    EmbeddingStore(tmp_path)
    jobs = [subprocess.Popen([sys.executable, "-c", PUBLISHER, str(tmp_path), str(fill), str(rounds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for fill in (1, 2)]
    outputs = [job.communicate(timeout=120) for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], [err[-2000:] for _, err in outputs]
    names = [out.split() for out, _ in outputs]
    store = EmbeddingStore(tmp_path)
    expected = [f"v{i:04d}" for i in range(1, 2 * rounds + 1)]
    assert sorted(names[0] + names[1]) == expected and store.list_versions() == expected  # nothing lost
    for fill, published in zip((1, 2), names):  # each name holds what its own publisher wrote
        for name in published:
            version = store.load(name)
            assert version.metadata["params"]["fill"] == fill and (version.user_factors == fill).all()
    assert not list(tmp_path.glob(".staging-*"))


def test_promote_from_two_threads_never_fails(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1), model="toy", index_kind=None)
    store.publish(*vectors(2), model="toy", index_kind=None)
    errors = []

    def flip(first, second):
        for i in range(300):
            try:
                store.promote(first if i % 2 else second)
            except Exception as exc:  # any error is a failure
                errors.append(repr(exc))

    threads = [threading.Thread(target=flip, args=pair) for pair in (("v0001", "v0002"), ("v0002", "v0001"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert store.current() in {"v0001", "v0002"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".publish.lock"]  # no temp files


STALLED_PUBLISHER = """
import sys, time
import numpy as np
import recsys_lab.serving.store as store_module

def stall(path):  # the first flush of the staged files never returns: a job that hangs, then is killed
    print("staged", flush=True)
    time.sleep(120)

store_module.fsync = stall
store_module.EmbeddingStore(sys.argv[1]).publish(np.ones((500, 64)), np.ones((400, 64)), model="job", index_kind=None)
"""


def test_staging_of_a_killed_publish_is_cleaned_when_the_store_is_opened(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.publish(*vectors(1), model="toy", index_kind=None)
    (tmp_path / ".staging-from-old-code").mkdir()  # a leftover without an owner lock
    job = subprocess.Popen([sys.executable, "-c", STALLED_PUBLISHER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline().strip() == "staged"
        staged = [p for p in tmp_path.glob(".staging-*") if p.is_dir()]
        assert len(staged) == 1 and (staged[0] / "user_factors.npy").exists()
        assert EmbeddingStore(tmp_path).clean_staging() == 0  # its owner is alive: kept
        assert staged[0].exists() and not (tmp_path / ".staging-from-old-code").exists()
    finally:
        os.kill(job.pid, signal.SIGKILL)
        job.wait(30)
    reopened = EmbeddingStore(tmp_path)  # opening the store cleans what the dead job left
    assert not list(tmp_path.glob(".staging-*")) and reopened.list_versions() == ["v0001"]


def test_publish_waits_for_the_lock_then_succeeds(tmp_path):
    from recsys_lab.data.atomic_files import FileLock

    store = EmbeddingStore(tmp_path)
    released = []

    def hold_the_lock():
        with FileLock(tmp_path / ".publish.lock"):
            time.sleep(0.5)
            released.append(time.monotonic())

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    time.sleep(0.1)
    name = store.publish(*vectors(1), model="toy", index_kind=None)
    finished = time.monotonic()
    holder.join(10)
    assert name == "v0001" and released and finished >= released[0]  # it waited for the other writer
