import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.validation import (
    check_factors_finite, check_nonnegative_float, check_positive_int, check_random_state, check_user_items, check_userids,
)


@pytest.mark.parametrize("seed", [None, 0, 42, np.random.default_rng(3)])
def test_random_state_accepts_none_int_and_generator(seed):
    rng = check_random_state(seed)
    assert isinstance(rng, np.random.Generator)
    if isinstance(seed, np.random.Generator):
        assert rng is seed


def test_int_seeds_repeat():
    assert check_random_state(7).random() == check_random_state(7).random()


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (True, TypeError)])
def test_bad_random_state(bad, error):
    with pytest.raises(error, match="random_state"):
        check_random_state(bad)


def test_user_items_conversions_and_errors():
    csr = sp.csr_matrix(np.eye(3, dtype=np.float32))
    assert check_user_items(csr).format == "csr"
    with pytest.warns(UserWarning, match="coo_matrix"):
        check_user_items(csr.tocoo())
    with pytest.raises(TypeError, match="got ndarray"):
        check_user_items(np.eye(3))
    with pytest.raises(ValueError, match="empty"):
        check_user_items(sp.csr_matrix((3, 4)))
    with pytest.raises(ValueError, match="negative"):
        check_user_items(sp.csr_matrix(-np.eye(2)))
    with pytest.raises(ValueError, match="NaN"):
        check_user_items(sp.csr_matrix(np.array([[np.nan, 1.0]])))
    original = csr.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_user_items(csr)
    assert (csr != original).nnz == 0  # the caller's matrix is untouched


def test_scalar_checks_name_the_value():
    assert check_positive_int(3, "factors") == 3
    with pytest.raises(ValueError, match="factors=0 must be at least 1"):
        check_positive_int(0, "factors")
    with pytest.raises(ValueError, match="alpha=-1.0"):
        check_nonnegative_float(-1, "alpha")
    with pytest.raises(ValueError, match="lr=nan"):
        check_nonnegative_float(float("nan"), "lr")
    with pytest.raises(ValueError, match="userid 5 is outside the 5 users"):
        check_userids(5, 5)
    with pytest.raises(ValueError, match="itemid -1 is outside the 3 items"):
        check_userids(np.array([0, -1]), 3, name="itemid")
    with pytest.raises(FloatingPointError, match="non-finite item_factors"):
        check_factors_finite("ALS", item_factors=np.array([np.nan]))


def test_explicit_zeros_are_not_interactions():
    # item 0: three stored zeros; item 1: one real interaction
    stored = sp.csr_matrix((np.array([0.0, 0.0, 0.0, 1.0], np.float32), (np.array([0, 1, 2, 3]), np.array([0, 0, 0, 1]))),
                           shape=(4, 3))
    before = stored.copy()
    with pytest.warns(UserWarning, match="3 explicit zeros"):
        checked = check_user_items(stored)
    assert checked.nnz == 1 and checked[3, 1] == 1
    assert stored.nnz == 4 and (stored != before).nnz == 0  # the caller's matrix is untouched

    from recsys_lab.models.popularity import Popularity

    with pytest.warns(UserWarning, match="explicit zeros"):
        model = Popularity().fit(stored, show_progress=False)
    ids, _ = model.recommend(0, sp.csr_matrix((1, 3), dtype=np.float32), N=3)
    assert ids[0] == 1  # the item someone interacted with ranks first

    all_zero = sp.csr_matrix((np.zeros(2, np.float32), (np.array([0, 1]), np.array([0, 1]))), shape=(2, 2))
    with pytest.raises(ValueError, match=r"only explicit zeros \(2 stored entries\).*empty"):
        check_user_items(all_zero)
