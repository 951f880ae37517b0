"""Dot, cosine, Euclidean and top-k search: values, shapes, rankings, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsys_lab.analysis.similarity import cosine, dot, euclidean, normalize, similarity, top_k_similar

QUERY = np.array([1.0, 1.0])
CANDIDATES = np.array([[4.0, 1.0], [1.2, 1.0], [0.3, 0.3]])  # long off-angle, near, short aligned


def test_values_against_definitions():
    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(4, 5)), rng.normal(size=(6, 5))
    np.testing.assert_allclose(dot(q, c), [[a @ b for b in c] for a in q])
    np.testing.assert_allclose(cosine(q, c), [[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in c] for a in q])
    np.testing.assert_allclose(euclidean(q, c), [[np.linalg.norm(a - b) for b in c] for a in q], atol=1e-12)
    assert dot(q[0], c).shape == (6,)
    np.testing.assert_allclose(similarity(q, c, "dot"), dot(q, c))


def test_measures_rank_the_same_candidates_differently():
    assert list(top_k_similar(QUERY, CANDIDATES, 3, measure="dot")[0]) == [0, 1, 2]
    assert list(top_k_similar(QUERY, CANDIDATES, 3, measure="cosine")[0]) == [2, 1, 0]
    assert list(top_k_similar(QUERY, CANDIDATES, 3, measure="euclidean")[0]) == [1, 2, 0]


def test_euclidean_returns_ascending_distances():
    ids, dist = top_k_similar(QUERY, CANDIDATES, 3, measure="euclidean")
    assert np.all(np.diff(dist) >= 0)
    np.testing.assert_allclose(dist, euclidean(QUERY, CANDIDATES)[ids])


def test_exclude_and_batch_shapes():
    vectors = np.random.default_rng(1).normal(size=(10, 3))
    ids, sims = top_k_similar(vectors[:4], vectors, 3, measure="cosine", exclude=np.arange(4))
    assert ids.shape == sims.shape == (4, 3)
    assert not np.any(ids == np.arange(4)[:, None])
    # without exclusion each vector is its own nearest neighbour
    assert list(top_k_similar(vectors, vectors, 1, measure="cosine")[0][:, 0]) == list(range(10))


def test_zero_vector_has_zero_cosine():
    np.testing.assert_array_equal(cosine([0.0, 0.0], [[1.0, 2.0]]), [0.0])
    np.testing.assert_array_equal(normalize([[0.0, 0.0]]), [[0.0, 0.0]])


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (5, 4), elements=st.floats(-10, 10)).filter(lambda a: np.all(np.linalg.norm(a, axis=1) > 1e-3)))
def test_unit_vectors_make_all_three_agree(vectors):
    unit = normalize(vectors)
    np.testing.assert_allclose(dot(unit, unit), cosine(unit, unit), atol=1e-9)
    np.testing.assert_allclose(euclidean(unit, unit) ** 2, 2 - 2 * cosine(unit, unit), atol=1e-9)
    assert np.all(np.abs(cosine(vectors, vectors)) <= 1.0)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: dot([[1.0, 2.0]], [[1.0, 2.0, 3.0]]), ValueError, "dimension 2 but candidates 3"),
        (lambda: cosine([], [[1.0]]), ValueError, "non-empty"),
        (lambda: euclidean([[np.nan, 1.0]], [[1.0, 1.0]]), ValueError, "NaN"),
        (lambda: similarity(QUERY, CANDIDATES, "manhattan"), ValueError, "measure='manhattan'"),
        (lambda: top_k_similar(QUERY, CANDIDATES, 4), ValueError, "k=4 is larger than the 3"),
        (lambda: top_k_similar(QUERY, CANDIDATES, 3, exclude=0), ValueError, "k=3 is larger than the 2"),
        (lambda: top_k_similar(QUERY, CANDIDATES, 0), ValueError, "k=0"),
        (lambda: top_k_similar(QUERY, CANDIDATES, 1, exclude=7), ValueError, "exclude=7"),
        (lambda: dot(QUERY, QUERY), ValueError, "candidates must be 2-D"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
