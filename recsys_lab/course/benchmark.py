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

RESULTS_DIR = Path(__file__).resolve().parents[2] / "results"


@dataclass(frozen=True)
class BenchmarkEntry:
    """One row of the table: how to build the model and what it is fitted on."""

    name: str
    chapter: str
    implementation: str
    build: Callable[[object], object]            # MovieLens -> unfitted model
    prepare: Callable | None = None              # CSR -> what the model fits on (implicit's confidences)
    fit_kwargs: Callable[[object], dict] | None = None   # MovieLens -> extra fit arguments (features)


# Settings below are the ones each chapter chose on the validation targets.
IALS = dict(factors=64, regularization=10.0, iterations=15)   # chapter 03
IALS_ALPHA = 2.0
ITEM2VEC = dict(window=30, ns_exponent=-0.5, sample=1e-4, min_count=20, epochs=20, half_life=3.0)  # chapter 04


def _text_vectors(ml):
    """MiniLM vectors of each film's title, year and genres (chapter 05), cached on disk."""
    from recsys_lab.features.text import TextEncoder, item_texts

    return TextEncoder().encode(item_texts(ml.items), show_progress=False)


def _movielens_features(ml) -> dict:
    from recsys_lab.features.crosses import movielens_features

    users, items = movielens_features(ml)
    return {"user_features": users, "item_features": items}


def _popularity(ml):
    from recsys_lab.models import Popularity

    return Popularity()


def _als(ml):
    from recsys_lab.models.als import ImplicitALS

    return ImplicitALS(**IALS, alpha=IALS_ALPHA, random_state=0)


def _implicit_als(ml):
    from recsys_lab.models.reference import ImplicitLibrary

    return ImplicitLibrary("als", **IALS, alpha=1.0, random_state=0)  # fitted on 1 + alpha r: the same problem


def _ials_confidence(user_items):
    from recsys_lab.models.als import confidence_matrix

    return confidence_matrix(user_items, IALS_ALPHA)


def _implicit_bpr(ml):
    from recsys_lab.models.reference import ImplicitLibrary

    return ImplicitLibrary("bpr", factors=64, learning_rate=0.01, regularization=0.01, iterations=100, random_state=0)


def _item2vec(ml):
    from recsys_lab.models.item2vec import Item2Vec

    return Item2Vec(64, **ITEM2VEC, random_state=0)


def _text_content(ml):
    from recsys_lab.models.content import ContentRecommender

    return ContentRecommender(_text_vectors(ml), half_life=3.0)


def _dual_embedding(ml):
    from recsys_lab.models.content import DualEmbedding

    return DualEmbedding(_text_vectors(ml), regularization=10.0, alpha=2.0)


def _history_net(ml):
    from recsys_lab.models.history_net import HistoryNet, HistoryNetConfig

    return HistoryNet(_text_vectors(ml), config=HistoryNetConfig(), random_state=0)


def _wide_deep(ml):
    from recsys_lab.models.wide_deep import WideDeep, WideDeepConfig

    return WideDeep(WideDeepConfig(), random_state=0)


def _two_tower(ml):
    from recsys_lab.models.two_tower import TwoTower, TwoTowerConfig

    return TwoTower(TwoTowerConfig(), random_state=0)


def _sasrec(ml):
    from recsys_lab.models.sasrec import SASRec, SASRecConfig

    return SASRec(SASRecConfig(), random_state=0)


def _lightgcn(ml):
    from recsys_lab.models.lightgcn import LightGCN, LightGCNConfig

    return LightGCN(LightGCNConfig(n_layers=3), random_state=0)


def _ease(ml):
    from recsys_lab.models.ease import EASE

    return EASE(150.0)


def _multvae(ml):
    from recsys_lab.models.multvae import MultVAE, MultVAEConfig

    return MultVAE(MultVAEConfig(), random_state=0)


ENTRIES = [
    BenchmarkEntry("Popularity", "00", "recsys_lab", _popularity),
    BenchmarkEntry("iALS", "03", "recsys_lab", _als),
    BenchmarkEntry("iALS", "03", "implicit", _implicit_als, prepare=_ials_confidence),
    BenchmarkEntry("BPR", "03", "implicit", _implicit_bpr),
    BenchmarkEntry("Item2Vec, decayed mean", "04", "recsys_lab + gensim", _item2vec),
    BenchmarkEntry("MiniLM text, decayed profile", "05", "recsys_lab + transformers", _text_content),
    BenchmarkEntry("Dual embedding (text)", "06", "recsys_lab", _dual_embedding),
    BenchmarkEntry("History net (ids + text)", "06", "recsys_lab", _history_net),
    BenchmarkEntry("Wide & deep", "08", "recsys_lab", _wide_deep, fit_kwargs=_movielens_features),
    BenchmarkEntry("Two-tower", "09", "recsys_lab", _two_tower, fit_kwargs=_movielens_features),
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
        extra = entry.fit_kwargs(movielens) if entry.fit_kwargs else {}
        model.fit(entry.prepare(data) if entry.prepare else data, show_progress=show_progress, **extra)
        fit_seconds = time.perf_counter() - started
        row = evaluate(model, split, "test", name=entry.name)
        row.insert(1, "chapter", entry.chapter)
        row.insert(2, "implementation", entry.implementation)
        row["fit seconds"] = fit_seconds
        rows.append(row)
    return pd.concat(rows, ignore_index=True).drop(columns=["split", "eval seconds"])
