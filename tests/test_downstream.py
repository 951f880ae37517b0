"""Embeddings as features: held-out predictions, paired bootstrap of AUC / Spearman / R^2."""

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import r2_score, roc_auc_score

from recsys_lab.analysis.downstream import (LOGISTIC_CS, RIDGE_ALPHAS, compare_feature_sets, metric_on_resamples,
                                            out_of_fold_predictions, paired_metric_ci)


def toy(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    label = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    value = 2 * x[:, 0] + rng.normal(size=n)
    return x, label, value


def test_metrics_on_all_rows_match_sklearn_and_scipy_with_ties():
    rng = np.random.default_rng(1)
    label = rng.integers(2, size=200)
    scores = np.round(rng.normal(size=200) + label, 1)          # rounded: many ties
    everyone = np.arange(200)[None]
    assert metric_on_resamples("auc", label, scores, everyone)[0] == pytest.approx(roc_auc_score(label, scores))
    value = np.round(rng.normal(size=200), 1)
    assert metric_on_resamples("spearman", value, scores, everyone)[0] == pytest.approx(spearmanr(value, scores)[0])
    assert metric_on_resamples("r2", value, scores, everyone)[0] == pytest.approx(r2_score(value, scores))
    with pytest.raises(ValueError, match="metric='mse'"):
        metric_on_resamples("mse", value, scores, everyone)


def test_out_of_fold_predictions_are_held_out():
    x, label, value = toy()
    scores, chosen = out_of_fold_predictions(x, label, random_state=0)
    assert scores.shape == (200,) and ((scores > 0) & (scores < 1)).all()
    assert roc_auc_score(label, scores) > 0.85 and chosen.shape == (5,) and np.isin(chosen, LOGISTIC_CS).all()
    predicted, alphas = out_of_fold_predictions(x, value, kind="regression", n_splits=4, random_state=0)
    assert r2_score(value, predicted) > 0.6 and alphas.shape == (4,) and np.isin(alphas, RIDGE_ALPHAS).all()
    # a held-out prediction does not use its own row: a row's value cannot leak into its prediction
    leaked = np.column_stack([x, value])
    assert r2_score(value, out_of_fold_predictions(leaked, value, kind="regression", random_state=0)[0]) > 0.99
    noise = np.random.default_rng(5).normal(size=(200, 6))
    assert abs(roc_auc_score(label, out_of_fold_predictions(noise, label, random_state=0)[0]) - 0.5) < 0.12


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "ranking"}, "kind='ranking'"),
    ({"n_splits": 1}, "n_splits=1"),
])
def test_out_of_fold_predictions_argument_errors(kwargs, match):
    x, label, _ = toy()
    with pytest.raises(ValueError, match=match):
        out_of_fold_predictions(x, label, **kwargs)


def test_out_of_fold_predictions_input_errors():
    x, label, value = toy()
    with pytest.raises(ValueError, match="only 0 and 1"):
        out_of_fold_predictions(x, value)
    with pytest.raises(ValueError, match="at least n_splits=5"):
        out_of_fold_predictions(x, np.r_[np.ones(3), np.zeros(197)])
    with pytest.raises(ValueError, match=r"features has shape \(199, 6\)"):
        out_of_fold_predictions(x[:-1], label)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        out_of_fold_predictions(bad, label)


def test_paired_metric_ci_separates_signal_from_noise():
    x, label, _ = toy()
    good = x[:, 0]
    weak = x[:, 0] + 3 * np.random.default_rng(2).normal(size=200)
    pair = paired_metric_ci(label, good, weak, metric="auc")
    assert pair["diff"] == pytest.approx(roc_auc_score(label, good) - roc_auc_score(label, weak))
    assert 0 < pair["low"] <= pair["diff"] <= pair["high"]
    same = paired_metric_ci(label, good, good)
    assert same["low"] == same["high"] == 0                       # a set against itself: no difference at all
    assert paired_metric_ci(label, good, weak) == paired_metric_ci(label, good, weak)   # seeded
    with pytest.raises(ValueError, match="same users"):
        paired_metric_ci(label, good, weak[:-1])
    with pytest.raises(ValueError, match="confidence=1.5"):
        paired_metric_ci(label, good, weak, confidence=1.5)
    with pytest.raises(ValueError, match="only 0 and 1"):
        paired_metric_ci(good, good, weak, metric="auc")


def test_compare_feature_sets_uses_one_split_and_one_bootstrap():
    x, label, value = toy()
    sets = {"signal": x[:, :2], "noise": x[:, 3:], "signal too": x[:, :2].copy()}
    result = compare_feature_sets(sets, label, comparisons=[("signal", "noise"), ("signal too", "signal")],
                                  n_resamples=300, random_state=0)
    assert list(result.scores.index) == list(sets)
    assert list(result.differences.index) == ["signal - noise", "signal too - signal"]
    np.testing.assert_array_equal(result.predictions["signal"], result.predictions["signal too"])  # same folds
    assert result.differences.loc["signal too - signal", "AUC diff"] == 0
    assert result.differences.loc["signal - noise", "AUC low"] > 0.2
    row = result.scores.loc["signal"]
    assert row["AUC low"] <= row["AUC"] <= row["AUC high"]
    assert row["AUC"] == pytest.approx(roc_auc_score(label, result.predictions["signal"]))
    regression = compare_feature_sets(sets, value, kind="regression", metrics=("spearman", "r2"),
                                      comparisons=[("signal", "noise")], n_resamples=300, random_state=0)
    assert {"Spearman", "R2", "regularization"} <= set(regression.scores.columns)
    assert regression.regularization["signal"].shape == (5,)
    assert regression.differences.loc["signal - noise", "R2 low"] > 0.5


@pytest.mark.parametrize("kwargs, match", [
    ({"comparisons": [("signal", "counts")]}, "'counts'"),
    ({"comparisons": [], "metrics": ("r2",)}, "metric='r2'"),
    ({"comparisons": [], "n_resamples": 0}, "n_resamples=0"),
])
def test_compare_feature_sets_errors(kwargs, match):
    x, label, _ = toy()
    with pytest.raises(ValueError, match=match):
        compare_feature_sets({"signal": x}, label, **kwargs)
