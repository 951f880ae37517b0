"""Features built from outside the interaction matrix: text embeddings, history aggregates, crossed fields.

Import by module (``recsys_lab.features.text`` needs transformers, the others only numpy and pandas)."""
