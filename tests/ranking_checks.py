"""Compare two top-k answers the way that holds on any CPU: by the scores they reach, not by exact ids.

Two computations of the same ranking (numpy and faiss, a batch and a single
query, two CPUs with other SIMD kernels) may swap items whose scores agree to
the last digits. The right check is that both answers reach the same
reference scores position by position, which is exact equality of ids
whenever there are no near-ties.
"""

import numpy as np


def assert_same_top_k(ids, want_ids, reference_scores, *, atol=1e-5):
    """``ids`` and ``want_ids`` (n_rows, k) pick items with the same ``reference_scores`` (n_rows, n_items)."""
    ids, want_ids = np.atleast_2d(ids), np.atleast_2d(want_ids)
    reference_scores = np.atleast_2d(reference_scores)
    assert ids.shape == want_ids.shape
    rows = np.arange(len(ids))[:, None]
    np.testing.assert_allclose(reference_scores[rows, ids], reference_scores[rows, want_ids], atol=atol, rtol=1e-5)
    assert np.mean(ids == want_ids) >= 0.9, "more than a few near-ties: the rankings really differ"
