"""The shared top-N protocol: full ranking on a leave-last-out split.

``rank_targets`` ranks each user's held-out item against every item the user
has not interacted with, in chunks of users so a 100k x 100k problem never
materialises a full score matrix; ``evaluate`` turns the ranks into one tidy
row with bootstrap intervals, catalogue coverage and the popularity of what
is recommended, so tables from every chapter line up.

The protocol in four rules, the same for every chapter and the results table:

1. tune on the validation targets with models fitted on ``split.train``;
2. :func:`refit` the chosen model on ``split.history("test")`` (train plus
   the validation events) and only then score the test targets, so every
   model sees the same events for the same target; the evaluator refuses a
   model fitted on other events than the ones it is scored with; a model
   stopped early on the validation targets is refitted for the epochs it
   chose;
3. a tie with the target counts against it (:func:`target_ranks`);
4. "A beats B" only where a paired bootstrap interval of the difference
   excludes zero (:func:`~recsys_lab.evaluation.paired_bootstrap_ci`).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsys_lab.data.interactions import Interactions, interaction_fingerprint
from recsys_lab.data.splits import LeaveLastOutSplit
from recsys_lab.evaluation.bootstrap import bootstrap_ci
from recsys_lab.evaluation.metrics import hit_rate, ndcg, reciprocal_rank, target_ranks, top_k
from recsys_lab.validation import check_positive_int

__all__ = ["rank_targets", "summarize_ranks", "evaluate", "refit", "refit_on", "check_fitted_on", "beyond_accuracy", "validation_ndcg"]

SCORE_BUDGET = 32_000_000  # floats per scoring chunk (256 MB in float64)


def validation_ndcg(split: LeaveLastOutSplit, k: int = 10):
    """An ``on_epoch_end(model)`` callback for models trained in epochs: mean NDCG@k on the validation targets.

    Rule 1 in a function: the metric every epoch is judged by is the
    full-ranking one on ``split``'s validation targets. With ``patience`` in
    the model's config, ``fit`` then stops once it stops improving and
    keeps the best epoch, and :func:`refit` trains that many epochs.
    """
    if not isinstance(split, LeaveLastOutSplit):
        raise TypeError(f"split must be a LeaveLastOutSplit (from leave_last_out), got {type(split).__name__}.")
    k = check_positive_int(k, "k")

    def on_epoch_end(model) -> float:
        return float(ndcg(rank_targets(model, split, "valid")["rank"].to_numpy(), k).mean())

    return on_epoch_end


def refit(model, split: LeaveLastOutSplit, on: str = "test", *, show_progress: bool = False, **fit_kwargs):
    """A fresh copy of ``model``, with the same settings, fitted on ``split.history(on)``.

    The step between tuning and reporting: settings are chosen on the
    validation targets with models fitted on ``split.train``; the test
    targets are then scored by a model refitted on the training events plus
    each user's validation event, exactly the events every other model sees
    for the same target.

    A model trained with early stopping (its ``history_.best_epoch`` is
    set) chose its number of epochs on the validation targets; the refit
    trains exactly that many, since no validation target is left to stop on.

    Parameters
    ----------
    model : Recommender
        Fitted or not; its ``get_params()`` are used, and its
        ``history_.best_epoch`` where it stopped early.
    split : LeaveLastOutSplit
    on : {"test", "valid"}
    **fit_kwargs
        Extra arguments of the model's ``fit`` (for example ``user_features``).

    Examples
    --------
    >>> tuned = ImplicitALS(64, regularization=10.0).fit(split.train.user_items)   # chosen on "valid"
    >>> evaluate(refit(tuned, split), split, "test")
    """
    _check_split(split)
    return refit_on(model, split.history(on), show_progress=show_progress, **fit_kwargs)


def refit_on(model, history: Interactions, *, show_progress: bool = False, **fit_kwargs):
    """A fresh copy of ``model``, with the same settings, fitted on any ``history``.

    :func:`refit` for a history that is not one of the split's, such as the
    rolled-back history a second-stage ranker learns from
    (:func:`recsys_lab.data.roll_back`). Early-stopped models train the
    ``history_.best_epoch`` epochs they stopped at.

    >>> rolled = roll_back(split.train, n_targets=5)
    >>> features_model = refit_on(tuned, rolled.history)
    """
    if not isinstance(history, Interactions):
        raise TypeError(f"history must be an Interactions (for example split.train), got {type(history).__name__}.")
    params = model.get_params()
    best_epoch = getattr(getattr(model, "history_", None), "best_epoch", None)
    if best_epoch is not None:
        params["config"] = dataclasses.replace(model.cfg, epochs=best_epoch)
    fresh = type(model)(**params)
    data = history if getattr(fresh, "needs_order", False) else history.user_items
    return fresh.fit(data, show_progress=show_progress, **fit_kwargs)


def check_fitted_on(model, split: LeaveLastOutSplit, on: str) -> None:
    """Raise unless ``model`` was fitted on exactly ``split.history(on)`` (when it records what it saw)."""
    fitted_on = getattr(model, "fitted_on_", None)
    if fitted_on is not None and fitted_on != interaction_fingerprint(split.history(on)):
        hint = ("refit it on split.history('test') with recsys_lab.evaluation.refit(model, split)" if on == "test"
                else "fit it on split.train to tune on the validation targets")
        raise ValueError(f"{type(model).__name__} was fitted on other events than the history of the {on!r} targets: "
                         f"{hint}, so that every model sees the same events for the same target.")


def rank_targets(model, split: LeaveLastOutSplit, on: str = "test", *, show_progress: bool = False,
                 return_top: int | None = None):
    """Full-ranking rank of every evaluated user's ``on`` target.

    Returns a frame with one row per evaluated user: ``user`` (row index),
    ``item`` (target column) and ``rank`` (1 = best; a tie counts against
    the target). With ``return_top=k`` also each user's top-``k`` list
    (unseen items only), shape (n_evaluated, k), as a second value.
    """
    _check_split(split)
    check_fitted_on(model, split, on)
    targets = split.targets(on)
    history = split.history(on)
    users = np.flatnonzero(targets >= 0)
    if model.n_items != history.n_items:
        raise ValueError(f"the model knows {model.n_items} items, the split {history.n_items}; fit it on split.train.")
    seen = history.user_items
    chunk = max(1, SCORE_BUDGET // history.n_items)
    ranks = np.empty(len(users), dtype=np.int64)
    top = None if return_top is None else np.empty((len(users), check_positive_int(return_top, "return_top")), np.int64)
    for start in tqdm(range(0, len(users), chunk), disable=not show_progress, desc=f"ranking ({on})"):
        block = users[start : start + chunk]
        scores = np.asarray(model.score_items(block, history), dtype=np.float64)
        if not np.isfinite(scores).all():
            raise FloatingPointError(f"{type(model).__name__} produced NaN or infinite scores.")
        ranks[start : start + len(block)] = target_ranks(scores, targets[block], seen[block])
        if top is not None:
            scores[seen[block].nonzero()] = -np.inf
            top[start : start + len(block)] = top_k(scores, return_top)
    frame = pd.DataFrame({"user": users, "item": targets[users], "rank": ranks})
    return frame if top is None else (frame, top)


def beyond_accuracy(top: np.ndarray, split: LeaveLastOutSplit, on: str, *, k: int = 10) -> dict:
    """Catalogue coverage of the top-``k`` lists and the mean popularity of the items in them.

    Coverage is the share of the catalogue that appears in at least one
    list; popularity is the mean number of users in ``split.history(on)``
    who interacted with a recommended item (popularity's own lists set the
    upper end). Accuracy alone rewards recommending what everyone already
    knows; these two numbers show how much a model does.
    """
    history = split.history(on).user_items
    item_popularity = np.asarray(history.getnnz(axis=0), dtype=np.float64)
    shown = top[:, :k]
    return {f"coverage@{k}": len(np.unique(shown)) / history.shape[1],
            f"popularity@{k}": float(item_popularity[shown].mean())}


def summarize_ranks(ranks, *, k: int = 10, n_resamples: int = 1000, random_state=0) -> dict:
    """HR@k, NDCG@k and MRR with 95% bootstrap intervals, as a flat dict."""
    k = check_positive_int(k, "k")
    ranks = np.asarray(ranks)
    row = {"users": len(ranks)}
    for name, values in (
        (f"HR@{k}", hit_rate(ranks, k)),
        (f"NDCG@{k}", ndcg(ranks, k)),
        ("MRR", reciprocal_rank(ranks)),
    ):
        low, high = bootstrap_ci(values, n_resamples=n_resamples, random_state=random_state)
        row.update({name: values.mean(), f"{name} low": low, f"{name} high": high})
    return row


def evaluate(model, split: LeaveLastOutSplit, on: str = "test", *, k: int = 10, name: str | None = None,
             show_progress: bool = False, random_state=0) -> pd.DataFrame:
    """Score ``model`` on the shared protocol: a one-row frame of metrics.

    HR@k, NDCG@k and MRR with 95% bootstrap intervals over users, then
    catalogue coverage and mean training popularity of the top-k lists. The
    model must be fitted on ``split.history(on)``: on ``split.train`` to
    tune on ``on="valid"``; refitted with :func:`refit` to report
    ``on="test"`` once, at the end.

    Examples
    --------
    >>> evaluate(Popularity().fit(split.train.user_items), split, "valid")
    >>> evaluate(refit(model, split), split, "test")
    """
    started = time.perf_counter()
    ranks, top = rank_targets(model, split, on, show_progress=show_progress, return_top=k)
    row = {"model": name or type(model).__name__, "split": on}
    row.update(summarize_ranks(ranks["rank"], k=k, random_state=random_state))
    row.update(beyond_accuracy(top, split, on, k=k))
    row["eval seconds"] = time.perf_counter() - started
    return pd.DataFrame([row])


def _check_split(split) -> None:
    if not isinstance(split, LeaveLastOutSplit):
        raise TypeError(f"split must come from leave_last_out(), got {type(split).__name__}.")
