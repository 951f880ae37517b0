"""Embeddings in production: a versioned on-disk store and an HTTP service for nearest neighbours.

Import by module: ``recsys_lab.serving.store`` (numpy; faiss for indexes), ``recsys_lab.serving.service`` (FastAPI)."""
