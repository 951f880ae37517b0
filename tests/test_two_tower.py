import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_lab.data import Interactions, leave_last_out
from recsys_lab.features.crosses import Features, encode
from recsys_lab.models.two_tower import TwoTower, TwoTowerConfig

# these tests read the module's tensors directly, so they pin the CPU (benchmarks/cuda_check.py covers cuda)
TINY = dict(factors=8, history_len=5, hidden=16, epochs=2, batch_size=16, device="cpu")


@pytest.fixture
def log():
    rng = np.random.default_rng(0)
    rows = [(u, int(i), t) for u in range(15) for t, i in enumerate(rng.choice(25, size=rng.integers(3, 10), replace=False))]
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), rating_col=None,
                                   item_ids=np.arange(25))


@pytest.fixture
def users():
    return Features.ids(15, "user_id").add("gender", *encode(np.random.default_rng(1).choice(["F", "M"], 15)))


def test_towers_give_unit_vectors_in_one_space(log, users):
    model = TwoTower(TwoTowerConfig(**TINY), random_state=0).fit(log, user_features=users, show_progress=False)
    assert model.item_factors.shape == (25, 8)
    np.testing.assert_allclose(np.linalg.norm(model.item_factors, axis=1), 1, rtol=1e-5)
    u = model.user_vectors(np.arange(4), log)
    assert u.shape == (4, 8)
    np.testing.assert_allclose(model.score_items(np.arange(4), log), u @ model.item_factors.T, rtol=1e-5, atol=1e-6)
    split = leave_last_out(log)
    ids, _ = model.recommend(np.arange(3), split.history("test"), N=4)
    assert ids.shape == (3, 4)


def test_user_tower_ignores_the_user_id_but_reads_features(log, users):
    model = TwoTower(TwoTowerConfig(**TINY), random_state=0).fit(log, user_features=users, show_progress=False)
    assert model.module_.user_fields == ["gender"]


def test_fit_is_deterministic_and_learns(log):
    a = TwoTower(TwoTowerConfig(**{**TINY, "epochs": 8}), random_state=0).fit(log, show_progress=False)
    b = TwoTower(TwoTowerConfig(**{**TINY, "epochs": 8}), random_state=0).fit(log, show_progress=False)
    np.testing.assert_allclose(a.item_factors, b.item_factors)
    assert a.history_.loss[-1] < a.history_.loss[0]


def test_log_q_buffer_matches_item_frequencies(log):
    model = TwoTower(TwoTowerConfig(**TINY), random_state=0).fit(log, show_progress=False)
    targets = np.concatenate([s[1:] for s in log.sequences()])
    q = np.bincount(targets, minlength=25) / len(targets)
    seen = q > 0
    np.testing.assert_allclose(np.exp(model.module_.item_log_q.numpy())[seen], q[seen], rtol=1e-5)


def test_bad_input_raises_clear_errors(log):
    with pytest.raises(ValueError, match="temperature=0"):
        TwoTowerConfig(temperature=0)
    with pytest.raises(TypeError, match="Interactions"):
        TwoTower(TwoTowerConfig(**TINY)).fit(log.user_items)
    with pytest.raises(ValueError, match="user_features has 3 rows"):
        TwoTower(TwoTowerConfig(**TINY)).fit(log, user_features=Features.ids(3, "user_id"))
    model = TwoTower(TwoTowerConfig(**TINY), random_state=0).fit(log, show_progress=False)
    with pytest.raises(TypeError, match="time order"):
        model.score_items(0, log.user_items[0])
