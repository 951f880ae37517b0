import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.models.negatives import sample_negatives


def test_sample_negatives_never_returns_an_observed_item(random_user_items):
    users = np.repeat(np.arange(30), 3)
    neg = sample_negatives(users, random_user_items, 4, np.random.default_rng(0))
    assert neg.shape == (90, 4)
    assert not np.asarray(random_user_items[np.repeat(users, 4), neg.ravel()]).any()


def test_sample_negatives_covers_every_unobserved_item():
    observed = sp.csr_matrix(np.array([[1, 0, 1, 0, 0]], dtype=np.float32))
    neg = sample_negatives(np.zeros(300, dtype=np.int64), observed, 1, np.random.default_rng(0))
    assert set(np.unique(neg)) == {1, 3, 4}        # uniform over what is left, not only its first item


def test_sample_negatives_refuses_a_user_with_every_item():
    full = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="user 0 has every item"):
        sample_negatives(np.array([0]), full, 1, np.random.default_rng(0))
