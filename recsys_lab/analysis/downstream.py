"""Embeddings as features for another model, compared fairly with raw counts.

A data scientist who predicts churn, value or a user attribute can feed the
recommender's user vectors to a model of their own. Whether that helps is an
empirical question, and a comparison only means something when every feature
set gets the same chance:

* every feature set is standardized and gets a **regularized** linear model
  whose strength is chosen by an inner cross-validation on the training
  folds only (a logistic regression for a binary label, a ridge regression
  for a number), so that 64 embedding columns get the same protection
  against overfitting as four counts;
* every feature set is scored on the **same outer folds**: each user gets one
  held-out prediction (:func:`out_of_fold_predictions`);
* a difference is reported with a **paired bootstrap over the held-out
  users** (:func:`paired_metric_ci`, :func:`compare_feature_sets`): the
  same resampled users for both feature sets, the metric (ROC AUC,
  Spearman, R^2) recomputed on each resample, because none of these metrics
  is a mean over users.

:func:`compare_feature_sets` runs the three steps for several feature sets
and the pairs of them to compare.

scikit-learn and scipy are imported here; ``import recsys_lab`` does not import this module.

References
----------
Efron, B., & Tibshirani, R. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
Varma, S., & Simon, R. (2006). Bias in error estimation when using cross-validation for
model selection. *BMC Bioinformatics* 7 (why the regularization is chosen inside each fold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from recsys_lab.validation import check_positive_int, check_random_state, seed_from

__all__ = ["METRICS", "out_of_fold_predictions", "metric_on_resamples", "paired_metric_ci", "FeatureComparison",
           "compare_feature_sets"]

#: the metrics :func:`paired_metric_ci` knows, and the kind of target each one scores
METRICS = {"auc": "classification", "spearman": "regression", "r2": "regression"}
#: inverse regularization strengths C tried by the logistic regression's inner cross-validation
LOGISTIC_CS = np.logspace(-4, 2, 7)
#: ridge penalties tried by the regression's (leave-one-out) inner cross-validation
RIDGE_ALPHAS = np.logspace(-2, 5, 8)


def _check_target(target, kind: str, n_splits: int) -> np.ndarray:
    if kind not in ("classification", "regression"):
        raise ValueError(f"kind={kind!r} must be 'classification' or 'regression'.")
    target = np.asarray(target, dtype=np.float64)
    if target.ndim != 1 or not np.isfinite(target).all():
        raise ValueError(f"target must be a finite 1-D array, got shape {target.shape}.")
    if kind == "classification":
        if not np.isin(target, (0, 1)).all():
            raise ValueError("a classification target must hold only 0 and 1.")
        if min(target.sum(), len(target) - target.sum()) < n_splits:
            raise ValueError(f"each class needs at least n_splits={n_splits} users; "
                             f"the target has {int(target.sum())} ones and {int(len(target) - target.sum())} zeros.")
    return target


def out_of_fold_predictions(features, target, *, kind: str = "classification", n_splits: int = 5,
                            random_state=None) -> tuple[np.ndarray, np.ndarray]:
    """One held-out prediction per row from a standardized, regularized linear model.

    The rows are split into ``n_splits`` folds (stratified for a binary
    target); each fold is predicted by a model fitted on the other folds,
    whose regularization is chosen there by an inner cross-validation:
    a logistic regression's C over :data:`LOGISTIC_CS` (3 inner folds, ROC AUC)
    or ``RidgeCV`` over :data:`RIDGE_ALPHAS` (leave-one-out). The same
    ``random_state`` gives the same folds for any feature set of the same
    rows, which is what makes two feature sets comparable user by user.

    Parameters
    ----------
    features : array of shape (n_users, n_features)
    target : array of shape (n_users,)
        0/1 for ``kind="classification"``, a number for ``"regression"``.
    kind : {"classification", "regression"}
    n_splits : int
        Outer folds.
    random_state : None, int or numpy.random.Generator
        Seeds the fold assignment.

    Returns
    -------
    predictions : ndarray of shape (n_users,)
        Held-out probability of class 1, or the held-out predicted value.
    regularization : ndarray of shape (n_splits,)
        The C (classification) or alpha (regression) each outer fold chose.

    Examples
    --------
    >>> scores, C = out_of_fold_predictions(als.user_factors, older, random_state=0)
    >>> roc_auc_score(older, scores)
    """
    n_splits = check_positive_int(n_splits, "n_splits", minimum=2)
    target = _check_target(target, kind, n_splits)
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) != len(target):
        raise ValueError(f"features has shape {features.shape}; expected ({len(target)}, n_features), "
                         f"one row per target value.")
    if not np.isfinite(features).all():
        raise ValueError("features contains NaN or infinite entries; impute or drop them first.")
    seed = seed_from(check_random_state(random_state))
    if kind == "classification":
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(features, target)
        model = make_pipeline(StandardScaler(), GridSearchCV(LogisticRegression(max_iter=5000), {"C": LOGISTIC_CS},
                                                             cv=3, scoring="roc_auc"))
    else:
        folds = KFold(n_splits, shuffle=True, random_state=seed).split(features)
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
    predictions, chosen = np.empty(len(target)), np.empty(n_splits)
    for fold, (fit_rows, held_out) in enumerate(folds):
        fitted = clone(model).fit(features[fit_rows], target[fit_rows])
        last = fitted[-1]
        if kind == "classification":
            predictions[held_out] = fitted.predict_proba(features[held_out])[:, 1]
            chosen[fold] = last.best_params_["C"]
        else:
            predictions[held_out] = fitted.predict(features[held_out])
            chosen[fold] = last.alpha_
    return predictions, chosen


def metric_on_resamples(metric: str, target, predictions, picks) -> np.ndarray:
    """``metric`` of ``predictions`` against ``target`` on each row of ``picks``.

    ``picks`` (n_resamples, n) holds row indices, one bootstrap resample per
    row (``picks = np.arange(n)[None]`` scores the data as they are). AUC is
    the Mann-Whitney statistic on average ranks (a tie between a positive and
    a negative counts one half), Spearman the correlation of average ranks,
    R^2 one minus the residual over the total sum of squares. Returns an
    array of shape (n_resamples,); NaN where a resample holds one class only
    or a constant column.

    Examples
    --------
    >>> picks = np.random.default_rng(0).integers(len(older), size=(1000, len(older)))
    >>> aucs = metric_on_resamples("auc", older, scores, picks)       # 1000 bootstrap AUCs
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not one of {sorted(METRICS)}.")
    y, p = np.asarray(target, np.float64)[picks], np.asarray(predictions, np.float64)[picks]   # (B, n) each
    n = y.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "auc":
            positives = y.sum(axis=1)
            rank_sum = (rankdata(p, axis=1) * y).sum(axis=1)
            return (rank_sum - positives * (positives + 1) / 2) / (positives * (n - positives))
        if metric == "spearman":
            a, b = rankdata(y, axis=1), rankdata(p, axis=1)
            a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
            return (a * b).sum(axis=1) / np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
        residual = ((y - p) ** 2).sum(axis=1)
        return 1 - residual / ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)


