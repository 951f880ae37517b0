"""Serve an :class:`~recsys_lab.serving.store.EmbeddingStore` over HTTP with FastAPI.

Endpoints (ids are the raw ids stored with the version, as strings in the URL):

==========================================  ==========================================
``GET /health``                             serving version, model, dimension
``GET /users/{user_id}/recommendations``    top ``k`` items by inner product (faiss), seen items filtered
``GET /items/{item_id}/similar``            top ``k`` items by cosine (faiss), the item itself left out
``GET /users/{user_id}/vector``             the raw user vector
``GET /items/{item_id}/vector``             the raw item vector
``POST /reload``                            switch to the store's current version
==========================================  ==========================================

Unknown ids answer 404, bad parameters 422 (FastAPI's validation error).
The service holds one loaded, checksum-verified version; ``/reload`` swaps
in the new current one in a single reference assignment, so a request sees
either the old version or the new one, never a mix.

Start it with one command::

    python -m recsys_lab serve --store /path/to/store --port 8000

or from Python (tests, notebooks) with :class:`BackgroundServer`.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException, Query

from recsys_lab.serving.store import EmbeddingStore, EmbeddingVersion

__all__ = ["create_app", "BackgroundServer", "free_port", "load_test"]

MAX_K = 1000  # upper bound on k accepted by the API


class _Loaded:
    """A version plus the raw-id -> row lookups the endpoints need."""

    def __init__(self, version: EmbeddingVersion):
        self.version = version
        self.users = {str(raw): row for row, raw in enumerate(version.user_ids.tolist())}
        self.items = {str(raw): row for row, raw in enumerate(version.item_ids.tolist())}
        self.item_ids = version.item_ids.tolist()
        # load (and verify) both indexes now, not on the first request
        self.ip, self.cosine = version.index("ip"), version.index("cosine")

    def user_row(self, user_id: str) -> int:
        if user_id not in self.users:
            raise HTTPException(404, f"unknown user_id {user_id!r} in version {self.version.version}")
        return self.users[user_id]

    def item_row(self, item_id: str) -> int:
        if item_id not in self.items:
            raise HTTPException(404, f"unknown item_id {item_id!r} in version {self.version.version}")
        return self.items[item_id]

    def check_k(self, k: int, taken: int = 0) -> None:
        if k > len(self.item_ids) - taken:
            raise HTTPException(422, f"k={k} is larger than the {len(self.item_ids) - taken} items that can be returned")

    def listing(self, ids: np.ndarray, scores: np.ndarray) -> list[dict]:
        keep = ids >= 0  # faiss pads with -1 when fewer results exist
        return [{"item_id": self.item_ids[i], "score": float(s)} for i, s in zip(ids[keep], scores[keep])]


def create_app(store, *, version: str | None = None) -> FastAPI:
    """A FastAPI app serving ``version`` (default: current) of ``store``.

    Parameters
    ----------
    store : EmbeddingStore or path
    version : str, optional
        Pin one version; ``POST /reload`` then still moves to the current one.

    Examples
    --------
    >>> app = create_app(EmbeddingStore("/tmp/embeddings"))
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    store = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
    app = FastAPI(title="recsys_lab embeddings", description="Recommendations, similar items and raw vectors.")
    app.state.loaded = _Loaded(store.load(version))

    def loaded() -> _Loaded:
        return app.state.loaded  # one read: the whole request uses one version

    @app.get("/health")
    def health():
        meta = loaded().version.metadata
        return {"status": "ok", "version": meta["version"], "model": meta["model"], "dimension": meta["dimension"],
                "created_at": meta["created_at"]}

    @app.get("/users/{user_id}/recommendations")
    def recommendations(user_id: str, k: int = Query(10, ge=1, le=MAX_K), exclude_seen: bool = True):
        state = loaded()
        row = state.user_row(user_id)
        seen = state.version.seen[row] if (exclude_seen and state.version.seen is not None) else None
        state.check_k(k, 0 if seen is None else seen.nnz)
        query = state.version.user_factors[row : row + 1]  # (1, d)
        ids, scores = state.ip.search(query, k, exclude=seen)
        return {"user_id": user_id, "version": state.version.version, "items": state.listing(ids[0], scores[0])}

    @app.get("/items/{item_id}/similar")
    def similar(item_id: str, k: int = Query(10, ge=1, le=MAX_K)):
        state = loaded()
        row = state.item_row(item_id)
        state.check_k(k, 1)
        query = state.version.item_factors[row : row + 1]  # (1, d)
        ids, scores = state.cosine.search(query, k + 1)
        keep = ids[0] != row
        return {"item_id": item_id, "version": state.version.version,
                "items": state.listing(ids[0][keep][:k], scores[0][keep][:k])}

    @app.get("/users/{user_id}/vector")
    def user_vector(user_id: str):
        state = loaded()
        vector = state.version.user_factors[state.user_row(user_id)]
        return {"user_id": user_id, "version": state.version.version, "vector": vector.tolist()}

    @app.get("/items/{item_id}/vector")
    def item_vector(item_id: str):
        state = loaded()
        vector = state.version.item_factors[state.item_row(item_id)]
        return {"item_id": item_id, "version": state.version.version, "vector": vector.tolist()}

    @app.post("/reload")
    def reload():
        app.state.loaded = _Loaded(store.load())
        return {"version": app.state.loaded.version.version}

    return app


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """Run an app under uvicorn in a background thread, on localhost.

    A context manager: entering starts the server and waits until it
    accepts connections; leaving stops it and joins the thread.

    Examples
    --------
    >>> with BackgroundServer(create_app(store)) as server:
    ...     httpx.get(f"{server.url}/health").json()
    """

    def __init__(self, app, *, host: str = "127.0.0.1", port: int | None = None, timeout: float = 20.0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host={host!r}: BackgroundServer only binds to localhost.")
        self.host, self.port, self.timeout = host, port or free_port(host), timeout
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="recsys_lab-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start within {self.timeout} s.")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(self.timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def load_test(base_url: str, paths, *, n_requests: int = 2000, concurrency: int = 4, timeout: float = 10.0) -> dict:
    """Send ``n_requests`` GETs (cycling through ``paths``) and summarise latency.

    Parameters
    ----------
    base_url : str
        For example ``server.url``.
    paths : sequence of str
        Request paths, used round-robin (``"/users/1/recommendations?k=10"``).
    n_requests, concurrency : int
        Total requests, and client threads sending them (each with its own
        keep-alive connection).

    Returns
    -------
    dict
        ``requests``, ``errors`` (non-2xx answers or exceptions), ``seconds``,
        ``requests_per_second`` and latency percentiles ``p50_ms``, ``p90_ms``,
        ``p99_ms``, ``max_ms``.

    Examples
    --------
    >>> load_test(server.url, ["/items/50/similar?k=10"], n_requests=1000)["p99_ms"]
    """
    import httpx

    from recsys_lab.validation import check_positive_int

    n_requests = check_positive_int(n_requests, "n_requests")
    concurrency = check_positive_int(concurrency, "concurrency")
    paths = list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one request path.")
    latencies = np.empty(n_requests)
    errors = [0] * concurrency

    def worker(slot):
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            for i in range(slot, n_requests, concurrency):
                started = time.perf_counter()
                try:
                    ok = client.get(paths[i % len(paths)]).is_success
                except httpx.HTTPError:
                    ok = False
                latencies[i] = time.perf_counter() - started
                errors[slot] += not ok

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    seconds = time.perf_counter() - started
    p50, p90, p99 = (float(p) for p in np.percentile(latencies, [50, 90, 99]) * 1000)
    return {"requests": n_requests, "errors": sum(errors), "seconds": seconds,
            "requests_per_second": n_requests / seconds, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99,
            "max_ms": float(latencies.max() * 1000)}
