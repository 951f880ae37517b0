import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import Interactions, cold_items, leave_last_out, rating_folds, roll_back


def test_interactions_maps_raw_ids_and_orders_events(small_log):
    assert small_log.shape == (4, 6)
    assert small_log.user_index("c") == 2 and small_log.item_index(15) == 5
    user_a = small_log.sequences()[0]
    # items 12 and 13 share t=3: their order is the fixed pseudo-random one, never a guess from the ids
    np.testing.assert_array_equal(small_log.item_ids[user_a[:2]], [10, 11])
    assert set(small_log.item_ids[user_a[2:]]) == {12, 13}
    by_id = small_log.with_tie_break("item").sequences()[0]
    np.testing.assert_array_equal(small_log.item_ids[by_id], [10, 11, 12, 13])
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
    # user a: 10, 11, then 12 and 13 in the same second: the tie-break order decides which is the test target
    last_two = small_log.item_ids[small_log.sequences()[0][2:]]
    assert items[split.valid_items[0]] == last_two[0] and items[split.test_items[0]] == last_two[1]
    # user d has one event: not evaluated, stays in train
    assert split.test_items[3] == -1 and split.valid_items[3] == -1
    assert split.train.user_items[3].nnz == 1
    assert len(split.train) + (split.valid_items >= 0).sum() + (split.test_items >= 0).sum() == len(small_log)
    history = split.history("test")
    assert history.user_items[0, split.valid_items[0]] == 1
    assert split.train.user_items[0, split.valid_items[0]] == 0
    with pytest.raises(ValueError, match="on='train'"):
        split.history("train")


def test_roll_back_holds_out_each_users_last_events(small_log):
    rolled = roll_back(small_log, n_targets=2)
    sequences = small_log.sequences()
    for user, sequence in enumerate(sequences):
        kept = max(1, len(sequence) - 2)                                    # every user keeps at least one event
        assert set(np.flatnonzero(rolled.history.user_items[user].toarray())) == set(sequence[:kept])
        assert set(np.flatnonzero(rolled.target_items[user].toarray())) == set(sequence[kept:])
    assert len(rolled.history) + len(rolled.targets) == len(small_log)
    assert rolled.history.shape == rolled.targets.shape == small_log.shape
    # user b has three events: with min_history=2 only its last one becomes a target
    assert roll_back(small_log, n_targets=2, min_history=2).target_items[1].nnz == 1
    # every target comes no earlier than its user's last history event
    last_seen = rolled.history.events.groupby("user")["timestamp"].max()
    first_target = rolled.targets.events.groupby("user")["timestamp"].min()
    assert (first_target >= last_seen.reindex(first_target.index)).all()


def test_roll_back_rejects_bad_arguments(small_log):
    with pytest.raises(TypeError, match="Interactions"):
        roll_back(small_log.user_items)
    with pytest.raises(ValueError, match="n_targets"):
        roll_back(small_log, n_targets=0)
    with pytest.raises(ValueError, match="min_history"):
        roll_back(small_log, min_history=0)
    with pytest.raises(ValueError, match="nothing can be held out"):
        roll_back(small_log, min_history=10)


def test_same_second_order_is_random_but_fixed_and_survives_subsets(movielens):
    log = movielens.interactions
    again = Interactions(log.events.sample(frac=1.0, random_state=1), log.user_ids, log.item_ids)
    pd.testing.assert_frame_equal(again.events, log.events)              # the order does not depend on input order
    subset = log.subset(log.events["item"].to_numpy() % 2 == 0)
    kept = log.events[log.events["item"] % 2 == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(subset.events, kept)                   # a subset keeps it
    same_second = log.events.duplicated(["user", "timestamp"], keep=False)
    tied = log.events[same_second]
    ascending = (tied.groupby(["user", "timestamp"])["item"].diff().dropna() > 0).mean()
    assert 0.4 < ascending < 0.6                                         # not item order: about half ascend


def test_the_next_id_rule_scores_below_popularity_under_the_random_order(movielens):
    from recsys_lab.evaluation import evaluate, hit_rate, rank_targets, refit
    from recsys_lab.models import Popularity
    from recsys_lab.models.base import Recommender

    class NextId(Recommender):
        """Scores the items whose ids follow the user's last training item highest: learns nothing."""

        def fit(self, user_items, *, show_progress=True):
            self.n_users, self.n_items = user_items.shape
            return self

        def _score(self, userids, history):
            last = np.array([seq[-1] for seq in history.require_sequences("NextId")])
            gap = np.arange(self.n_items)[None, :] - last[:, None]          # (n_users, n_items)
            return np.where(gap > 0, -gap, -10 * self.n_items).astype(float)

    hr = {}
    for tie_break in ("item", "random"):
        split = leave_last_out(movielens.interactions.with_tie_break(tie_break))
        ranks = rank_targets(NextId().fit(split.history("test").user_items), split, "test")["rank"]
        hr[tie_break] = hit_rate(ranks, 10).mean()
        popularity = evaluate(refit(Popularity().fit(split.train.user_items), split), split, "test")["HR@10"].item()
    assert hr["item"] > 0.07 and hr["random"] < popularity, (hr, popularity)


def test_hide_target_second_leaves_the_batch_out_of_the_history(movielens):
    split = leave_last_out(movielens.interactions, hide_target_second=True)
    events = split.history("test").events.set_index("user")
    test_t = split.test_events.events.set_index("user")["timestamp"]
    assert not (events["timestamp"].to_numpy() == test_t.reindex(events.index).to_numpy()).any()
    valid_t = split.valid_events.events.set_index("user")["timestamp"]
    train = split.train.events.set_index("user")
    assert not (train["timestamp"].to_numpy() == valid_t.reindex(train.index).to_numpy()).any()
    plain = leave_last_out(movielens.interactions)
    np.testing.assert_array_equal(split.test_items, plain.test_items)   # the same targets
    assert len(split.history("test")) < len(plain.history("test"))


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


def test_cold_items_are_a_fixed_random_share():
    cold = cold_items(1000, share=0.1)
    assert len(cold) == 100 and len(set(cold)) == 100 and (np.diff(cold) > 0).all() and cold.max() < 1000
    np.testing.assert_array_equal(cold, cold_items(1000, share=0.1))          # the same set wherever drawn
    assert not np.array_equal(cold, cold_items(1000, share=0.1, random_state=1))
    for bad, message in ((dict(share=0.0), "strictly between"), (dict(share=1.5), "strictly between"),
                         (dict(share=0.001), "selects none")):
        with pytest.raises(ValueError, match=message):
            cold_items(100, **bad)
