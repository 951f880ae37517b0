"""The HTTP service, exercised through a real client on 127.0.0.1."""

import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("fastapi")
pytest.importorskip("faiss")
httpx = pytest.importorskip("httpx")

from recsys_lab.serving.service import BackgroundServer, create_app, free_port, load_test  # noqa: E402
from recsys_lab.serving.store import EmbeddingStore  # noqa: E402

N_USERS, N_ITEMS, DIM = 20, 50, 8
USER_IDS = np.arange(100, 100 + N_USERS)
ITEM_IDS = np.arange(1000, 1000 + N_ITEMS)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    rng = np.random.default_rng(0)
    users = rng.normal(size=(N_USERS, DIM)).astype(np.float32)
    items = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    seen = sp.random(N_USERS, N_ITEMS, density=0.2, format="csr", random_state=1)
    seen.data[:] = 1
    root = tmp_path_factory.mktemp("store")
    EmbeddingStore(root).publish(users, items, model="toy", user_ids=USER_IDS, item_ids=ITEM_IDS, seen=seen)
    return root, users, items, seen


@pytest.fixture(scope="module")
def server(published):
    with BackgroundServer(create_app(published[0])) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["version"] == "v0001" and body["dimension"] == DIM


def test_recommendations_match_brute_force(client, published):
    _, users, items, seen = published
    for row in (0, 7):
        scores = users[row] @ items.T
        scores[seen[row].indices] = -np.inf
        expected = ITEM_IDS[np.argsort(-scores, kind="stable")[:5]].tolist()
        body = client.get(f"/users/{USER_IDS[row]}/recommendations", params={"k": 5}).json()
        assert [x["item_id"] for x in body["items"]] == expected
        np.testing.assert_allclose([x["score"] for x in body["items"]], np.sort(scores)[::-1][:5], rtol=1e-5)
    unfiltered = client.get(f"/users/{USER_IDS[0]}/recommendations", params={"k": 3, "exclude_seen": False}).json()
    assert [x["item_id"] for x in unfiltered["items"]] == ITEM_IDS[np.argsort(-(users[0] @ items.T))[:3]].tolist()


def test_similar_items_are_cosine_neighbours_without_the_item(client, published):
    items = published[2]
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    sims = unit @ unit[3]
    sims[3] = -np.inf
    body = client.get(f"/items/{ITEM_IDS[3]}/similar", params={"k": 4}).json()
    assert [x["item_id"] for x in body["items"]] == ITEM_IDS[np.argsort(-sims)[:4]].tolist()


def test_raw_vectors(client, published):
    _, users, items, _ = published
    np.testing.assert_allclose(client.get(f"/users/{USER_IDS[2]}/vector").json()["vector"], users[2], rtol=1e-6)
    np.testing.assert_allclose(client.get(f"/items/{ITEM_IDS[9]}/vector").json()["vector"], items[9], rtol=1e-6)


@pytest.mark.parametrize("path", ["/users/99/recommendations", "/users/abc/vector", "/items/5/similar",
                                  "/items/999999/vector"])
def test_unknown_ids_answer_404(client, path):
    response = client.get(path)
    assert response.status_code == 404 and "unknown" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/users/100/recommendations?k=0", "/users/100/recommendations?k=ten",
                                  "/users/100/recommendations?k=100000", "/users/100/recommendations?k=50",
                                  "/users/100/recommendations?exclude_seen=maybe", "/items/1000/similar?k=-3",
                                  "/items/1000/similar?k=50"])
def test_bad_parameters_answer_422(client, path):
    assert client.get(path).status_code == 422


def test_reload_switches_to_the_new_version(published):
    root, users, items, _ = published
    store = EmbeddingStore(root)
    with BackgroundServer(create_app(store)) as running, httpx.Client(base_url=running.url) as c:
        before = c.get("/health").json()["version"]
        new = store.publish(users * 2, items, model="toy-2", user_ids=USER_IDS, item_ids=ITEM_IDS, index_kind="flat")
        assert c.get("/health").json()["version"] == before  # still serving what it loaded
        assert c.post("/reload").json() == {"version": new}
        assert c.get("/health").json()["model"] == "toy-2"
        np.testing.assert_allclose(c.get(f"/users/{USER_IDS[0]}/vector").json()["vector"], users[0] * 2, rtol=1e-6)
        store.promote(before)  # leave the module's store as it was
        c.post("/reload")


def test_bounded_load_test_has_no_errors(server):
    paths = [f"/users/{u}/recommendations?k=10" for u in USER_IDS] + [f"/items/{i}/similar?k=10" for i in ITEM_IDS]
    report = load_test(server.url, paths, n_requests=2000, concurrency=4)
    print({k: round(v, 2) for k, v in report.items()})
    assert report["requests"] == 2000 and report["errors"] == 0
    assert 0 < report["p50_ms"] <= report["p90_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["p99_ms"] < 2000


def test_load_test_counts_errors(server):
    report = load_test(server.url, ["/users/nobody/vector"], n_requests=20, concurrency=2)
    assert report["errors"] == 20
    with pytest.raises(ValueError, match="paths is empty"):
        load_test(server.url, [], n_requests=5)


def test_background_server_refuses_public_interfaces(published):
    with pytest.raises(ValueError, match="0.0.0.0"):
        BackgroundServer(create_app(published[0]), host="0.0.0.0")


def test_serve_command_starts_from_one_command(published):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "recsys_lab", "serve", "--store", str(published[0]), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()
                time.sleep(0.2)
        assert body is not None and body["status"] == "ok"
    finally:
        process.terminate()
        process.wait(20)
