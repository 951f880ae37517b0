"""ProjectedContent: the masked softmax, the start at the raw vectors, training, bad input."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lab.data import leave_last_out
from recsys_lab.data.interactions import Interactions
from recsys_lab.evaluation import refit
from recsys_lab.models.content import ContentRecommender
from recsys_lab.models.projected_content import ProjectedContent, ProjectionConfig, ProjectionModule

CONFIG = ProjectionConfig(dim=4, max_history=5, recent_targets=None, epochs=3, batch_size=32)


@pytest.fixture(scope="module")
def log():
    # 30 users walking through 16 items in order (item i is followed by i + 1), item 15 never seen
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 6, 30)
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(30), 9),
                          "item_id": (starts[:, None] + np.arange(9)).ravel(),
                          "rating": 1.0, "timestamp": np.tile(np.arange(9), 30)})
    return leave_last_out(Interactions.from_frame(frame, item_ids=np.arange(16)))


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(1).standard_normal((16, 6))


def test_module_starts_at_the_raw_cosines_and_masks_history_and_non_candidates():
    raw = torch.nn.functional.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    candidates = torch.tensor([True, True, True, True, True, False])           # item 5 has no interactions
    module = ProjectionModule(raw, torch.tensor([1.0, 0.5]), candidates, ProjectionConfig(dim=None, max_history=2))
    table = module.item_table()[:6]
    torch.testing.assert_close(table @ table.T, raw @ raw.T, atol=1e-5, rtol=0)   # a rotation: the same cosines
    assert torch.equal(module.item_table()[6], torch.zeros(4))                    # the padding row
    logits = module(torch.tensor([[2, 6], [1, 3]]))                               # [2, pad] and [1, 3]
    assert logits.shape == (2, 6)
    assert torch.isinf(logits[0, 2]) and torch.isinf(logits[1, 1]) and torch.isinf(logits[1, 3])
    assert torch.isinf(logits[:, 5]).all()                                        # never a candidate
    assert torch.isfinite(logits[0, [0, 1, 3, 4]]).all()
    profile = torch.nn.functional.normalize(table[1] + 0.5 * table[3], dim=0)
    torch.testing.assert_close(logits[1, 0], profile @ table[0] / 0.05, atol=1e-4, rtol=0)


def test_fit_learns_and_scores_like_content_recommender(log, vectors):
    model = ProjectedContent(vectors, half_life=1.0, config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    assert model.item_factors.shape == (16, 4)
    np.testing.assert_allclose(np.linalg.norm(model.item_factors, axis=1), 1.0, atol=1e-5)   # item 15 too
    assert len(model.history_.loss) == 3 and model.history_.loss[-1] < model.history_.loss[0]
    users = np.arange(5)
    scores = model.score_items(users, log.train)
    same = ContentRecommender(model.item_factors, half_life=1.0).fit(log.train.user_items)
    np.testing.assert_allclose(scores, same.score_items(users, log.train), atol=1e-5)
    assert "array (16, 6)" in repr(model)


def test_same_seed_same_model(log, vectors):
    a, b, c = (ProjectedContent(vectors, config=CONFIG, random_state=seed).fit(log.train, show_progress=False)
               for seed in (0, 0, 1))
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    assert not np.array_equal(a.item_factors, c.item_factors)      # another batch order


def test_early_stopping_keeps_the_best_epoch_and_refit_trains_that_many(log, vectors):
    metrics = iter([0.1, 0.3, 0.2, 0.1, 0.0])
    config = dataclasses.replace(CONFIG, epochs=5, patience=2)
    model = ProjectedContent(vectors, config=config, random_state=0)
    model.fit(log.train, show_progress=False, on_epoch_end=lambda m: next(metrics))
    assert model.history_.best_epoch == 2 and len(model.history_.loss) == 4
    refitted = refit(model, log)
    assert refitted.cfg.epochs == 2 and len(refitted.history_.loss) == 2


def test_a_repeated_item_is_not_a_target():
    frame = pd.DataFrame({"user_id": 0, "item_id": [1, 2, 1, 3], "rating": 1.0, "timestamp": np.arange(4)})
    log = Interactions.from_frame(frame, item_ids=np.arange(4))
    model = ProjectedContent(np.eye(4), config=dataclasses.replace(CONFIG, epochs=1), random_state=0)
    assert np.isfinite(model.fit(log, show_progress=False).history_.loss).all()    # item 1 after [2, 1] is dropped


def test_bad_input(log, vectors):
    with pytest.raises(TypeError, match="time order"):
        ProjectedContent(vectors, config=CONFIG).fit(log.train.user_items)
    with pytest.raises(ValueError, match=r"item_vectors has shape \(3, 6\)"):
        ProjectedContent(np.zeros((3, 6)), config=CONFIG).fit(log.train)
    with pytest.raises(ValueError, match="dim=8 is larger than the 6 dimensions"):
        ProjectedContent(vectors, config=dataclasses.replace(CONFIG, dim=8)).fit(log.train)
    with pytest.raises(ValueError, match="temperature=0"):
        ProjectedContent(vectors, config=dataclasses.replace(CONFIG, temperature=0.0)).fit(log.train)
    with pytest.raises(ValueError, match="recent_targets=0"):
        ProjectedContent(vectors, config=dataclasses.replace(CONFIG, recent_targets=0)).fit(log.train)
    with pytest.raises(ValueError, match="half_life=-1"):
        ProjectedContent(vectors, half_life=-1.0, config=CONFIG).fit(log.train)
    model = ProjectedContent(vectors, half_life=1.0, config=CONFIG, random_state=0).fit(log.train, show_progress=False)
    with pytest.raises(TypeError, match="time order"):
        model.score_items(0, log.train.user_items[0])
