"""Window co-occurrence, shifted PPMI and the SVD item vectors: hand-checked values, seeds and bad inputs."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.features.cooccurrence import shifted_ppmi, sppmi_item_vectors, svd_item_vectors, window_cooccurrence

HISTORIES = [np.array([0, 1, 2, 3]), np.array([2, 0]), np.array([4])]


def test_window_counts_every_pair_within_the_window_in_both_directions():
    counts = window_cooccurrence(HISTORIES, 6, window=1).toarray()
    expected = np.zeros((6, 6))
    for a, b in [(0, 1), (1, 2), (2, 3), (2, 0)]:          # neighbours one step apart
        expected[a, b] += 1
        expected[b, a] += 1
    np.testing.assert_allclose(counts, expected)
    wide = window_cooccurrence(HISTORIES, 6, window=10).toarray()
    assert wide[0, 3] == pytest.approx(1.0) and wide[0, 2] == pytest.approx(2.0)   # 0..3 in one history; 0,2 in two
    assert not wide[4].any() and not wide[5].any()        # a history of one item and an absent item pair with nothing
    np.testing.assert_allclose(wide, wide.T)


def test_shrink_windows_weights_a_pair_by_its_chance_of_falling_in_the_window():
    counts = window_cooccurrence([np.array([0, 1, 2])], 3, window=2, shrink_windows=True).toarray()
    assert counts[0, 1] == pytest.approx(1.0)             # one step apart: always inside
    assert counts[0, 2] == pytest.approx(0.5)             # two steps: inside when the window drawn is 2 of {1, 2}


def test_window_counts_accept_interactions_and_match_the_skipgram_pairs(small_log):
    sequences = small_log.sequences()
    counts = window_cooccurrence(small_log, small_log.n_items, window=2).toarray()
    expected = np.zeros_like(counts)
    for s in sequences:
        for i in range(len(s)):
            for j in range(max(0, i - 2), min(len(s), i + 3)):
                if j != i:
                    expected[s[i], s[j]] += 1
    np.testing.assert_allclose(counts, expected)


def test_shifted_ppmi_matches_the_formula():
    counts = window_cooccurrence(HISTORIES, 6, window=10).toarray()
    for negative, alpha in [(1.0, 1.0), (5.0, 0.75), (2.0, 0.0)]:
        smoothed = np.where(counts.sum(axis=0) > 0, counts.sum(axis=0) ** alpha, 0.0)
        context = smoothed / smoothed.sum()
        expected = np.zeros_like(counts)
        for w, c in zip(*np.nonzero(counts)):
            value = np.log(counts[w, c] / (counts[w].sum() * context[c])) - np.log(negative)
            expected[w, c] = max(value, 0.0)
        result = shifted_ppmi(counts, negative=negative, ns_exponent=alpha)
        assert sp.issparse(result) and result.format == "csr"
        np.testing.assert_allclose(result.toarray(), expected, atol=1e-12)


def test_a_larger_shift_keeps_fewer_pairs_and_pmi_one_is_symmetric():
    counts = window_cooccurrence(HISTORIES, 6, window=10)
    plain, shifted = shifted_ppmi(counts, negative=1.0), shifted_ppmi(counts, negative=3.0)
    assert shifted.nnz < plain.nnz and shifted.min() >= 0
    np.testing.assert_allclose(plain.toarray(), plain.toarray().T, atol=1e-12)


def test_svd_item_vectors_reconstruct_a_low_rank_symmetric_matrix():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(30, 3))
    matrix = basis @ basis.T                                       # symmetric, positive semidefinite, rank 3
    vectors = svd_item_vectors(matrix, 3, random_state=0)          # U sqrt(S)
    assert vectors.shape == (30, 3) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors @ vectors.T, matrix, atol=1e-3 * np.abs(matrix).max())
    norms = np.linalg.norm(svd_item_vectors(matrix, 3, eigen_power=0.0, random_state=0), axis=0)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)              # p = 0: the singular vectors themselves


def test_sppmi_item_vectors_are_seeded_and_zero_for_absent_items(ml_split):
    train = ml_split.train
    sequences = train.sequences()
    a = sppmi_item_vectors(sequences, train.n_items, factors=8, window=5, negative=5, random_state=0)
    b = sppmi_item_vectors(sequences, train.n_items, factors=8, window=5, negative=5, random_state=0)
    assert a.shape == (train.n_items, 8)
    np.testing.assert_array_equal(a, b)
    absent = np.bincount(np.concatenate(sequences), minlength=train.n_items) == 0
    assert absent.any() and not a[absent].any()
    c = sppmi_item_vectors(sequences, train.n_items, factors=8, window=5, negative=5, random_state=1)
    np.testing.assert_allclose(c @ c.T, a @ a.T, atol=1e-4 * np.abs(a @ a.T).max())   # another start, the same fit


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: window_cooccurrence(HISTORIES, 6, window=0), "window=0"),
        (lambda: window_cooccurrence(HISTORIES, 4, window=2), "item index 4"),
        (lambda: window_cooccurrence([np.array([0, -1])], 4), "item index -1"),
        (lambda: window_cooccurrence([np.array([[0, 1]])], 4), "1-D array of item indices"),
        (lambda: window_cooccurrence([np.array([0.5, 1.0])], 4), "1-D array of item indices"),
        (lambda: shifted_ppmi(np.ones((2, 3))), "square"),
        (lambda: shifted_ppmi(np.zeros((3, 3))), "no co-occurrence"),
        (lambda: shifted_ppmi(-np.ones((3, 3))), "non-negative"),
        (lambda: shifted_ppmi(np.ones((3, 3)), negative=0), "negative=0"),
        (lambda: shifted_ppmi(np.ones((3, 3)), ns_exponent=float("nan")), "ns_exponent=nan"),
        (lambda: svd_item_vectors(np.eye(4), 4), "factors=4"),
        (lambda: svd_item_vectors(np.eye(4), 2, eigen_power=1.5), "eigen_power=1.5"),
        (lambda: svd_item_vectors(np.zeros((4, 4)), 2), "at least one finite non-zero"),
    ],
)
def test_bad_inputs_name_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()
