import math

import numpy as np
import pytest
import torch

from recsys_lab.models.sampled_softmax import in_batch_softmax_loss, log_q


def test_log_q_is_the_log_share_of_positives():
    np.testing.assert_allclose(log_q([3, 1, 0]), np.log([0.75, 0.25, 0.25]))
    with pytest.raises(ValueError, match="counts"):
        log_q([0, 0])
    with pytest.raises(ValueError, match="counts"):
        log_q([1, -1])


def test_log_q_correction_against_a_hand_computed_case():
    # two pairs, d = 1: users 1 and 2, items with vectors 1 and 0.5, item shares 0.75 and 0.25
    users, items = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [0.5]])
    lq = torch.log(torch.tensor([0.75, 0.25]))
    # corrected logits: row 0 = [1 - log .75, 0.5 - log .25], row 1 = [2 - log .75, 1 - log .25]
    row0 = -math.log(math.exp(1 - math.log(0.75)) / (math.exp(1 - math.log(0.75)) + math.exp(0.5 - math.log(0.25))))
    row1 = -math.log(math.exp(1 - math.log(0.25)) / (math.exp(2 - math.log(0.75)) + math.exp(1 - math.log(0.25))))
    expected = (row0 + row1) / 2
    got = in_batch_softmax_loss(users, items, item_log_q=lq).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert got == pytest.approx(0.8408, abs=1e-3)
    # without the correction: plain in-batch softmax
    plain = (math.log(1 + math.exp(0.5 - 1)) + math.log(1 + math.exp(2 - 1))) / 2
    assert in_batch_softmax_loss(users, items).item() == pytest.approx(plain, rel=1e-6)


def test_temperature_scales_logits_before_the_correction():
    users, items = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [0.5]])
    assert in_batch_softmax_loss(users, items, temperature=0.5).item() == pytest.approx(
        in_batch_softmax_loss(2 * users, items).item(), rel=1e-6)


def test_duplicate_items_are_not_their_own_negatives():
    users = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([7, 7, 3])
    masked = in_batch_softmax_loss(users, items, item_ids=ids)
    # rows 0 and 1 (both item 7) compete only with item 3: log(1 + e^(0 - 1)) each;
    # row 2 (item 3) keeps both copies of item 7 as negatives: log(1 + 2 e^(0 - 1))
    expected = (2 * math.log(1 + math.exp(-1)) + math.log(1 + 2 * math.exp(-1))) / 3
    assert masked.item() == pytest.approx(expected, rel=1e-6)


def test_bad_shapes_and_temperature_raise():
    with pytest.raises(ValueError, match="both be"):
        in_batch_softmax_loss(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="temperature=0"):
        in_batch_softmax_loss(torch.zeros(2, 2), torch.zeros(2, 2), temperature=0)
