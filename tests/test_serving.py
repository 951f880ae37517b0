"""The HTTP service, exercised through a real client on 127.0.0.1."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("fastapi")
pytest.importorskip("faiss")
httpx = pytest.importorskip("httpx")

from ranking_checks import assert_same_top_k  # noqa: E402
from recsys_lab.serving.server import BackgroundServer, free_port, is_loopback, load_test  # noqa: E402
from recsys_lab.serving.service import ADMIN_TOKEN_ENV, create_app, read_admin_token  # noqa: E402
from recsys_lab.serving.store import EmbeddingStore  # noqa: E402

N_USERS, N_ITEMS, DIM = 20, 50, 8
TOKEN = "test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
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
    with BackgroundServer(create_app(store, admin_token=TOKEN)) as running, httpx.Client(base_url=running.url) as c:
        before = c.get("/health").json()["version"]
        new = store.publish(users * 2, items, model="toy-2", user_ids=USER_IDS, item_ids=ITEM_IDS, index_kind="flat")
        assert c.get("/health").json()["version"] == before  # still serving what it loaded
        assert c.post("/reload", headers=ADMIN).json() == {"version": new, "reloaded": True}
        assert c.post("/reload", headers=ADMIN).json() == {"version": new, "reloaded": False}
        assert c.get("/health").json()["model"] == "toy-2"
        np.testing.assert_allclose(c.get(f"/users/{USER_IDS[0]}/vector").json()["vector"], users[0] * 2, rtol=1e-6)
        store.promote(before)  # leave the module's store as it was
        c.post("/reload", headers=ADMIN)


def test_bounded_load_test_has_no_errors(server):
    paths = [f"/users/{u}/recommendations?k=10" for u in USER_IDS] + [f"/items/{i}/similar?k=10" for i in ITEM_IDS]
    report = load_test(server.url, paths, n_requests=400, concurrency=4)
    print({k: round(v, 2) for k, v in report.items()})
    assert report["requests"] == 400 and report["errors"] == 0 and report["invalid"] == 0
    assert 0 < report["p50_ms"] <= report["p90_ms"] <= report["p99_ms"] <= report["max_ms"]


def test_load_test_counts_errors(server):
    report = load_test(server.url, ["/users/nobody/vector"], n_requests=20, concurrency=2)
    assert report["errors"] == 20
    with pytest.raises(ValueError, match="paths is empty"):
        load_test(server.url, [], n_requests=5)


def test_background_server_refuses_public_interfaces(published):
    with pytest.raises(ValueError, match="0.0.0.0"):
        BackgroundServer(create_app(published[0]), host="0.0.0.0")


def wait_for_health(port, process, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.TransportError:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.2)
    raise AssertionError(f"the service did not answer on port {port} within {deadline_s} s")


def test_serve_command_starts_from_one_command(published):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "recsys_lab", "serve", "--store", str(published[0]), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, ADMIN_TOKEN_ENV: TOKEN},
    )
    try:
        assert wait_for_health(port, process)["status"] == "ok"
        assert httpx.post(f"http://127.0.0.1:{port}/reload", timeout=10).status_code == 401
        assert httpx.post(f"http://127.0.0.1:{port}/reload", headers=ADMIN, timeout=10).json()["version"] == "v0001"
    finally:
        process.terminate()
        process.wait(20)


def test_serve_command_warns_before_binding_a_public_interface(published):
    """192.0.2.1 (TEST-NET-1) is never a local address: the bind fails, after the warning, without any network."""
    done = subprocess.run(
        [sys.executable, "-m", "recsys_lab", "serve", "--store", str(published[0]), "--host", "192.0.2.1",
         "--port", str(free_port())], capture_output=True, text=True, timeout=60,
    )
    assert "reachable from other machines" in done.stderr and "no authentication" in done.stderr
    assert done.returncode != 0
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


# ------------------------------------------------------------------ admin token
def test_reload_is_refused_without_a_configured_token(published, monkeypatch):
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    monkeypatch.delenv("RECSYS_LAB_ADMIN_TOKEN_FILE", raising=False)
    with BackgroundServer(create_app(published[0])) as running:
        response = httpx.post(f"{running.url}/reload", headers=ADMIN, timeout=10)
        assert response.status_code == 403 and ADMIN_TOKEN_ENV in response.json()["detail"]
        assert httpx.get(f"{running.url}/users/{USER_IDS[0]}/vector", timeout=10).status_code == 200  # reads stay open


@pytest.mark.parametrize("source", ["argument", "environment", "file"])
def test_reload_needs_the_right_token(published, monkeypatch, tmp_path, source):
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    kwargs = {}
    if source == "argument":
        kwargs["admin_token"] = TOKEN
    elif source == "environment":
        monkeypatch.setenv(ADMIN_TOKEN_ENV, TOKEN)
    else:
        (tmp_path / "token").write_text(TOKEN + "\n")
        monkeypatch.setenv("RECSYS_LAB_ADMIN_TOKEN_FILE", str(tmp_path / "token"))
    with BackgroundServer(create_app(published[0], **kwargs)) as running:
        url = f"{running.url}/reload"
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}):
            response = httpx.post(url, headers=headers, timeout=10)
            assert response.status_code == 401 and "Bearer" in response.json()["detail"]
        assert httpx.post(url, headers=ADMIN, timeout=10).status_code == 200


def test_weak_tokens_are_refused():
    for weak in ("short", "sixteen chars ok", ""):
        with pytest.raises(ValueError, match="at least 16 characters without spaces"):
            read_admin_token(weak)
    assert read_admin_token(TOKEN) == TOKEN


# ------------------------------------------------------------------ reloads, missing indexes
class CountingStore(EmbeddingStore):
    """The real store; ``load`` also records how many loads overlap, and takes its time."""

    def __init__(self, root):
        super().__init__(root)
        self.active, self.peak, self.lock = 0, 0, threading.Lock()

    def load(self, version=None):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(0.5)  # a large version takes a while to read and verify
            return super().load(version)
        finally:
            with self.lock:
                self.active -= 1


def test_concurrent_reloads_run_one_at_a_time(published, tmp_path):
    _, users, items, _ = published
    store = CountingStore(tmp_path)
    store.publish(users, items, model="toy", user_ids=USER_IDS, item_ids=ITEM_IDS)
    with BackgroundServer(create_app(store, admin_token=TOKEN)) as running:
        store.peak = 0
        new = store.publish(-users, items, model="toy-2", user_ids=USER_IDS, item_ids=ITEM_IDS)
        start = threading.Barrier(8)

        def reload(_):
            start.wait(10)
            return httpx.post(f"{running.url}/reload", headers=ADMIN, timeout=30)

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(reload, range(8)))
        codes = sorted(r.status_code for r in responses)
        assert store.peak == 1, f"{store.peak} versions were loaded at once"
        assert set(codes) <= {200, 409} and codes.count(200) >= 1
        assert all("already running" in r.json()["detail"] for r in responses if r.status_code == 409)
        assert httpx.get(f"{running.url}/health").json()["version"] == new


def test_a_version_published_without_indexes_is_served(published, tmp_path):
    _, users, items, seen = published
    store = EmbeddingStore(tmp_path)
    store.publish(users, items, model="toy", user_ids=USER_IDS, item_ids=ITEM_IDS, seen=seen, index_kind=None)
    with BackgroundServer(create_app(store, admin_token=TOKEN)) as running, \
            httpx.Client(base_url=running.url, timeout=10) as c:
        body = c.get(f"/users/{USER_IDS[4]}/recommendations", params={"k": 5}).json()
        scores = users[4] @ items.T
        scores[seen[4].indices] = -np.inf
        served = np.searchsorted(ITEM_IDS, [x["item_id"] for x in body["items"]])
        assert_same_top_k(served, np.argsort(-scores)[:5], scores)
        assert c.get(f"/items/{ITEM_IDS[0]}/similar", params={"k": 3}).status_code == 200
        store.publish(users * 3, items, model="toy-3", user_ids=USER_IDS, item_ids=ITEM_IDS, index_kind=None)
        assert c.post("/reload", headers=ADMIN).json()["reloaded"] is True
        assert c.get("/health").json()["model"] == "toy-3"


def test_a_failed_reload_keeps_serving_the_old_version(published, tmp_path):
    _, users, items, _ = published
    store = EmbeddingStore(tmp_path)
    store.publish(users, items, model="toy", user_ids=USER_IDS, item_ids=ITEM_IDS)
    with BackgroundServer(create_app(store, admin_token=TOKEN)) as running:
        bad = store.publish(users * 2, items, model="toy", user_ids=USER_IDS, item_ids=ITEM_IDS)
        (tmp_path / "versions" / bad / "user_factors.npy").write_bytes(b"garbage")
        response = httpx.post(f"{running.url}/reload", headers=ADMIN, timeout=10)
        assert response.status_code == 500 and "ChecksumError" in response.json()["detail"]
        assert "still serving v0001" in response.json()["detail"]
        assert httpx.get(f"{running.url}/health").json()["version"] == "v0001"


# ------------------------------------------------------------------ slow clients and load
def closed_within(sock, seconds) -> bool:
    """True when the server closes ``sock`` within ``seconds`` (it never answers a half request)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_and_silent_clients_are_disconnected(published):
    with BackgroundServer(create_app(published[0]), request_timeout=1.0) as running:
        address = (running.host, running.port)
        silent = [socket.create_connection(address, timeout=10) for _ in range(40)]
        half_sent = [socket.create_connection(address, timeout=10) for _ in range(40)]
        for sock in half_sent:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line that ends it
        trickle = socket.create_connection(address, timeout=10)  # one more byte every 0.2 s, never finishing
        trickle.sendall(b"GET /health HTTP/1.1\r\n")
        try:
            assert httpx.get(f"{running.url}/health", timeout=10).status_code == 200  # others are served
            closed, deadline = False, time.monotonic() + 6
            while not closed and time.monotonic() < deadline:
                try:
                    trickle.sendall(b"X")
                except OSError:
                    break
                closed = closed_within(trickle, 0.2)
            assert time.monotonic() < deadline, "the trickling client was never disconnected"
            still_open = [s for s in silent + half_sent if not closed_within(s, 3)]
            assert still_open == [], f"{len(still_open)} of 80 slow connections are still open"
        finally:
            for sock in silent + half_sent + [trickle]:
                sock.close()


