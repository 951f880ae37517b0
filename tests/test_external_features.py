"""Aggregation features against a hand-computed case; dual embeddings against least squares."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_lab.data import Interactions
from recsys_lab.features.external import (aggregation_features, dual_user_factors, history_profiles,
                                          liked_disliked_features, recency_weights, unit_rows)
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


def test_liked_disliked_features_by_hand():
    # user 0 rated items 0, 2, 1, 3 (oldest first) with 5, 4, 3, 2: liked {0, 2}, neutral {1}, disliked {3}
    # user 1 liked item 1 only; user 2 has no history
    histories = [np.array([0, 2, 1, 3]), np.array([1]), np.array([], dtype=int)]
    ratings = sp.csr_matrix(([5.0, 4.0, 3.0, 2.0, 4.0], ([0, 0, 0, 0, 1], [0, 2, 1, 3, 1])), shape=(3, 4))
    feats = liked_disliked_features(histories, ratings, [0, 0, 1, 2], [1, 3, 3, 0], VECTORS, half_life=1.0, threshold=0.5)
    # recency over the whole timeline, ages 3, 2, 1, 0: weights 1/8, 1/4, 1/2, 1; the liked pair renormalised to 1/3, 2/3
    expected = {
        # candidate 1 (90 degrees): cosines 0 to item 0 and R to item 2; 0 to the disliked item 3
        0: {"liked": [R / 2, R, 0.5, 2 * R / 3, 2 / 3, 2], "disliked": [0, 0, 0, 0, 0, 1]},
        # candidate 3 (180 degrees): cosines -1 and -R to the liked items; 1 to itself, the disliked item
        1: {"liked": [(-1 - R) / 2, -R, 0, -1 / 3 - 2 * R / 3, 0, 2], "disliked": [1, 1, 1, 1, 1, 1]},
        # user 1: one liked item at 90 degrees to candidate 3, nothing disliked
        2: {"liked": [0, 0, 0, 0, 0, 1], "disliked": [0, 0, 0, 0, 0, 0]},
        3: {"liked": [0] * 6, "disliked": [0] * 6},                           # the empty history
    }
    stats = ["cos_mean", "cos_max", "share_above", "cos_mean_decay", "share_above_decay", "count"]
    assert list(feats.columns) == [f"{g}_{stat}" for g in ("liked", "disliked") for stat in stats]
    for row, groups in expected.items():
        for group, values in groups.items():
            np.testing.assert_allclose(feats.loc[row, [f"{group}_{stat}" for stat in stats]].to_numpy(float), values,
                                       atol=1e-6, err_msg=f"pair {row}, {group}")


def test_liked_disliked_features_read_the_ratings_of_an_interactions_log():
    frame = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [10, 30, 20, 10], "rating": [1, 5, 3, 4],
                          "timestamp": [1, 2, 3, 1]})
    log = Interactions.from_frame(frame, item_ids=[10, 20, 30, 40])
    feats = liked_disliked_features(log.sequences(), log.to_csr("rating"), [0, 1], [3, 3], VECTORS)
    # user 1 (row 0): liked item 30 (column 2), disliked item 10 (column 0), item 20 rated 3 is neutral
    np.testing.assert_allclose(feats[["liked_count", "disliked_count"]].to_numpy(), [[1, 1], [1, 0]])
    np.testing.assert_allclose(feats.loc[0, ["liked_cos_max", "disliked_cos_max"]].to_numpy(float), [-R, -1.0], atol=1e-6)
    # a neutral band moved: with liked_from=3 the 3 joins the liked items
    wider = liked_disliked_features(log.sequences(), log.to_csr("rating"), [0], [3], VECTORS, liked_from=3)
    assert wider.loc[0, "liked_count"] == 2


@pytest.mark.parametrize("change, message", [
    ({"liked_from": 2.0}, "disliked_to=2.0 must be below liked_from=2.0"),
    ({"threshold": -3.0}, "threshold=-3.0"),
    ({"ratings": sp.csr_matrix((2, 4))}, r"ratings must be a sparse matrix of shape \(1, 4\).*got \(2, 4\)"),
    ({"ratings": np.ones((1, 4))}, "ratings must be a sparse matrix"),
    ({"ratings": sp.csr_matrix(([5.0], ([0], [0])), shape=(1, 4))}, "history 0 holds item 2, which has no rating"),
    ({"candidates": [7]}, "candidates holds item 7, outside the 4 items"),
    ({"users": [1]}, "users holds index 1, outside the 1 histories"),
])
def test_liked_disliked_features_bad_input(change, message):
    kwargs = {"histories": [np.array([0, 2])], "ratings": sp.csr_matrix(([5.0, 1.0], ([0, 0], [0, 2])), shape=(1, 4)),
              "users": [0], "candidates": [1], "item_vectors": VECTORS}
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        liked_disliked_features(**kwargs)


@pytest.mark.parametrize("alpha", [2.0, 0.0])  # 0: one shared system, solved for all users by one product
@pytest.mark.parametrize("dim", [3, 8])  # 3: histories longer than dim (direct solve); 8: mostly Woodbury
def test_dual_user_factors_match_a_direct_weighted_least_squares(dim, alpha):
    rng = np.random.default_rng(0)
    V = unit_rows(rng.standard_normal((12, dim)))
    dense = (rng.random((4, 12)) < 0.3) * rng.integers(1, 4, (4, 12))
    dense[3, :10] = 1                                         # one history longer than dim
    dense[2] = 0                                              # and one empty history: the zero vector
    user_items = sp.csr_matrix(dense, dtype=np.float32)
    regularization = 0.5
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
