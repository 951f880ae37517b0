import numpy as np
import pytest
import torch

from recsys_lab.features.crosses import AGE_EDGES, Features, bucketize, cross, encode, encode_multi, movielens_features


def test_encode_and_encode_multi_reserve_zero_for_missing():
    codes, labels = encode(["b", "a", None, "b"])
    np.testing.assert_array_equal(codes.ravel(), [2, 1, 0, 2])
    assert list(labels) == ["a", "b"]
    codes, labels = encode_multi(["Comedy|Drama", "Drama", ""])
    np.testing.assert_array_equal(codes, [[1, 2], [2, 0], [0, 0]])
    assert list(labels) == ["Comedy", "Drama"]


def test_bucketize_uses_half_open_intervals():
    np.testing.assert_array_equal(bucketize([17, 18, 24, 25, 56, 70], AGE_EDGES), ["<18", "18-24", "18-24", "25-34", "56+", "56+"])
    with pytest.raises(ValueError, match="strictly increasing"):
        bucketize([1], [5, 3])


def test_cross_enumerates_pairs_and_keeps_missing_as_zero():
    a = np.array([[2], [0], [1]])          # vocab 2
    b = np.array([[1, 3], [2, 0], [3, 0]])  # vocab 3, multi-valued
    out = cross(a, b, b_vocab=3)
    np.testing.assert_array_equal(out, [[4, 6], [0, 0], [3, 0]])
    assert out.max() <= 2 * 3
    # the same function works on torch tensors
    np.testing.assert_array_equal(cross(torch.as_tensor(a), torch.as_tensor(b), 3).numpy(), out)


def test_distinct_value_pairs_get_distinct_cross_codes():
    a = np.repeat(np.arange(1, 5), 6)[:, None]
    b = np.tile(np.arange(1, 7), 4)[:, None]
    codes = cross(a, b, b_vocab=6).ravel()
    assert len(set(codes)) == 24 and codes.min() == 1 and codes.max() == 24


def test_features_validate_rows_and_codes():
    f = Features.ids(3, "user_id")
    assert f.n == 3 and f.vocab_size("user_id") == 3 and "user_id" in f
    with pytest.raises(ValueError, match="row counts"):
        f.add("x", np.ones((2, 1), dtype=np.int64), ["a"])
    with pytest.raises(ValueError, match="codes in 0..1"):
        f.add("x", np.full((3, 1), 5), ["a"])
    with pytest.raises(KeyError, match="no field 'age'"):
        f["age"]


def test_movielens_features_align_with_the_matrix(movielens):
    users, items = movielens_features(movielens)
    assert users.n == len(movielens.users) and items.n == len(movielens.items)
    assert users.vocab_size("age") == 7 and users.vocab_size("gender") == 2 and users.vocab_size("occupation") == 21
    toy_story = items["genres"][0]
    assert set(items.labels["genres"][toy_story[toy_story > 0] - 1]) == {"Animation", "Children's", "Comedy"}
    assert "unknown" not in set(items.labels["genres"])
