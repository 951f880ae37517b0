"""The course's search spaces, and how a finished search is written into the settings home.

``python -m recsys_lab tune NAME`` (``make tune`` for all of them) runs
:func:`recsys_lab.evaluation.tuning.tune` for one entry below on the
MovieLens validation targets and records the result in
``chosen_settings.json``: the chosen parameters, the search space, the
number of trials, the best validation NDCG@10 and the parameters whose
choice sits on the edge of their range (widen that range and search again).
Ranges are on log scales where the effect is multiplicative (penalties,
rates, sizes).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Callable

from recsys_lab.course.benchmark import movielens_feature_kwargs
from recsys_lab.course.settings import SETTINGS_PATH
from recsys_lab.data import load_movielens_100k
from recsys_lab.evaluation.tuning import Choice, FloatParam, IntParam, TuningResult, tune

__all__ = ["TuningTask", "TASKS", "run_task", "record"]


@dataclass(frozen=True)
class TuningTask:
    """One model's search: how to build it from settings, what to search, what stays fixed."""

    build: Callable[..., object]
    space: dict
    fixed: dict = field(default_factory=dict)
    n_trials: int = 40
    timeout: float = 1800.0   # seconds per model on a 2-core CPU
    fit_kwargs: Callable[[object], dict] | None = None   # MovieLens -> extra fit arguments (features), as in the benchmark


def _ials(**params):
    from recsys_lab.models.als import ImplicitALS

    return ImplicitALS(**params, random_state=0)


def _bpr(**params):
    from recsys_lab.models.reference import ImplicitLibrary

    return ImplicitLibrary("bpr", **params, random_state=0)


def _ease(**params):
    from recsys_lab.models.ease import EASE

    return EASE(**params)


def _lightgcn(**params):
    from recsys_lab.models.lightgcn import LightGCN, LightGCNConfig

    return LightGCN(LightGCNConfig(**params), random_state=0)


def _multvae(**params):
    from recsys_lab.models.multvae import MultVAE, MultVAEConfig

    return MultVAE(MultVAEConfig(**params), random_state=0)


def _wide_deep(**params):
    from recsys_lab.models.wide_deep import WideDeep, WideDeepConfig

    return WideDeep(WideDeepConfig(**params), random_state=0)


def _sasrec(**params):
    from recsys_lab.models.sasrec import SASRec, SASRecConfig

    return SASRec(SASRecConfig(**params), random_state=0)


TASKS = {
    "ials": TuningTask(_ials, {"factors": IntParam(16, 512, log=True),
                               "regularization": FloatParam(1e-2, 1e4, log=True),
                               "alpha": FloatParam(0.1, 100.0, log=True)}, fixed={"iterations": 15}),
    "bpr_implicit": TuningTask(_bpr, {"factors": IntParam(16, 256, log=True),
                                      "learning_rate": FloatParam(1e-3, 0.3, log=True),
                                      "regularization": FloatParam(1e-5, 1.0, log=True),
                                      "iterations": IntParam(50, 800, log=True)}),
    "ease": TuningTask(_ease, {"regularization": FloatParam(1.0, 1e5, log=True)}, n_trials=25),
    "lightgcn": TuningTask(_lightgcn, {"factors": IntParam(32, 256, log=True), "n_layers": Choice((1, 2, 3, 4)),
                                       "lr": FloatParam(1e-4, 3e-2, log=True), "l2": FloatParam(1e-6, 1e-2, log=True)},
                           fixed={"epochs": 200}),
    "multvae": TuningTask(_multvae, {"hidden": IntParam(100, 1000, log=True), "latent": IntParam(32, 400, log=True),
                                     "dropout": FloatParam(0.1, 0.8), "beta_max": FloatParam(0.01, 1.0, log=True),
                                     "lr": FloatParam(1e-4, 1e-2, log=True)}, fixed={"epochs": 200}),
    "wide_deep": TuningTask(_wide_deep, {"loss": Choice(("logistic", "softmax")), "dot": Choice((False, True)),
                                         "embedding_dim": IntParam(8, 64, log=True),
                                         "negatives": IntParam(2, 32, log=True), "lr": FloatParam(1e-3, 3e-2, log=True),
                                         "weight_decay": FloatParam(1e-8, 1e-4, log=True)},
                            fixed={"epochs": 40, "patience": 5}, n_trials=30, fit_kwargs=movielens_feature_kwargs),
    "sasrec": TuningTask(_sasrec, {"factors": Choice((32, 64, 128)), "n_blocks": Choice((1, 2, 3)),
                                   "dropout": FloatParam(0.0, 0.6), "lr": FloatParam(3e-4, 1e-2, log=True),
                                   "max_len": Choice((50, 100, 200))}, fixed={"epochs": 60}, n_trials=25),
}


def run_task(name: str, split, *, n_trials: int | None = None, timeout: float | None = None,
             show_progress: bool = False) -> TuningResult:
    """Run the search of ``TASKS[name]`` on ``split`` (trial count and budget default to the task's)."""
    if name not in TASKS:
        raise KeyError(f"no search space for {name!r}; known: {sorted(TASKS)}.")
    task = TASKS[name]
    return tune(task.build, task.space, split, n_trials=n_trials or task.n_trials,
                timeout=timeout or task.timeout, fixed=task.fixed, random_state=0, show_progress=show_progress,
                fit_kwargs=task.fit_kwargs(load_movielens_100k()) if task.fit_kwargs else None)


def record(name: str, result: TuningResult, *, path=SETTINGS_PATH) -> dict:
    """Write a finished search into the settings home (atomically) and return the new entry."""
    with open(path, encoding="utf-8") as file:
        entries = json.load(file)
    entry = entries.get(name, {})
    entry.update({
        "params": result.best_params,
        "chosen_by": "Optuna TPE on validation NDCG@10 (python -m recsys_lab tune)",
        "search_space": {key: {"kind": type(param).__name__, **asdict(param)} for key, param in TASKS[name].space.items()},
        "n_trials": result.n_trials,
        "best_valid_ndcg@10": round(result.best_value, 6),
        "on_edge": result.on_edge,
    })
    entries[name] = entry
    handle, staging = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(entries, file, indent=2)
        file.write("\n")
    os.replace(staging, path)
    return entry
