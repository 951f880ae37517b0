"""Embeddings in production: a versioned on-disk store and an HTTP service for nearest neighbours.

Import by module: ``recsys_lab.serving.store`` (the versioned store; numpy, faiss for indexes),
``recsys_lab.serving.version`` (what one version holds and how it is checked),
``recsys_lab.serving.service`` (the FastAPI app) and ``recsys_lab.serving.server`` (uvicorn settings,
a background server and a load test)."""