def _resampled(metric: str, target, prediction_sets: dict, n_resamples: int, rng) -> dict:
    """Each prediction set's metric on the same ``n_resamples`` bootstrap resamples of the users."""
    n = len(target)
    out = {name: np.empty(n_resamples) for name in prediction_sets}
    block = max(1, 2_000_000 // n)                     # resamples per block: memory stays bounded
    for start in range(0, n_resamples, block):
        picks = rng.integers(n, size=(min(block, n_resamples - start), n))    # (b, n) user indices
        for name, predictions in prediction_sets.items():
            out[name][start : start + len(picks)] = metric_on_resamples(metric, target, predictions, picks)
    return out


def _check_interval(n_resamples, confidence) -> tuple[int, float]:
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1.")
    return n_resamples, (1 - confidence) / 2


def paired_metric_ci(target, predictions_a, predictions_b, *, metric: str = "auc", n_resamples: int = 1000,
                     confidence: float = 0.95, random_state=0) -> dict:
    """Paired bootstrap interval of ``metric(a) - metric(b)`` over the same users.

    Each resample draws users with replacement and recomputes the metric of
    both prediction sets on exactly those users; the interval is read off
    the resampled differences. If it contains 0, the data cannot tell the two
    feature sets apart.

    Returns
    -------
    dict with ``a``, ``b`` (the metrics on all users), ``diff`` (``a - b``)
    and ``low`` / ``high`` (the interval of the difference).

    Examples
    --------
    >>> pair = paired_metric_ci(older, scores_als, scores_counts, metric="auc")
    >>> pair["low"] > 0          # the ALS vectors' AUC is higher, beyond the noise
    """
    target = np.asarray(target, np.float64)
    a, b = np.asarray(predictions_a, np.float64), np.asarray(predictions_b, np.float64)
    if not (target.ndim == 1 and a.shape == b.shape == target.shape):
        raise ValueError(f"target {target.shape} and both predictions ({a.shape}, {b.shape}) must be 1-D "
                         f"arrays over the same users.")
    if METRICS.get(metric) == "classification":
        _check_target(target, "classification", 1)
    n_resamples, tail = _check_interval(n_resamples, confidence)
    everyone = np.arange(len(target))[None, :]
    value_a, value_b = (metric_on_resamples(metric, target, p, everyone)[0] for p in (a, b))
    resampled = _resampled(metric, target, {"a": a, "b": b}, n_resamples, check_random_state(random_state))
    low, high = np.nanquantile(resampled["a"] - resampled["b"], [tail, 1 - tail])
    return {"a": float(value_a), "b": float(value_b), "diff": float(value_a - value_b),
            "low": float(low), "high": float(high)}


@dataclass
class FeatureComparison:
    """What :func:`compare_feature_sets` measured.

    Attributes
    ----------
    scores : DataFrame indexed by feature set
        Per metric ``M`` (``AUC``, ``Spearman``, ``R2``): ``M`` on all held-out
        users and ``M low`` / ``M high``, its bootstrap interval; then
        ``regularization``, the median C (classification) or alpha
        (regression) that the inner cross-validations chose.
    differences : DataFrame indexed by ``"a - b"``
        Per metric: ``M diff``, ``M low``, ``M high``, the paired interval.
    predictions : dict name -> ndarray of shape (n_users,)
        The held-out predictions, for further comparisons.
    regularization : dict name -> ndarray of shape (n_splits,)
        The strength each outer fold chose, to check that it lies inside
        :data:`LOGISTIC_CS` or :data:`RIDGE_ALPHAS` rather than on an edge.
    """

    scores: pd.DataFrame
    differences: pd.DataFrame
    predictions: dict
    regularization: dict


_LABELS = {"auc": "AUC", "spearman": "Spearman", "r2": "R2"}


def compare_feature_sets(feature_sets: dict, target, *, comparisons, kind: str = "classification",
                         metrics=("auc",), n_splits: int = 5, random_state=0, n_resamples: int = 1000,
                         confidence: float = 0.95) -> FeatureComparison:
    """Score several feature sets on the same folds and compare pairs of them user by user.

    Parameters
    ----------
    feature_sets : dict name -> array of shape (n_users, n_features_of_that_set)
        Rows aligned with ``target``.
    target : array of shape (n_users,)
    comparisons : list of (a, b) pairs of feature-set names
        Each gets a paired interval of ``metric(a) - metric(b)``.
    kind : {"classification", "regression"}
    metrics : tuple of str
        Keys of :data:`METRICS` that fit ``kind``.
    n_splits : int
        Outer folds, the same for every set.
    random_state : None, int or numpy.random.Generator
        Seeds the folds and the bootstrap; the resampled users are the same
        for every set, comparison and metric.
    n_resamples, confidence
        The bootstrap.

    Returns
    -------
    FeatureComparison

    Examples
    --------
    >>> result = compare_feature_sets({"counts": counts, "ALS": als.user_factors}, older,
    ...                               comparisons=[("ALS", "counts")], random_state=0)
    >>> result.differences
    """
    comparisons = [tuple(pair) for pair in comparisons]
    for a, b in comparisons:
        for name in (a, b):
            if name not in feature_sets:
                raise ValueError(f"comparison ({a!r}, {b!r}) names {name!r}, which is not one of the feature sets "
                                 f"{list(feature_sets)}.")
    for metric in metrics:
        if METRICS.get(metric) != kind:
            raise ValueError(f"metric={metric!r} does not score a {kind} target; use one of "
                             f"{[m for m, k in METRICS.items() if k == kind]}.")
    n_resamples, tail = _check_interval(n_resamples, confidence)
    rng = check_random_state(random_state)
    fold_seed, bootstrap_seed = seed_from(rng), seed_from(rng)     # one fold split and one set of resamples for all
    predictions, chosen = {}, {}
    for name, features in feature_sets.items():
        predictions[name], chosen[name] = out_of_fold_predictions(features, target, kind=kind, n_splits=n_splits,
                                                                  random_state=fold_seed)
    target = np.asarray(target, np.float64)
    everyone = np.arange(len(target))[None, :]
    scores = {name: {} for name in feature_sets}
    differences = {f"{a} - {b}": {} for a, b in comparisons}
    for metric in metrics:
        label = _LABELS[metric]
        resampled = _resampled(metric, target, predictions, n_resamples, check_random_state(bootstrap_seed))
        for name, values in resampled.items():
            low, high = np.nanquantile(values, [tail, 1 - tail])
            scores[name].update({label: metric_on_resamples(metric, target, predictions[name], everyone)[0],
                                 f"{label} low": low, f"{label} high": high})
        for a, b in comparisons:
            low, high = np.nanquantile(resampled[a] - resampled[b], [tail, 1 - tail])
            differences[f"{a} - {b}"].update({f"{label} diff": scores[a][label] - scores[b][label],
                                               f"{label} low": low, f"{label} high": high})
    for name in scores:
        scores[name]["regularization"] = float(np.median(chosen[name]))
    scores = pd.DataFrame.from_dict(scores, orient="index").rename_axis("features")
    differences = pd.DataFrame.from_dict(differences, orient="index").rename_axis("comparison")
    return FeatureComparison(scores=scores, differences=differences, predictions=predictions, regularization=chosen)
