import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import Interactions, leave_last_out, rating_folds


def test_interactions_maps_raw_ids_and_orders_events(small_log):
    assert small_log.shape == (4, 6)
    assert small_log.user_index("c") == 2 and small_log.item_index(15) == 5
    user_a = small_log.sequences()[0]
    # same-second events (items 12 and 13 at t=3) are ordered by item id
    np.testing.assert_array_equal(small_log.item_ids[user_a], [10, 11, 12, 13])
    assert small_log.user_items.nnz == 12 and small_log.user_items.max() == 1
    assert small_log.to_csr("rating")[0, 0] == 5


def test_unknown_ids_and_bad_frames_raise(small_log):
    with pytest.raises(ValueError, match="unknown user id 'zz'"):
        small_log.user_index("zz")
    with pytest.raises(ValueError, match="unknown item id 99"):
        small_log.item_index(99)
    with pytest.raises(ValueError, match="no rows"):
        Interactions.from_frame(pd.DataFrame(columns=["user_id", "item_id", "rating", "timestamp"]))
    with pytest.raises(ValueError, match="column 'when'"):
        Interactions.from_frame(pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [1]}), timestamp_col="when")
    nan_rating = pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [np.nan], "timestamp": [0]})
    with pytest.raises(ValueError, match="NaN"):
        Interactions.from_frame(nan_rating)


def test_leave_last_out_holds_out_the_last_two_events(small_log):
    split = leave_last_out(small_log)
    items = small_log.item_ids
    # user a: 10, 11, 12, 13 (12 and 13 tie at t=3 -> item order): valid 12, test 13
    assert items[split.valid_items[0]] == 12 and items[split.test_items[0]] == 13
    # user d has one event: not evaluated, stays in train
    assert split.test_items[3] == -1 and split.valid_items[3] == -1
    assert split.train.user_items[3].nnz == 1
    assert len(split.train) + (split.valid_items >= 0).sum() + (split.test_items >= 0).sum() == len(small_log)
    history = split.history("test")
    assert history.user_items[0, split.valid_items[0]] == 1
    assert split.train.user_items[0, split.valid_items[0]] == 0
    with pytest.raises(ValueError, match="on='train'"):
        split.history("train")


def test_leave_last_out_on_movielens_is_fixed(ml_split):
    assert (ml_split.test_items >= 0).sum() == 943
    assert len(ml_split.train) == 100_000 - 2 * 943
    # the test event is never earlier than the validation event
    valid_t = ml_split.valid_events.events.set_index("user")["timestamp"]
    test_t = ml_split.test_events.events.set_index("user")["timestamp"]
    assert (test_t >= valid_t.reindex(test_t.index)).all()


def test_rating_folds_partition_rows_and_repeat(movielens):
    folds = list(rating_folds(movielens.ratings))
    assert len(folds) == 5
    test_sizes = [len(test) for _, test in folds]
    assert sum(test_sizes) == 100_000
    assert all(len(train) + len(test) == 100_000 for train, test in folds)
    again = list(rating_folds(movielens.ratings))
    pd.testing.assert_frame_equal(folds[2][1], again[2][1])
    with pytest.raises(ValueError, match="n_folds=1"):
        next(rating_folds(movielens.ratings, 1))
