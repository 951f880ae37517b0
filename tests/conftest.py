"""Shared fixtures: the real MovieLens split (cached) and small hand-made data."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_lab.data import Interactions, leave_last_out, load_movielens_100k


@pytest.fixture(scope="session")
def movielens():
    return load_movielens_100k()


@pytest.fixture(scope="session")
def ml_split(movielens):
    return leave_last_out(movielens.interactions)


@pytest.fixture
def small_log():
    """Four users, six items, timestamps with a same-second tie for user 'a'."""
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b", "b", "b", "c", "c", "c", "c", "d"],
            "item_id": [10, 11, 12, 13, 10, 14, 15, 11, 12, 13, 14, 15],
            "rating": [5, 4, 3, 5, 2, 4, 5, 1, 3, 4, 5, 3],
            "timestamp": [1, 2, 3, 3, 5, 6, 7, 1, 2, 3, 4, 9],
        }
    )
    return Interactions.from_frame(frame)


@pytest.fixture
def random_user_items():
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 40)) < 0.2).astype(np.float32)
    dense[np.arange(30), rng.integers(40, size=30)] = 1.0  # every user has an item
    return sp.csr_matrix(dense)


@pytest.fixture(scope="module")
def faiss_one_thread():
    """Small indexes build and search fastest (and reproducibly) on one thread; restored afterwards."""
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
