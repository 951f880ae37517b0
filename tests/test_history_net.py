"""HistoryNet: shapes, determinism under a seed, the external vectors, bad input."""

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lab.data import leave_last_out
from recsys_lab.data.interactions import Interactions
from recsys_lab.models.history_net import HistoryModule, HistoryNet, HistoryNetConfig

CONFIG = HistoryNetConfig(dim=8, max_history=5, epochs=2, batch_size=32)


@pytest.fixture(scope="module")
def log():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(20), 8), "item_id": rng.integers(0, 15, 160),
                          "rating": 1.0, "timestamp": np.tile(np.arange(8), 20)})
    return leave_last_out(Interactions.from_frame(frame, item_ids=np.arange(15)))


def test_shapes_and_scores(log):
    vectors = np.random.default_rng(1).standard_normal((15, 6))
    model = HistoryNet(vectors, config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    assert model.item_factors.shape == (15, 8)
    assert model.score_items(np.arange(4), log.train).shape == (4, 15)
    assert len(model.history_.loss) == 2 and np.isfinite(model.history_.loss).all()
    assert "array (15, 6)" in repr(model)


@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_module_pools_over_real_items_only(pooling):
    module = HistoryModule(6, torch.randn(6, 3), HistoryNetConfig(dim=4, max_history=3, pooling=pooling, dropout=0.0))
    module.eval()
    padded = module(torch.tensor([[2, 6, 6]]))             # item 2, then padding (id 6)
    other_pad = module(torch.tensor([[2, 6, 6]]))
    assert padded.shape == (1, 6)
    torch.testing.assert_close(padded, other_pad)
    empty = module(torch.tensor([[6, 6, 6]]))              # no history: every score 0, no NaN
    assert torch.equal(empty, torch.zeros(1, 6))


def test_same_seed_same_model(log):
    a = HistoryNet(config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    b = HistoryNet(config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    c = HistoryNet(config=CONFIG, random_state=1).fit(log.train, show_progress=False)
    np.testing.assert_array_equal(a.score_items(np.arange(5), log.train), b.score_items(np.arange(5), log.train))
    assert not np.allclose(a.score_items(np.arange(5), log.train), c.score_items(np.arange(5), log.train))


def test_bad_input(log):
    with pytest.raises(TypeError, match="time order"):
        HistoryNet(config=CONFIG).fit(log.train.user_items)
    with pytest.raises(ValueError, match=r"item_vectors has shape \(3, 6\)"):
        HistoryNet(np.zeros((3, 6)), config=CONFIG).fit(log.train)
    with pytest.raises(ValueError, match="pooling='sum'"):
        HistoryNet(config=HistoryNetConfig(pooling="sum")).fit(log.train)
    with pytest.raises(ValueError, match="dropout=1.5"):
        HistoryNet(config=HistoryNetConfig(dropout=1.5)).fit(log.train)
    model = HistoryNet(config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    with pytest.raises(TypeError, match="time order"):
        model.score_items(0, log.train.user_items[0])
