"""The course's results table: every top-N model on the shared protocol.

``python -m recsys_lab benchmark`` fits each model below on the MovieLens
training split with the settings its chapter tuned on validation, scores it
on the test targets, and writes ``results/benchmark.csv`` plus a figure;
``python -m recsys_lab report`` renders both into the README. Reference
implementations (the ``implicit`` library) run beside ours in the same
process, so their times are comparable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from recsys_lab.data import leave_last_out, load_movielens_100k
from recsys_lab.evaluation import evaluate

__all__ = ["BenchmarkEntry", "ENTRIES", "run_benchmark", "RESULTS_DIR"]

logger = logging.getLogger("recsys_lab")

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


@dataclass(frozen=True)
class BenchmarkEntry:
    """One row of the table: how to build the model and what it is fitted on."""

    name: str
    chapter: str
    implementation: str
    build: Callable[[object], object]   # MovieLens -> unfitted model
    prepare: Callable | None = None     # CSR -> what the model fits on (e.g. implicit's confidences)


def _popularity(ml):
    from recsys_lab.models import Popularity

    return Popularity()


# iALS as tuned on validation in chapter 03; implicit gets the same problem (its alpha=1 on 1 + alpha r)
IALS = dict(factors=64, regularization=10.0, iterations=15)
IALS_ALPHA = 2.0


def _als(ml):
    from recsys_lab.models.als import ImplicitALS

    return ImplicitALS(**IALS, alpha=IALS_ALPHA, random_state=0)


def _implicit_als(ml):
    from recsys_lab.models.reference import ImplicitLibrary

    return ImplicitLibrary("als", **IALS, alpha=1.0, random_state=0)


def _ials_confidence(user_items):
    from recsys_lab.models.als import confidence_matrix

    return confidence_matrix(user_items, IALS_ALPHA)


def _implicit_bpr(ml):
    from recsys_lab.models.reference import ImplicitLibrary

    return ImplicitLibrary("bpr", factors=64, learning_rate=0.01, regularization=0.01, iterations=100, random_state=0)


def _lightgcn(ml):
    from recsys_lab.models.lightgcn import LightGCN, LightGCNConfig

    return LightGCN(LightGCNConfig(n_layers=3), random_state=0)


def _ease(ml):
    from recsys_lab.models.ease import EASE

    return EASE(150.0)  # lambda chosen on validation in chapter 12


def _multvae(ml):
    from recsys_lab.models.multvae import MultVAE, MultVAEConfig

    return MultVAE(MultVAEConfig(), random_state=0)


def _sasrec(ml):
    from recsys_lab.models.sasrec import SASRec

    return SASRec(random_state=0)


ENTRIES = [
    BenchmarkEntry("Popularity", "00", "recsys_lab", _popularity),
    BenchmarkEntry("iALS", "03", "recsys_lab", _als),
    BenchmarkEntry("iALS", "03", "implicit", _implicit_als, prepare=_ials_confidence),
    BenchmarkEntry("BPR", "03", "implicit", _implicit_bpr),
    BenchmarkEntry("SASRec", "10", "recsys_lab", _sasrec),
    BenchmarkEntry("LightGCN", "12", "recsys_lab", _lightgcn),
    BenchmarkEntry("EASE", "12", "recsys_lab", _ease),
    BenchmarkEntry("Mult-VAE", "12", "recsys_lab", _multvae),
]


def run_benchmark(entries=ENTRIES, *, show_progress: bool = False) -> pd.DataFrame:
    """Fit and score every entry on the shared protocol (test targets).

    Returns one row per entry: model, chapter, implementation, HR@10,
    NDCG@10, MRR with their 95% intervals, and fit seconds.
    """
    movielens = load_movielens_100k()
    split = leave_last_out(movielens.interactions)
    rows = []
    for entry in entries:
        logger.info("benchmark: fitting %s (%s)", entry.name, entry.implementation)
        model = entry.build(movielens)
        started = time.perf_counter()
        data = split.train if model.needs_order else split.train.user_items
        model.fit(entry.prepare(data) if entry.prepare else data, show_progress=show_progress)
        fit_seconds = time.perf_counter() - started
        row = evaluate(model, split, "test", name=entry.name)
        row.insert(1, "chapter", entry.chapter)
        row.insert(2, "implementation", entry.implementation)
        row["fit seconds"] = fit_seconds
        rows.append(row)
    return pd.concat(rows, ignore_index=True).drop(columns=["split", "eval seconds"])
