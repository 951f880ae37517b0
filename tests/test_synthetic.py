import numpy as np
import pytest

from recsys_lab.data import synthetic_factors, synthetic_user_items


def test_synthetic_user_items_shape_popularity_and_seed():
    a = synthetic_user_items(2_000, 500, interactions_per_user=10, random_state=0)
    b = synthetic_user_items(2_000, 500, interactions_per_user=10, random_state=0)
    assert a.shape == (2_000, 500) and (a != b).nnz == 0
    assert a.max() == 1.0 and np.all(np.diff(a.indptr) == 10)
    counts = np.sort(np.diff(a.tocsc().indptr))[::-1]
    assert counts[:50].sum() > counts[-250:].sum()  # the top 10% outweigh the bottom half


def test_synthetic_factors_shapes():
    users, items, popularity = synthetic_factors(10, 1_000, 8, random_state=1)
    assert users.shape == (10, 8) and items.shape == (1_000, 8) and items.dtype == np.float32
    assert popularity.sum() == pytest.approx(1.0)


def test_synthetic_bad_input():
    with pytest.raises(ValueError, match="interactions_per_user=50"):
        synthetic_user_items(10, 20, interactions_per_user=50)
    with pytest.raises(ValueError, match="dim=0"):
        synthetic_factors(10, 10, 0)
