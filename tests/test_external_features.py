"""Aggregation features against a hand-computed case; dual embeddings against least squares."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.features.external import (aggregation_features, dual_user_factors, history_profiles,
                                          recency_weights, unit_rows)
from recsys_lab.models.content import ContentRecommender, DualEmbedding

# four items in 2-D: unit vectors at 0, 90, 45 and 180 degrees (item 2 unnormalised)
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]])
R = np.sqrt(0.5)


def test_recency_weights_halve_every_half_life():
    np.testing.assert_allclose(recency_weights(3, 1.0), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(recency_weights(2, None), [1.0, 1.0])
    with pytest.raises(ValueError, match="half_life=-1.0"):
        recency_weights(3, -1.0)


def test_profiles_by_hand():
    profiles = history_profiles([np.array([0, 1]), np.array([], dtype=int)], VECTORS)
    np.testing.assert_allclose(profiles, [[R, R], [0, 0]], atol=1e-6)
    # decayed with half-life 1: item 0 (older) weight 1/2, item 1 weight 1 -> (0.5, 1) normalised
    decayed = history_profiles([np.array([0, 1])], VECTORS, half_life=1.0)
    np.testing.assert_allclose(decayed, [[0.5 / np.sqrt(1.25), 1 / np.sqrt(1.25)]], atol=1e-6)
    with pytest.raises(ValueError, match="time order"):
        history_profiles(sp.csr_matrix(np.eye(4)), VECTORS, half_life=1.0)


def test_aggregation_features_by_hand():
    # user 0 saw items 0 then 1; candidates 2 (45 degrees) and 3 (180 degrees)
    feats = aggregation_features([np.array([0, 1])], [0, 0], [2, 3], VECTORS, half_life=1.0,
                                 quantiles=(0.5,), threshold=0.5)
    # cosines of candidate 2 to the history: (R, R); of candidate 3: (-1, 0)
    # decay weights (1/2, 1) normalised to (1/3, 2/3)
    expected = {
        "cos_profile": [1.0, -R],
        "cos_profile_decay": [(0.5 * R + R) / np.sqrt(1.25), -0.5 / np.sqrt(1.25)],
        "cos_mean": [R, -0.5],
        "cos_max": [R, 0.0],
        "cos_q50": [R, -0.5],
        "share_above": [1.0, 0.0],
        "cos_mean_decay": [R, -1 / 3],
        "share_above_decay": [1.0, 0.0],
    }
    assert list(feats.columns) == list(expected)
    for column, values in expected.items():
        np.testing.assert_allclose(feats[column], values, atol=1e-6, err_msg=column)


def test_aggregation_features_keep_pair_order_and_handle_empty_histories():
    histories = [np.array([0]), np.array([], dtype=int), np.array([1, 2])]
    feats = aggregation_features(histories, [2, 0, 1, 2], [0, 1, 0, 3], VECTORS)
    np.testing.assert_allclose(feats["cos_max"], [R, 0.0, 0.0, 0.0], atol=1e-6)
    assert (feats.loc[2] == 0).all()  # the empty history


@pytest.mark.parametrize("kwargs, message", [
    ({"quantiles": (1.5,)}, r"quantiles=\(1.5,\)"),
    ({"threshold": 2.0}, "threshold=2.0"),
])
def test_aggregation_features_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        aggregation_features([np.array([0])], [0], [1], VECTORS, **kwargs)
    with pytest.raises(ValueError, match="item index 9"):
        aggregation_features([np.array([9])], [0], [1], VECTORS)


@pytest.mark.parametrize("dim", [3, 8])  # 3: histories longer than dim (direct solve); 8: mostly Woodbury
def test_dual_user_factors_match_a_direct_weighted_least_squares(dim):
    rng = np.random.default_rng(0)
    V = unit_rows(rng.standard_normal((12, dim)))
    dense = (rng.random((4, 12)) < 0.3) * rng.integers(1, 4, (4, 12))
    dense[3, :10] = 1                                         # one history longer than dim
    user_items = sp.csr_matrix(dense, dtype=np.float32)
    regularization, alpha = 0.5, 2.0
    X = dual_user_factors(user_items, V, regularization=regularization, alpha=alpha)
    assert X.shape == (4, dim)
    for u in range(4):
        r = user_items[u].toarray().ravel()
        sqrt_c = np.sqrt(1 + alpha * r)                       # confidence weights
        p = (r > 0).astype(float)                             # preferences
        # minimise sum_i c_i (p_i - x.v_i)^2 + lambda |x|^2 as one stacked least-squares problem
        A = np.vstack([sqrt_c[:, None] * V, np.sqrt(regularization) * np.eye(dim)])
        b = np.concatenate([sqrt_c * p, np.zeros(dim)])
        direct = np.linalg.lstsq(A, b, rcond=None)[0]
        np.testing.assert_allclose(X[u], direct, atol=1e-4)
    # the same step as chapter 03's batched solver
    from recsys_lab.models.als import solve_user_factors
    np.testing.assert_allclose(X, solve_user_factors(user_items, V, regularization=regularization, alpha=alpha),
                               atol=1e-4)
    with pytest.raises(ValueError, match=rf"item_vectors has shape \(5, {dim}\)"):
        dual_user_factors(user_items, V[:5])
    with pytest.raises(ValueError, match="regularization=0.0"):
        dual_user_factors(user_items, V, regularization=0.0)


def test_content_and_dual_recommenders_score_from_the_history():
    user_items = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32))
    content = ContentRecommender(VECTORS).fit(user_items)
    ids, scores = content.recommend(0, user_items[0], N=3)
    np.testing.assert_array_equal(ids, [2, 1, 3])       # 45 degrees, then 90, then 180
    np.testing.assert_allclose(scores, [R, 0.0, -1.0], atol=1e-6)
    assert "array (4, 2)" in repr(content)
    dual = DualEmbedding(VECTORS, regularization=0.1, alpha=5.0).fit(user_items)
    assert dual.recommend(1, user_items[1], N=1)[0][0] != 0  # item 0 points away from item 3
    with pytest.raises(ValueError, match=r"item_vectors has shape \(4, 2\)"):
        ContentRecommender(VECTORS).fit(sp.csr_matrix(np.ones((2, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="pooling='sum'"):
        ContentRecommender(VECTORS, pooling="sum").fit(user_items)
