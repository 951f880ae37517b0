"""Run the HTTP service under uvicorn, safely, and measure it.

* :func:`server_config`: uvicorn settings for the service. Besides uvicorn's
  keep-alive timeout (an idle connection is closed after 5 s), every request
  gets a deadline: a client that has not sent a complete request within
  ``request_timeout`` seconds of connecting (or of its previous answer) is
  disconnected. Without it, a few hundred clients that open a connection and
  send half a request (a "slowloris") hold it open forever. Binding anything
  but a loopback address logs a warning: reads have no authentication.
* :class:`BackgroundServer`: the same server in a background thread on
  localhost, for tests and notebooks.
* :func:`load_test`: many concurrent clients, latency percentiles, errors,
  and (with ``check``) answers that contradict the version they name.

Examples
--------
>>> with BackgroundServer(create_app(store, admin_token=token)) as server:
...     report = load_test(server.url, ["/items/50/similar?k=10"], duration=5, concurrency=8)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import h11
import numpy as np
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["server_config", "is_loopback", "BackgroundServer", "free_port", "load_test", "REQUEST_TIMEOUT"]

logger = logging.getLogger("recsys_lab")

REQUEST_TIMEOUT = 10.0  # seconds a client has to send one whole request
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection stays open


class RequestDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol plus a deadline for receiving each request."""

    request_timeout = REQUEST_TIMEOUT
    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.arm_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # the whole request is in
            self.disarm_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.arm_deadline()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc) -> None:
        self.disarm_deadline()
        super().connection_lost(exc)

    def arm_deadline(self) -> None:
        self.disarm_deadline()
        self.deadline = self.loop.call_later(self.request_timeout, self.close_if_incomplete)

    def disarm_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def close_if_incomplete(self) -> None:
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            logger.debug("closing a connection that sent no complete request in %s s", self.request_timeout)
            self.transport.close()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def server_config(app, *, host: str = "127.0.0.1", port: int = 8000, request_timeout: float = REQUEST_TIMEOUT,
                  log_level: str = "warning") -> uvicorn.Config:
    """A ``uvicorn.Config`` for ``app`` with timeouts that close slow and idle connections.

    Examples
    --------
    >>> uvicorn.Server(server_config(create_app(store), port=8000)).run()
    """
    if not request_timeout > 0:
        raise ValueError(f"request_timeout={request_timeout} must be a positive number of seconds.")
    if not is_loopback(host):
        logger.warning("binding %s: the service will be reachable from other machines, and its read endpoints "
                       "have no authentication. Bind 127.0.0.1 behind a reverse proxy that authenticates, "
                       "unless every vector and recommendation may be public.", host)
    protocol = type("RequestDeadlineProtocol", (RequestDeadlineProtocol,), {"request_timeout": request_timeout})
    return uvicorn.Config(app, host=host, port=port, http=protocol, timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
                          timeout_graceful_shutdown=5, log_level=log_level, access_log=False)


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

    def __init__(self, app, *, host: str = "127.0.0.1", port: int | None = None, timeout: float = 20.0,
                 request_timeout: float = REQUEST_TIMEOUT):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host={host!r}: BackgroundServer only binds to localhost.")
        self.host, self.port, self.timeout = host, port or free_port(host), timeout
        self._server = uvicorn.Server(server_config(app, host=self.host, port=self.port,
                                                    request_timeout=request_timeout))
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


def load_test(base_url: str, paths, *, n_requests: int = 2000, duration: float | None = None,
              concurrency: int = 4, timeout: float = 10.0, check=None) -> dict:
    """Send GETs (cycling through ``paths``) from concurrent clients and summarise them.

    Parameters
    ----------
    base_url : str
        For example ``server.url``.
    paths : sequence of str
        Request paths, used round-robin (``"/users/1/recommendations?k=10"``).
    n_requests : int
        Total requests (ignored when ``duration`` is given).
    duration : float, optional
        Send requests for this many seconds instead.
    concurrency : int
        Client threads, each with its own keep-alive connection.
    check : callable, optional
        ``check(path, body) -> bool`` for each successful answer (``body`` is
        its JSON); answers it rejects count as ``invalid``.

    Returns
    -------
    dict
        ``requests``, ``errors`` (non-2xx answers or exceptions), ``invalid``,
        ``seconds``, ``requests_per_second`` and latency percentiles
        ``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms``.

    Examples
    --------
    >>> load_test(server.url, ["/items/50/similar?k=10"], n_requests=1000)["p99_ms"]
    """
    import httpx

    from recsys_lab.validation import check_nonnegative_float, check_positive_int

    concurrency = check_positive_int(concurrency, "concurrency")
    if duration is None:
        n_requests = check_positive_int(n_requests, "n_requests")
    else:
        duration = check_nonnegative_float(duration, "duration", strictly_positive=True)
    paths = list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one request path.")
    latencies = [[] for _ in range(concurrency)]
    errors, invalid = [0] * concurrency, [0] * concurrency
    started = time.perf_counter()

    def more(i, slot):  # every client sends at least one request
        return i < n_requests if duration is None else i == slot or time.perf_counter() - started < duration

    def worker(slot):
        i = slot
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            while more(i, slot):
                path = paths[i % len(paths)]
                sent = time.perf_counter()
                try:
                    response = client.get(path)
                    ok = response.is_success
                    if ok and check is not None and not check(path, response.json()):
                        invalid[slot] += 1
                except (httpx.HTTPError, ValueError):  # no answer, or an answer that is not JSON
                    ok = False
                latencies[slot].append(time.perf_counter() - sent)
                errors[slot] += not ok
                i += concurrency

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    seconds = time.perf_counter() - started
    all_latencies = np.concatenate([np.asarray(x, dtype=float) for x in latencies])
    p50, p90, p99 = (float(p) for p in np.percentile(all_latencies, [50, 90, 99]) * 1000)
    return {"requests": len(all_latencies), "errors": sum(errors), "invalid": sum(invalid), "seconds": seconds,
            "requests_per_second": len(all_latencies) / seconds, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99,
            "max_ms": float(all_latencies.max() * 1000)}
