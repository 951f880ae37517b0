"""The shared top-N protocol: full ranking on a leave-last-out split.

``rank_targets`` ranks each user's held-out item against every item the user
has not interacted with, in chunks of users so a 100k x 100k problem never
materialises a full score matrix; ``evaluate`` turns the ranks into one tidy
row with bootstrap intervals, so tables from every chapter line up.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsys_lab.data.splits import LeaveLastOutSplit
from recsys_lab.evaluation.bootstrap import bootstrap_ci
from recsys_lab.evaluation.metrics import hit_rate, ndcg, reciprocal_rank, target_ranks
from recsys_lab.validation import check_positive_int

__all__ = ["rank_targets", "summarize_ranks", "evaluate"]

SCORE_BUDGET = 32_000_000  # floats per scoring chunk (256 MB in float64)


def rank_targets(model, split: LeaveLastOutSplit, on: str = "test", *, show_progress: bool = False) -> pd.DataFrame:
    """Full-ranking rank of every evaluated user's ``on`` target.

    Returns a frame with one row per evaluated user: ``user`` (row index),
    ``item`` (target column) and ``rank`` (1 = best).
    """
    if not isinstance(split, LeaveLastOutSplit):
        raise TypeError(f"split must come from leave_last_out(), got {type(split).__name__}.")
    targets = split.targets(on)
    history = split.history(on)
    users = np.flatnonzero(targets >= 0)
    if model.n_items != history.n_items:
        raise ValueError(f"the model knows {model.n_items} items, the split {history.n_items}; fit it on split.train.")
    seen = history.user_items
    chunk = max(1, SCORE_BUDGET // history.n_items)
    ranks = np.empty(len(users), dtype=np.int64)
    for start in tqdm(range(0, len(users), chunk), disable=not show_progress, desc=f"ranking ({on})"):
        block = users[start : start + chunk]
        scores = np.asarray(model.score_items(block, history), dtype=np.float64)
        if not np.isfinite(scores).all():
            raise FloatingPointError(f"{type(model).__name__} produced NaN or infinite scores.")
        ranks[start : start + len(block)] = target_ranks(scores, targets[block], seen[block])
    return pd.DataFrame({"user": users, "item": targets[users], "rank": ranks})


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

    The model must already be fitted on ``split.train``. Tune on
    ``on="valid"``; report ``on="test"`` once, at the end.

    Examples
    --------
    >>> evaluate(Popularity().fit(split.train.user_items), split)
    """
    started = time.perf_counter()
    ranks = rank_targets(model, split, on, show_progress=show_progress)
    row = {"model": name or type(model).__name__, "split": on}
    row.update(summarize_ranks(ranks["rank"], k=k, random_state=random_state))
    row["eval seconds"] = time.perf_counter() - started
    return pd.DataFrame([row])
