import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsys_lab.evaluation import (
    bootstrap_ci, hit_rate, mae, ndcg, paired_bootstrap_ci, recall_at_k, reciprocal_rank, rmse, target_ranks, top_k,
    verdict,
)


def brute_force_rank(scores, target, excluded):
    """Sort the competing items by score, the target after every item it ties with, and find it."""
    competing = [i for i in range(len(scores)) if i == target or i not in excluded]
    order = sorted(competing, key=lambda i: (-scores[i], i == target))
    return order.index(target) + 1


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, (5, 12), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0])),
    arrays(np.int64, 5, elements=st.integers(0, 11)),
    arrays(np.bool_, (5, 12)),
)
def test_target_ranks_match_brute_force(scores, targets, mask):
    exclude = sp.csr_matrix(mask.astype(np.float32))
    ranks = target_ranks(scores, targets, exclude)
    for row in range(5):
        assert ranks[row] == brute_force_rank(scores[row], targets[row], set(np.flatnonzero(mask[row])))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (4, 9), elements=st.sampled_from([0.0, 0.1, 0.7, 3.0])), st.integers(1, 9))
def test_top_k_matches_a_full_sort(scores, k):
    expected = [sorted(range(9), key=lambda i: (-row[i], i))[:k] for row in scores]
    np.testing.assert_array_equal(top_k(scores, k), expected)


def test_hand_computed_metrics():
    ranks = np.array([1, 3, 11])
    np.testing.assert_allclose(hit_rate(ranks, 10), [1, 1, 0])
    np.testing.assert_allclose(ndcg(ranks, 10), [1.0, 0.5, 0.0])  # 1/log2(4) = 0.5
    np.testing.assert_allclose(reciprocal_rank(ranks), [1, 1 / 3, 1 / 11])
    scores = np.array([[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.3, 0.4]])
    relevant = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    recall = recall_at_k(scores, relevant, k=2, exclude=exclude)  # top 2 after excluding 0: items 1, 3
    assert recall[0] == 0.5 and np.isnan(recall[1])
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)


def test_constant_scores_get_no_free_hits():
    ranks = target_ranks(np.zeros((1, 100)), np.array([99]))
    assert ranks[0] == 100


def test_bad_metric_input_raises():
    with pytest.raises(ValueError, match="k=5 must be between 1 and the 3 items"):
        top_k(np.zeros((1, 3)), 5)
    with pytest.raises(ValueError, match="targets must be item columns"):
        target_ranks(np.zeros((1, 3)), np.array([3]))
    with pytest.raises(ValueError, match="one shape"):
        rmse([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        mae([1.0, np.nan], [1.0, 2.0])


def test_bootstrap_interval_contains_the_mean_and_repeats():
    values = np.random.default_rng(0).random(500)
    low, high = bootstrap_ci(values, random_state=1)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values, random_state=1)
    same = paired_bootstrap_ci(values, values)
    assert same == (0.0, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="confidence=1.5"):
        bootstrap_ci(values, confidence=1.5)


def test_verdict_reads_the_interval_as_the_course_does():
    assert verdict("A", "B", (0.01, 0.02)) == "A beats B"
    assert verdict("A", "B", (-0.02, -0.01)) == "B beats A"
    assert verdict("A", "B", (-0.01, 0.02)) == "not told apart"
    assert verdict("A", "B", (0.0, 0.02)) == "not told apart"             # touching zero is not excluding it
    values = np.random.default_rng(0).random(200)
    assert verdict("A", "B", paired_bootstrap_ci(values + 1.0, values)) == "A beats B"
    with pytest.raises(ValueError, match="low <= high"):
        verdict("A", "B", (0.02, 0.01))
    with pytest.raises(ValueError, match="pair of numbers"):
        verdict("A", "B", 0.5)
    with pytest.raises(ValueError, match="finite"):
        verdict("A", "B", (np.nan, 0.1))


def test_a_tie_counts_against_the_target():
    scores = np.array([[0.2, 0.8, 0.8, 0.1], [0.5, 0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(target_ranks(scores, np.array([1, 0])), [2, 4])   # last among its ties
    np.testing.assert_array_equal(target_ranks(scores, np.array([2, 3])), [2, 4])   # whatever its index
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(np.array([[0.1, np.nan]]), np.array([0]))

