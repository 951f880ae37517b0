"""Serve an :class:`~recsys_lab.serving.store.EmbeddingStore` over HTTP with FastAPI.

Endpoints (ids are the raw ids stored with the version, as strings in the URL):

==========================================  ==========================================
``GET /health``                             serving version, model, dimension
``GET /users/{user_id}/recommendations``    top ``k`` items by inner product (faiss), seen items filtered
``GET /items/{item_id}/similar``            top ``k`` items by cosine (faiss), the item itself left out
``GET /users/{user_id}/vector``             the raw user vector
``GET /items/{item_id}/vector``             the raw item vector
``POST /reload``                            admin: switch to the store's current version
==========================================  ==========================================

Unknown ids answer 404, bad parameters 422 (FastAPI's validation error).
The service holds one loaded, checksum-verified version; ``/reload`` swaps
in the new current one in a single reference assignment, so a request sees
either the old version or the new one, never a mix. Reloads run one at a
time (a second one while the first is loading answers 409), so a burst of
reloads never holds more than two versions in memory.

**Admin token.** Reads are open; ``/reload`` changes what is served, so it
needs ``Authorization: Bearer <token>``. The token comes from
``create_app(admin_token=...)``, else the environment variable
``RECSYS_LAB_ADMIN_TOKEN``, else the file named by
``RECSYS_LAB_ADMIN_TOKEN_FILE``. With none of them set the admin endpoints
are disabled and answer 403 saying how to enable them. Make a token with
``python -c "import secrets; print(secrets.token_urlsafe(32))"``.

Start it with one command::

    RECSYS_LAB_ADMIN_TOKEN=... python -m recsys_lab serve --store /path/to/store --port 8000

or from Python (tests, notebooks) with
:class:`recsys_lab.serving.server.BackgroundServer`.
"""

from __future__ import annotations

import hmac
import os
import threading
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, Header, HTTPException, Query

from recsys_lab.serving.store import EmbeddingStore, EmbeddingVersion

__all__ = ["create_app", "read_admin_token", "ADMIN_TOKEN_ENV", "ADMIN_TOKEN_FILE_ENV"]

MAX_K = 1000  # upper bound on k accepted by the API
ADMIN_TOKEN_ENV = "RECSYS_LAB_ADMIN_TOKEN"
ADMIN_TOKEN_FILE_ENV = "RECSYS_LAB_ADMIN_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16
HOW_TO_SET_TOKEN = (f"set {ADMIN_TOKEN_ENV} (or {ADMIN_TOKEN_FILE_ENV}, a file holding it) before starting the "
                    f"service, for example to the output of python -c \"import secrets; "
                    f"print(secrets.token_urlsafe(32))\", and send it as 'Authorization: Bearer <token>'")


def read_admin_token(token: str | None = None, *, token_file=None) -> str | None:
    """The admin token: ``token``, else the content of ``token_file``, else the environment.

    Returns None when no token is configured anywhere (admin endpoints then
    answer 403). Raises ``ValueError`` for a token shorter than 16
    characters or containing spaces.
    """
    if token is None and token_file is None:
        token = os.environ.get(ADMIN_TOKEN_ENV) or None
        token_file = None if token is not None else os.environ.get(ADMIN_TOKEN_FILE_ENV) or None
    if token is None and token_file is not None:
        token = Path(token_file).read_text().strip()
    if token is None:
        return None
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        length = len(token) if isinstance(token, str) else type(token).__name__
        raise ValueError(f"the admin token must be a string of at least {MIN_TOKEN_LENGTH} characters without "
                         f"spaces (got {length}); {HOW_TO_SET_TOKEN}.")
    return token


class _Loaded:
    """A version plus the raw-id -> row lookups the endpoints need."""

    def __init__(self, version: EmbeddingVersion):
        self.version = version
        self.users = {str(raw): row for row, raw in enumerate(version.user_ids.tolist())}
        self.items = {str(raw): row for row, raw in enumerate(version.item_ids.tolist())}
        self.item_ids = version.item_ids.tolist()
        # load (and verify) both indexes now, not on the first request; exact ones when none were stored
        self.ip = version.index("ip", build_if_missing=True)
        self.cosine = version.index("cosine", build_if_missing=True)

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


def create_app(store, *, version: str | None = None, admin_token: str | None = None) -> FastAPI:
    """A FastAPI app serving ``version`` (default: current) of ``store``.

    Parameters
    ----------
    store : EmbeddingStore or path
    version : str, optional
        Pin one version; ``POST /reload`` then still moves to the current one.
    admin_token : str, optional
        The token ``POST /reload`` requires; default: read from the
        environment (see the module docstring); none: admin endpoints answer 403.

    Examples
    --------
    >>> app = create_app(EmbeddingStore("/tmp/embeddings"), admin_token=secrets.token_urlsafe(32))
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    store = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
    token = read_admin_token(admin_token)
    app = FastAPI(title="recsys_lab embeddings", description="Recommendations, similar items and raw vectors.")
    app.state.loaded = _Loaded(store.load(version))
    reloading = threading.Lock()

    def loaded() -> _Loaded:
        return app.state.loaded  # one read: the whole request uses one version

    def require_admin(authorization: str | None = Header(None)) -> None:
        if token is None:
            raise HTTPException(403, f"admin endpoints are disabled: no admin token is configured; {HOW_TO_SET_TOKEN}.")
        scheme, _, sent = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            raise HTTPException(401, "this endpoint needs the admin token: send 'Authorization: Bearer <token>'.",
                                headers={"WWW-Authenticate": "Bearer"})

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

    @app.post("/reload", dependencies=[Depends(require_admin)])
    def reload():
        if not reloading.acquire(blocking=False):
            raise HTTPException(409, "a reload is already running; retry once it has finished.")
        try:
            serving = loaded().version.version
            try:
                name = store.current()
                if name == serving:  # versions are immutable: nothing to do
                    return {"version": name, "reloaded": False}
                app.state.loaded = _Loaded(store.load(name))
            except (KeyError, OSError, ValueError) as error:
                raise HTTPException(500, f"reload failed, still serving {serving}: {type(error).__name__}: "
                                         f"{error}") from error
            return {"version": name, "reloaded": True}
        finally:
            reloading.release()

    return app
