"""Dot, cosine, Euclidean and top-k search: values, shapes, rankings, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsys_lab.analysis.similarity import cosine, dot, euclidean, normalize, scale_by_norm, similarity, top_k_similar

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


def test_allowed_limits_the_neighbours():
    vectors = np.random.default_rng(2).normal(size=(12, 3))
    allowed = np.arange(12) % 3 != 0                              # items 0, 3, 6, 9 may not be returned
    for measure in ("dot", "cosine", "euclidean"):
        ids, values = top_k_similar(vectors[:5], vectors, 4, measure=measure, exclude=np.arange(5), allowed=allowed)
        assert allowed[ids].all() and not np.any(ids == np.arange(5)[:, None])
        # the same as searching the allowed rows only, mapped back to their indices
        rows = np.flatnonzero(allowed)
        for q in range(5):
            keep = rows[rows != q]
            sub_ids, sub_values = top_k_similar(vectors[q], vectors[keep], 4, measure=measure)
            np.testing.assert_array_equal(ids[q], keep[sub_ids])
            np.testing.assert_allclose(values[q], sub_values)
    # every candidate allowed is the default
    np.testing.assert_array_equal(top_k_similar(vectors[0], vectors, 3, allowed=np.ones(12, bool))[0],
                                  top_k_similar(vectors[0], vectors, 3)[0])


def test_allowed_counts_the_excluded_item_only_when_it_is_allowed():
    allowed = np.array([False, True, True])
    # the query's own item 0 is not allowed anyway: both allowed items can be returned
    assert sorted(top_k_similar(QUERY, CANDIDATES, 2, exclude=0, allowed=allowed)[0]) == [1, 2]
    with pytest.raises(ValueError, match="k=2 is larger than the 1 candidates"):
        top_k_similar(QUERY, CANDIDATES, 2, exclude=1, allowed=allowed)


def test_scale_by_norm_moves_from_dot_to_cosine():
    vectors = np.random.default_rng(3).normal(size=(6, 4)) * np.arange(1, 7)[:, None]
    np.testing.assert_allclose(scale_by_norm(vectors, 0), vectors)
    np.testing.assert_allclose(scale_by_norm(vectors, 1.0), normalize(vectors))
    half = scale_by_norm(vectors, 0.5)
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), np.sqrt(np.linalg.norm(vectors, axis=1)))
    np.testing.assert_allclose(cosine(half, vectors), cosine(vectors, vectors), atol=1e-12)   # directions kept
    np.testing.assert_array_equal(scale_by_norm([[0.0, 0.0], [3.0, 4.0]], 0.5)[0], [0.0, 0.0])
    assert scale_by_norm([3.0, 4.0], 0.5).shape == (2,)


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
        (lambda: top_k_similar(QUERY, CANDIDATES, 1, allowed=[1, 0, 1]), ValueError, "boolean mask of shape \\(3,\\)"),
        (lambda: top_k_similar(QUERY, CANDIDATES, 1, allowed=np.ones(2, bool)), ValueError, "got dtype bool and shape \\(2,\\)"),
        (lambda: top_k_similar(QUERY, CANDIDATES, 2, allowed=np.array([True, False, False])), ValueError,
         "k=2 is larger than the 1 candidates"),
        (lambda: scale_by_norm(CANDIDATES, 1.5), ValueError, "beta=1.5 must be a number in \\[0, 1\\]"),
        (lambda: scale_by_norm(CANDIDATES, -0.1), ValueError, "beta=-0.1"),
        (lambda: scale_by_norm(CANDIDATES, True), ValueError, "beta=True"),
        (lambda: scale_by_norm([[np.inf, 1.0]], 0.5), ValueError, "vectors contains NaN"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