def test_load_with_a_version_switch_has_no_errors_and_no_mixed_answers(published, tmp_path):
    """8 clients for 5 s; half way through, a new version is promoted and reloaded."""
    _, users, items, seen = published
    store = EmbeddingStore(tmp_path)
    old = store.publish(users, items, model="toy", user_ids=USER_IDS, item_ids=ITEM_IDS, seen=seen)
    new = store.publish(-users, items, model="toy", user_ids=USER_IDS, item_ids=ITEM_IDS, seen=seen, promote=False)
    expected, seen_versions = {}, Counter()
    for name, vectors in ((old, users), (new, -users)):  # every answer differs between the two versions
        for row, user in enumerate(USER_IDS):
            scores = vectors[row] @ items.T
            scores[seen[row].indices] = -np.inf
            expected[name, f"/users/{user}/recommendations?k=5"] = scores  # judged by the scores reached
            expected[name, f"/users/{user}/vector"] = vectors[row]
    paths = sorted({path for _, path in expected})

    def consistent(path, body):
        """The answer is what the version it names would give: its vector, or top-5 scores under its vectors."""
        seen_versions[body["version"]] += 1
        want = expected[body["version"], path]
        if path.endswith("/vector"):
            return np.allclose(body["vector"], want, rtol=1e-6)
        served = np.searchsorted(ITEM_IDS, [x["item_id"] for x in body["items"]])
        return np.allclose(want[served], np.sort(want)[::-1][:5], rtol=1e-5, atol=1e-5) and \
            np.allclose([x["score"] for x in body["items"]], want[served], rtol=1e-5, atol=1e-5)

    with BackgroundServer(create_app(store, admin_token=TOKEN)) as running:
        switched = []

        def switch():
            time.sleep(2.5)
            store.promote(new)
            switched.append(httpx.post(f"{running.url}/reload", headers=ADMIN, timeout=30).json())

        switcher = threading.Thread(target=switch)
        switcher.start()
        report = load_test(running.url, paths, duration=5.0, concurrency=8, check=consistent)
        switcher.join(30)
    print(f"{report['requests']} requests, {report['requests_per_second']:.0f}/s, p50 {report['p50_ms']:.1f} ms, "
          f"p99 {report['p99_ms']:.1f} ms, answers per version {dict(seen_versions)}")
    assert switched == [{"version": new, "reloaded": True}]
    assert report["errors"] == 0 and report["invalid"] == 0
    assert seen_versions[old] > 0 and seen_versions[new] > 0
