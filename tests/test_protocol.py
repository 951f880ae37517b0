import numpy as np
import pytest

from recsys_lab.evaluation import evaluate, ndcg, rank_targets, refit, refit_on, validation_ndcg
from recsys_lab.models import Popularity
from recsys_lab.models.base import Recommender


class Oracle(Recommender):
    """Scores each user's target highest: every metric must be 1."""

    def __init__(self, targets):
        self.targets = targets

    def fit(self, user_items, *, show_progress=True):
        self.n_users, self.n_items = user_items.shape
        return self

    def _score(self, userids, history):
        scores = np.zeros((len(userids), self.n_items))
        scores[np.arange(len(userids)), self.targets[userids]] = 1.0
        return scores


class Constant(Recommender):
    """Scores every item alike: every target ties with everything, so it must earn nothing."""

    def fit(self, user_items, *, show_progress=True):
        self.n_users, self.n_items = user_items.shape
        return self

    def _score(self, userids, history):
        return np.zeros((len(userids), self.n_items))


def test_oracle_scores_perfectly_and_popularity_does_not(ml_split):
    oracle = Oracle(ml_split.test_items).fit(ml_split.history("test").user_items)
    row = evaluate(oracle, ml_split, "test")
    assert row["HR@10"].item() == row["NDCG@10"].item() == row["MRR"].item() == 1.0
    popularity = evaluate(refit(Popularity(), ml_split), ml_split, "test")
    assert 0.0 < popularity["NDCG@10"].item() < 0.2


def test_a_constant_scorer_earns_nothing(ml_split):
    row = evaluate(Constant().fit(ml_split.train.user_items), ml_split, "valid")
    assert row["HR@10"].item() == 0.0 and row["NDCG@10"].item() == 0.0
    assert row["MRR"].item() < 2 / 1500                     # every target ranks last among ~1,600 unseen items


def test_validation_ndcg_scores_the_validation_targets(ml_split):
    oracle = Oracle(ml_split.targets("valid")).fit(ml_split.train.user_items)
    popularity = Popularity().fit(ml_split.train.user_items)
    assert validation_ndcg(ml_split)(oracle) == pytest.approx(1.0)
    expected = ndcg(rank_targets(popularity, ml_split, "valid")["rank"].to_numpy(), 5).mean()
    assert validation_ndcg(ml_split, k=5)(popularity) == pytest.approx(expected)
    with pytest.raises(TypeError, match="leave_last_out"):
        validation_ndcg(ml_split.train)


def test_a_model_must_be_refit_on_the_test_history(ml_split):
    trained_on_train = Popularity().fit(ml_split.train.user_items)
    with pytest.raises(ValueError, match="refit it on split.history"):
        evaluate(trained_on_train, ml_split, "test")
    refitted = refit(trained_on_train, ml_split)
    assert refitted is not trained_on_train and refitted.get_params() == trained_on_train.get_params()
    evaluate(refitted, ml_split, "test")
    with pytest.raises(ValueError, match="fit it on split.train"):
        evaluate(refitted, ml_split, "valid")                 # the validation target is in its training data


def test_refit_trains_the_epochs_that_early_stopping_chose(ml_split):
    pytest.importorskip("torch")
    from recsys_lab.models.multvae import MultVAE, MultVAEConfig

    config = MultVAEConfig(hidden=16, latent=4, epochs=6, patience=2, batch_size=256, device="cpu")
    scripted = iter([0.1, 0.3, 0.2, 0.2, 0.9, 0.9])                 # best after epoch 2, then two without a gain
    model = MultVAE(config, random_state=0).fit(ml_split.train.user_items, show_progress=False,
                                                 on_epoch_end=lambda m: next(scripted))
    assert model.history_.best_epoch == 2 and len(model.history_.loss) == 4
    refitted = refit(model, ml_split)
    assert refitted.cfg.epochs == 2 and len(refitted.history_.loss) == 2 and refitted.history_.best_epoch is None
    assert model.cfg.epochs == 6                                     # the tuned model's settings are untouched


def test_refit_on_fits_the_same_settings_on_another_history(ml_split):
    from recsys_lab.data import roll_back
    from recsys_lab.models.als import ImplicitALS

    tuned = ImplicitALS(factors=8, iterations=2, random_state=0).fit(ml_split.train.user_items, show_progress=False)
    rolled = roll_back(ml_split.train, n_targets=3)
    fresh = refit_on(tuned, rolled.history)
    assert fresh is not tuned and fresh.get_params() == tuned.get_params()
    assert fresh.fitted_on_ != tuned.fitted_on_                      # it saw the rolled-back history
    with pytest.raises(TypeError, match="Interactions"):
        refit_on(tuned, rolled.history.user_items)


def test_evaluate_reports_coverage_and_popularity(ml_split):
    row = evaluate(Popularity().fit(ml_split.train.user_items), ml_split, "valid")
    assert 10 / 1682 <= row["coverage@10"].item() < 0.1       # popularity shows few distinct items
    constant = evaluate(Constant().fit(ml_split.train.user_items), ml_split, "valid")
    assert row["popularity@10"].item() > 2 * constant["popularity@10"].item()   # the first ten ids: older hits


def test_ranks_exclude_history_and_chunking_does_not_change_them(ml_split, monkeypatch):
    model = Popularity().fit(ml_split.train.user_items)
    ranks = rank_targets(model, ml_split, "valid")
    assert len(ranks) == 943 and ranks["rank"].min() >= 1
    assert ranks["rank"].max() <= 1682 - ml_split.train.user_items.getnnz(axis=1).min()
    import recsys_lab.evaluation.protocol as protocol

    monkeypatch.setattr(protocol, "SCORE_BUDGET", 1682 * 7)  # 7 users per chunk
    np.testing.assert_array_equal(rank_targets(model, ml_split, "valid")["rank"], ranks["rank"])


def test_protocol_errors(ml_split, small_log):
    model = Popularity().fit(small_log.user_items)
    with pytest.raises(ValueError, match="refit it on split.history"):
        rank_targets(model, ml_split, "test")
    with pytest.raises(TypeError, match="leave_last_out"):
        rank_targets(model, small_log, "test")
    with pytest.raises(ValueError, match="on='train'"):
        evaluate(Popularity().fit(ml_split.train.user_items), ml_split, "train")
