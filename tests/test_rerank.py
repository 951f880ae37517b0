"""Maximal marginal relevance re-ranking (recsys_lab.retrieval.rerank)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_lab.retrieval.rerank import mmr

# three orthogonal clusters of four items each: 0-3 around e0, 4-7 around e1, 8-11 around e2
CLUSTERS = np.vstack([np.eye(3)[c] + 0.05 * np.arange(4)[:, None] * np.eye(3)[(c + 1) % 3] for c in range(3)])


def reference_mmr(ids, relevance, vectors, k, lam, freshness=None, weight=0.0):
    """MMR for one user in plain Python, written from the definition; also returns the smallest gap between
    the best and the second-best gain over all slots (a float tie makes the order undefined)."""
    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    chosen, gains, gap = [], [], math.inf
    remaining = list(range(len(ids)))
    while len(chosen) < k:
        scored = []
        for pos in remaining:
            redundancy = max((cosine(vectors[ids[pos]], vectors[ids[c]]) for c in chosen), default=0.0)
            bonus = weight * freshness[ids[pos]] if freshness is not None else 0.0
            scored.append(((1 - lam) * relevance[pos] - lam * redundancy + bonus, pos))
        scored.sort(key=lambda pair: -pair[0])
        if len(scored) > 1:
            gap = min(gap, scored[0][0] - scored[1][0])
        chosen.append(scored[0][1])
        gains.append(scored[0][0])
        remaining.remove(scored[0][1])
    return [int(ids[c]) for c in chosen], gains, gap


def random_problem(seed, n_users=6, n_items=40, n_candidates=15, dim=5):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n_items, dim))
    ids = np.stack([rng.choice(n_items, n_candidates, replace=False) for _ in range(n_users)])
    relevance = rng.uniform(size=(n_users, n_candidates))
    return ids, relevance, vectors, rng.uniform(size=n_items)


def test_no_diversity_is_the_relevance_order_with_ties_by_position():
    rng = np.random.default_rng(0)
    ids = np.stack([rng.permutation(30)[:20] for _ in range(8)])
    relevance = rng.integers(0, 4, size=(8, 20)).astype(float)      # many exact ties
    top, gains = mmr(ids, relevance, rng.normal(size=(30, 4)), 12, diversity=0.0)
    order = np.argsort(-relevance, axis=1, kind="stable")[:, :12]   # stable: ties keep the candidate order
    np.testing.assert_array_equal(top, np.take_along_axis(ids, order, axis=1))
    np.testing.assert_array_equal(gains, np.take_along_axis(relevance, order, axis=1))


def test_full_diversity_spreads_the_list_over_the_clusters():
    ids = np.arange(12)                                               # cluster 0 first, the most relevant
    relevance = np.linspace(1.0, 0.0, 12)
    accurate, _ = mmr(ids, relevance, CLUSTERS, 3, diversity=0.0)
    spread, gains = mmr(ids, relevance, CLUSTERS, 3, diversity=1.0)
    assert accurate.tolist() == [0, 1, 2]                             # one cluster only
    assert sorted(i // 4 for i in spread) == [0, 1, 2]                # one item from each cluster
    assert spread[0] == 0                                             # first slot: the first candidate
    np.testing.assert_allclose(gains[1:], 0.0, atol=1e-12)            # orthogonal to everything placed


def test_moderate_diversity_trades_one_slot_for_another_cluster():
    ids = np.arange(8)                                                # clusters 0 and 1
    relevance = np.array([1.0, 0.95, 0.9, 0.85, 0.5, 0.45, 0.4, 0.35])
    top, _ = mmr(ids, relevance, CLUSTERS, 2, diversity=0.5)
    assert top.tolist() == [0, 4]                                     # 0.5 * 0.5 - 0 beats 0.5 * 0.95 - 0.5 * 0.999


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("lam, weight", [(0.3, 0.0), (0.7, 0.0), (0.5, 0.4), (1.0, 0.2)])
def test_agrees_with_a_plain_python_reference(seed, lam, weight):
    ids, relevance, vectors, freshness = random_problem(seed)
    top, gains = mmr(ids, relevance, vectors, 8, diversity=lam, freshness=freshness, freshness_weight=weight)
    for row in range(len(ids)):
        expected, expected_gains, gap = reference_mmr(ids[row], relevance[row], vectors, 8, lam, freshness, weight)
        assert gap > 1e-9, "random data with a near tie: the order would be undefined; pick another seed"
        np.testing.assert_array_equal(top[row], expected)
        np.testing.assert_allclose(gains[row], expected_gains, rtol=1e-10, atol=1e-12)


def test_one_user_as_a_1d_list_matches_its_row_in_a_batch():
    ids, relevance, vectors, _ = random_problem(7)
    batch, batch_gains = mmr(ids, relevance, vectors, 5, diversity=0.4)
    alone, alone_gains = mmr(ids[2], relevance[2], vectors, 5, diversity=0.4)
    assert alone.shape == (5,) and alone_gains.shape == (5,)
    _, _, gap = reference_mmr(ids[2], relevance[2], vectors, 5, 0.4)
    assert gap > 1e-9
    np.testing.assert_array_equal(alone, batch[2])
    np.testing.assert_allclose(alone_gains, batch_gains[2], rtol=1e-12)


def test_freshness_bonus_alone_reorders_by_relevance_plus_bonus():
    ids = np.array([[0, 1, 2, 3]])
    relevance = np.array([[0.9, 0.8, 0.7, 0.6]])
    freshness = np.array([0.0, 0.0, 1.0, 0.5])
    top, _ = mmr(ids, relevance, np.eye(4), 4, diversity=0.0, freshness=freshness, freshness_weight=0.3)
    assert top.tolist() == [[2, 0, 1, 3]]                             # gains 0.9, 0.8, 1.0, 0.75
    top, _ = mmr(ids, relevance, np.eye(4), 4, diversity=0.0, freshness=freshness, freshness_weight=0.0)
    assert top.tolist() == [[0, 1, 2, 3]]


def test_inputs_are_not_changed():
    ids, relevance, vectors, freshness = random_problem(1)
    copies = [a.copy() for a in (ids, relevance, vectors, freshness)]
    mmr(ids, relevance, vectors, 6, diversity=0.5, freshness=freshness, freshness_weight=0.1)
    for before, after in zip(copies, (ids, relevance, vectors, freshness)):
        np.testing.assert_array_equal(before, after)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_candidates=st.integers(1, 12), lam=st.floats(0, 1),
       weight=st.floats(0, 2), data=st.data())
def test_output_is_a_duplicate_free_subset_of_the_candidates(seed, n_candidates, lam, weight, data):
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, n_candidates))
    ids = np.stack([rng.choice(20, n_candidates, replace=False) for _ in range(4)])
    relevance = rng.normal(size=ids.shape).round(1)                   # ties on purpose
    vectors = rng.integers(-1, 2, size=(20, 3)).astype(float)         # duplicates and zero rows on purpose
    top, gains = mmr(ids, relevance, vectors, k, diversity=lam, freshness=rng.uniform(size=20), freshness_weight=weight)
    assert top.shape == gains.shape == (4, k)
    for row, candidates in zip(top, ids):
        assert len(set(row.tolist())) == k
        assert set(row.tolist()) <= set(candidates.tolist())
    assert np.all(np.diff(gains[:, 1:], axis=1) <= 0)                 # from the second slot redundancy only grows


GOOD = dict(candidate_ids=np.array([[0, 1, 2, 3, 4, 5]]), relevance=np.linspace(1, 0, 6)[None, :],
            item_vectors=CLUSTERS[:6], k=3)


@pytest.mark.parametrize("change, error, match", [
    (dict(candidate_ids=np.zeros((1, 2, 3), int)), ValueError, r"non-empty \(n_users, n_candidates\) array"),
    (dict(candidate_ids=np.zeros((1, 0), int), relevance=np.zeros((1, 0))), ValueError, "non-empty"),
    (dict(candidate_ids=np.array([[0.0, 1, 2, 3, 4, 5]])), TypeError, "integer item columns"),
    (dict(relevance=np.ones((1, 5))), ValueError, r"relevance has shape \(1, 5\), candidate_ids \(1, 6\)"),
    (dict(relevance=np.array([[1, 0.5, np.nan, 0, 0, 0]])), ValueError, r"NaN or infinite values \(first in row 0\)"),
    (dict(relevance=np.array([[1, 0.5, np.inf, 0, 0, 0]])), ValueError, "NaN or infinite"),
    (dict(candidate_ids=np.array([[0, 1, 2, 3, 2, 5]])), ValueError, "lists item 2 more than once"),
    (dict(candidate_ids=np.array([[0, 1, 2, 3, 4, 6]])), ValueError, "item 6, outside the 6 rows of item_vectors"),
    (dict(candidate_ids=np.array([[0, 1, 2, 3, 4, -1]])), ValueError, "item -1, outside the 6 rows"),
    (dict(item_vectors=np.ones(6)), ValueError, "item_vectors must be a 2-D array"),
    (dict(item_vectors=np.where(np.eye(6, 3) > 0, np.nan, 1.0)), ValueError, "item_vectors contains NaN"),
    (dict(k=7), ValueError, "k=7 is larger than the 6 candidates per user"),
    (dict(k=0), ValueError, "k=0 must be at least 1"),
    (dict(k=2.0), TypeError, "k=2.0 must be an integer"),
    (dict(diversity=1.5), ValueError, r"diversity=1.5 must lie in \[0, 1\]"),
    (dict(diversity=-0.1), ValueError, r"diversity=-0.1 must lie in \[0, 1\]"),
    (dict(diversity=float("nan")), ValueError, r"diversity=nan must lie in \[0, 1\]"),
    (dict(diversity="0.5"), TypeError, "diversity='0.5' must be a real number"),
    (dict(freshness_weight=0.2), ValueError, "freshness_weight=0.2 needs freshness"),
    (dict(freshness=np.ones(5), freshness_weight=0.2), ValueError, r"shape \(5,\); it needs one score per item, shape \(6,\)"),
    (dict(freshness=np.array([0, 0.5, 1.2, 0, 0, 0]), freshness_weight=0.2), ValueError, r"lie in \[0, 1\]"),
    (dict(freshness=np.array([0, 0.5, np.nan, 0, 0, 0]), freshness_weight=0.2), ValueError, r"finite and lie in \[0, 1\]"),
    (dict(freshness=np.ones(6), freshness_weight=-1.0), ValueError, "freshness_weight=-1.0 must be a finite number >= 0"),
])
def test_bad_inputs_are_refused_with_a_message(change, error, match):
    arguments = {**GOOD, **change}
    keyword = {name: arguments.pop(name) for name in ("freshness", "freshness_weight", "diversity") if name in arguments}
    with pytest.raises(error, match=match):
        mmr(**arguments, **keyword)


def test_the_good_arguments_of_the_error_table_run():
    top, _ = mmr(**GOOD)
    assert top.shape == (1, 3)
