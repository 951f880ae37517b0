"""Hyperparameter search on the validation targets with Optuna.

Tuning is part of the protocol: every setting is chosen on the validation
targets with models fitted on ``split.train``, and only then is the model
refit and scored on test. :func:`tune` runs Optuna's TPE sampler (seeded,
so a study repeats) over a search space, with a wall-clock budget, and
prunes unpromising trials of models trained in epochs (those whose ``fit``
accepts ``on_epoch_end``). It reports which chosen values sit on the edge of
their range: an optimum on an edge means "search further", not "found".

Optuna is imported here; ``import recsys_lab.evaluation`` does not import it.

>>> space = {"regularization": FloatParam(0.1, 1000.0, log=True)}
>>> result = tune(lambda **p: EASE(**p), space, split, n_trials=20, random_state=0)
>>> result.best_params, result.on_edge
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable

import optuna

from recsys_lab.data.splits import LeaveLastOutSplit
from recsys_lab.evaluation.protocol import validation_ndcg
from recsys_lab.validation import check_positive_int, seed_from

__all__ = ["FloatParam", "IntParam", "Choice", "TuningResult", "tune", "edge_params"]

EDGE_SHARE = 0.1  # a value in the outer 10% of its range (on its own scale) counts as "on the edge"


@dataclass(frozen=True)
class FloatParam:
    """A float between ``low`` and ``high``; ``log=True`` searches its logarithm (for penalties, rates)."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class IntParam:
    """An integer between ``low`` and ``high`` (inclusive); ``log=True`` for sizes such as factors."""

    low: int
    high: int
    log: bool = False

    def suggest(self, trial, name):
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of a few values (a pooling, a loss, a number of layers)."""

    values: tuple

    def suggest(self, trial, name):
        return trial.suggest_categorical(name, list(self.values))


@dataclass
class TuningResult:
    """What a search found: the best settings, their validation NDCG@10, and the study itself."""

    best_params: dict
    best_value: float
    n_trials: int
    on_edge: list[str]
    study: object = field(repr=False)


def edge_params(best_params: dict, space: dict) -> list[str]:
    """Names of numeric parameters whose chosen value lies in the outer ``EDGE_SHARE`` of their range."""
    edges = []
    for name, param in space.items():
        if not isinstance(param, (FloatParam, IntParam)) or name not in best_params:
            continue
        scale = math.log if param.log else (lambda v: v)
        low, high, value = scale(param.low), scale(param.high), scale(best_params[name])
        position = (value - low) / (high - low) if high > low else 0.5
        if position <= EDGE_SHARE or position >= 1 - EDGE_SHARE:
            edges.append(name)
    return edges


def tune(build: Callable[..., object], space: dict, split: LeaveLastOutSplit, *, n_trials: int = 30,
         timeout: float | None = None, fixed: dict | None = None, fit_kwargs: dict | None = None,
         random_state=0, storage: str | None = None, study_name: str | None = None,
         show_progress: bool = False) -> TuningResult:
    """Search ``space`` for the settings with the best validation NDCG@10 (full ranking).

    Parameters
    ----------
    build : callable
        ``build(**params)`` returns an unfitted model (a ``Recommender``).
    space : dict of str to FloatParam, IntParam or Choice
        What to search; names are ``build``'s keyword arguments.
    split : LeaveLastOutSplit
        Models are fitted on ``split.train`` and scored on the validation targets.
    n_trials : int
        Most trials to run.
    timeout : float, optional
        Wall-clock budget in seconds; the study stops after the trial running when it is spent.
    fixed : dict, optional
        Settings passed to ``build`` in every trial (for example ``iterations``).
    fit_kwargs : dict, optional
        Extra arguments of the model's ``fit`` (features).
    random_state : None, int or Generator
        Seeds the TPE sampler, so the same call proposes the same trials.
    storage, study_name : str, optional
        An Optuna storage URL (``"sqlite:///study.db"``) to keep the study for later reading.

    Returns
    -------
    TuningResult

    References
    ----------
    Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019;
    Bergstra et al., "Algorithms for Hyper-Parameter Optimization" (TPE), NeurIPS 2011.
    """
    if not isinstance(split, LeaveLastOutSplit):
        raise TypeError(f"split must come from leave_last_out(), got {type(split).__name__}.")
    if not space:
        raise ValueError("space is empty: give at least one parameter to search.")
    for name, param in space.items():
        if not isinstance(param, (FloatParam, IntParam, Choice)):
            raise TypeError(f"space[{name!r}] is a {type(param).__name__}; use FloatParam, IntParam or Choice.")
    n_trials = check_positive_int(n_trials, "n_trials")
    fixed, fit_kwargs = dict(fixed or {}), dict(fit_kwargs or {})

    score = validation_ndcg(split)

    def objective(trial) -> float:
        model = build(**fixed, **{name: param.suggest(trial, name) for name, param in space.items()})
        data = split.train if getattr(model, "needs_order", False) else split.train.user_items
        extra = dict(fit_kwargs)
        if "on_epoch_end" in inspect.signature(model.fit).parameters:
            extra["on_epoch_end"] = _pruning_callback(trial, score)
        model.fit(data, show_progress=False, **extra)
        return score(model)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed_from(random_state)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
        storage=storage, study_name=study_name, load_if_exists=storage is not None,
    )
    study.optimize(objective, n_trials=n_trials, timeout=timeout, show_progress_bar=show_progress)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not finished:
        raise RuntimeError("no trial finished: raise the timeout or check that the model fits on split.train.")
    best = {**fixed, **study.best_params}
    return TuningResult(best_params=best, best_value=float(study.best_value), n_trials=len(study.trials),
                        on_edge=edge_params(study.best_params, space), study=study)


def _pruning_callback(trial, score):
    """An ``on_epoch_end(model)`` that reports ``score(model)`` and stops a trial that trails the median."""
    epoch = {"n": 0}

    def on_epoch_end(model) -> float:
        value = score(model)
        trial.report(value, epoch["n"])
        epoch["n"] += 1
        if trial.should_prune():
            raise optuna.TrialPruned()
        return value

    return on_epoch_end

