"""The versioned embedding store: atomic publish, integrity, history."""

import json
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import recsys_lab.serving.store as store_module
from ranking_checks import assert_same_top_k
from recsys_lab.serving.store import ChecksumError, EmbeddingStore


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

    monkeypatch.setattr(store_module, "_fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        store.publish(*vectors(2), model="toy", index_kind=None)
    monkeypatch.undo()
    assert store.list_versions() == ["v0001"] and store.current() == "v0001"
    assert store.load().user_factors[0, 0] == 1
    assert not list(tmp_path.glob(".staging-*"))  # cleaned up after the failure


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
