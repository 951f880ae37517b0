import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_lab.data import Interactions, leave_last_out
from recsys_lab.models.sasrec import SASRec, SASRecConfig, SASRecModule, pad_histories

# these tests read the module's tensors directly, so they pin the CPU (benchmarks/cuda_check.py covers cuda)
TINY = dict(max_len=8, factors=8, n_blocks=2, n_heads=2, dropout=0.0, epochs=2, batch_size=4, device="cpu")


@pytest.fixture
def log():
    rng = np.random.default_rng(0)
    rows = [(u, int(i), t) for u in range(12) for t, i in enumerate(rng.choice(20, size=rng.integers(3, 12), replace=False))]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Interactions.from_frame(frame, rating_col=None, item_ids=np.arange(20))


def test_pad_histories_left_pads_and_keeps_the_most_recent():
    padded = pad_histories([np.array([4, 7]), np.arange(5), np.array([], dtype=int)], 3)
    np.testing.assert_array_equal(padded, [[0, 5, 8], [3, 4, 5], [0, 0, 0]])


def test_forward_shapes_and_scores(log):
    model = SASRec(SASRecConfig(**TINY), random_state=0).fit(log, show_progress=False)
    assert model.module_(torch.zeros(3, 8, dtype=torch.long)).shape == (3, 8, 8)
    assert model.item_factors.shape == (20, 8)
    split = leave_last_out(log)
    scores = model.score_items(np.arange(4), split.history("test"))
    assert scores.shape == (4, 20) and np.isfinite(scores).all()
    ids, _ = model.recommend(np.arange(4), split.history("test"), N=5)
    assert ids.shape == (4, 5)


def test_causal_mask_no_position_sees_the_future():
    torch.manual_seed(0)
    module = SASRecModule(30, SASRecConfig(**TINY)).eval()
    seq = torch.tensor([[0, 0, 3, 9, 4, 17, 2, 8]])
    changed = seq.clone()
    changed[0, 5] = 25  # change a later item
    with torch.no_grad():
        before, after = module(seq), module(changed)
    assert torch.allclose(before[0, :5], after[0, :5], atol=1e-6)  # earlier positions untouched
    assert not torch.allclose(before[0, 5:], after[0, 5:])          # later ones do change


def test_weight_tying_output_layer_is_the_item_embedding_table(log):
    model = SASRec(SASRecConfig(**TINY), random_state=0).fit(log, show_progress=False)
    module = model.module_
    assert module.item_vectors().data_ptr() == module.item_emb.weight[1:].data_ptr()
    tables = [p for p in module.parameters() if p.shape == (21, 8)]
    assert len(tables) == 1  # no second (n_items, d) matrix anywhere
    # the model's scores are user vectors times the input embeddings
    seqs = log.sequences()[:3]
    expected = model.user_vectors(seqs) @ module.item_emb.weight[1:].detach().numpy().T
    np.testing.assert_allclose(model.score_items(np.arange(3), log), expected, rtol=1e-5, atol=1e-5)


def test_fit_is_deterministic(log):
    a = SASRec(SASRecConfig(**{**TINY, "dropout": 0.3}), random_state=3).fit(log, show_progress=False)
    b = SASRec(SASRecConfig(**{**TINY, "dropout": 0.3}), random_state=3).fit(log, show_progress=False)
    np.testing.assert_allclose(a.item_factors, b.item_factors)
    assert a.history_.loss == b.history_.loss


def test_training_lowers_the_loss(log):
    model = SASRec(SASRecConfig(**{**TINY, "epochs": 5, "lr": 1e-2}), random_state=0).fit(log, show_progress=False)
    assert model.history_.loss[-1] < model.history_.loss[0]


def test_bad_input_raises_clear_errors(log):
    with pytest.raises(ValueError, match="factors=10 must be divisible by n_heads=3"):
        SASRecConfig(factors=10, n_heads=3)
    with pytest.raises(ValueError, match="dropout=1.5"):
        SASRecConfig(dropout=1.5)
    with pytest.raises(ValueError, match="max_len=0"):
        SASRecConfig(max_len=0)
    with pytest.raises(TypeError, match="Interactions"):
        SASRec(SASRecConfig(**TINY)).fit(sp.csr_matrix(np.eye(3)))
    model = SASRec(SASRecConfig(**TINY), random_state=0).fit(log, show_progress=False)
    with pytest.raises(TypeError, match="time order"):
        model.score_items(0, log.user_items[0])
    with pytest.raises(ValueError, match="item 24"):
        model.user_vectors([np.array([1, 24])])
    with pytest.raises(RuntimeError, match="not fitted"):
        SASRec().score_items(0, log)
