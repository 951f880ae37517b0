"""The course's results table: every top-N model on the shared protocol.

``python -m recsys_lab benchmark`` fits each model below with the settings
its chapter chose on validation (``recsys_lab.course.settings``) on the
test history of the shared split (training events plus each user's
validation event, :func:`~recsys_lab.evaluation.refit`'s rule), scores it on
the test targets (a model that stops early first trains on the training
events until its validation NDCG@10 stops improving, then is refitted for
that many epochs), and writes ``results/benchmark.csv`` plus a figure;
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

from recsys_lab.course.settings import chosen
from recsys_lab.data import leave_last_out, load_movielens_100k
from recsys_lab.evaluation import evaluate, refit, validation_ndcg

__all__ = ["BenchmarkEntry", "ENTRIES", "run_benchmark", "RESULTS_DIR", "movielens_feature_kwargs"]

logger = logging.getLogger("recsys_lab")

RESULTS_DIR = Path(__file__).resolve().parents[2] / "results"


@dataclass(frozen=True)
class BenchmarkEntry:
    """One row of the table: how to build the model and what it is fitted on."""

    name: str
    chapter: str
    implementation: str
    build: Callable[[object], object]            # MovieLens -> unfitted model
    fit_kwargs: Callable[[object], dict] | None = None   # MovieLens -> extra fit arguments (features)


def _text_vectors(ml):
    """MiniLM vectors of each film's title, year and genres (chapter 05), cached on disk."""
    from recsys_lab.features.text import TextEncoder, item_texts

    return TextEncoder().encode(item_texts(ml.items), show_progress=False)


def movielens_feature_kwargs(ml) -> dict:
    """The fit arguments of the models that read side features: MovieLens's user and item fields (chapter 08)."""
    from recsys_lab.features.crosses import movielens_features

    users, items = movielens_features(ml)
    return {"user_features": users, "item_features": items}


def _popularity(ml):
    from recsys_lab.models import Popularity

    return Popularity()


def _als(ml):
    from recsys_lab.models.als import ImplicitALS

    return ImplicitALS(**chosen("ials"), random_state=0)


def _implicit_als(ml):
    from recsys_lab.models.reference import ImplicitLibrary

    # implicit weighs an interaction by alpha * r, ours by 1 + alpha * r: on 0/1 data the same problem
    # when implicit's alpha is 1 + ours
    params = chosen("ials")
    return ImplicitLibrary("als", **{**params, "alpha": 1.0 + params["alpha"]}, random_state=0)


def _spark_als(ml):
    from recsys_lab.scale.spark import SparkALS, spark_regularization

    # Spark scales the penalty by each user's count (ALS-WR): chapter 14 maps lambda to the average
    # user of the events the model is fitted on; fitting with no Spark session running starts a local
    # one (JVM included, so its start-up counts in the fit time) and stops it afterwards
    params = chosen("ials")
    fitted_on = leave_last_out(ml.interactions).history("test").user_items
    return SparkALS(params["factors"], regularization=spark_regularization(params["regularization"], fitted_on),
                    alpha=params["alpha"], iterations=params["iterations"], random_state=0)


def _implicit_bpr(ml):
    from recsys_lab.models.reference import ImplicitLibrary

    return ImplicitLibrary("bpr", **chosen("bpr_implicit"), random_state=0)


def _item2vec(ml):
    from recsys_lab.models.item2vec import Item2Vec

    return Item2Vec(**chosen("item2vec"), random_state=0)


def _text_content(ml):
    from recsys_lab.models.content import ContentRecommender

    return ContentRecommender(_text_vectors(ml), **chosen("text_profile"))


def _dual_embedding(ml):
    from recsys_lab.models.content import DualEmbedding

    return DualEmbedding(_text_vectors(ml), **chosen("dual_embedding"))


def _history_net(ml):
    from recsys_lab.models.history_net import HistoryNet, HistoryNetConfig

    return HistoryNet(_text_vectors(ml), config=HistoryNetConfig(**chosen("history_net")), random_state=0)


def _wide_deep(ml):
    from recsys_lab.models.wide_deep import WideDeep, WideDeepConfig

    return WideDeep(WideDeepConfig(**chosen("wide_deep")), random_state=0)


def _two_tower(ml):
    from recsys_lab.models.two_tower import TwoTower, TwoTowerConfig

    return TwoTower(TwoTowerConfig(**chosen("two_tower")), random_state=0)


def _sasrec(ml):
    from recsys_lab.models.sasrec import SASRec, SASRecConfig

    return SASRec(SASRecConfig(**chosen("sasrec")), random_state=0)


def _lightgcn(ml):
    from recsys_lab.models.lightgcn import LightGCN, LightGCNConfig

    return LightGCN(LightGCNConfig(**chosen("lightgcn")), random_state=0)


def _ease(ml):
    from recsys_lab.models.ease import EASE

    return EASE(**chosen("ease"))


def _multvae(ml):
    from recsys_lab.models.multvae import MultVAE, MultVAEConfig

    return MultVAE(MultVAEConfig(**chosen("multvae")), random_state=0)


ENTRIES = [
    BenchmarkEntry("Popularity", "00", "recsys_lab", _popularity),
    BenchmarkEntry("iALS", "03", "recsys_lab", _als),
    BenchmarkEntry("iALS", "03", "implicit", _implicit_als),
    BenchmarkEntry("BPR", "03", "implicit", _implicit_bpr),
    BenchmarkEntry("Item2Vec, decayed mean", "04", "recsys_lab + gensim", _item2vec),
    BenchmarkEntry("MiniLM text, decayed profile", "05", "recsys_lab + transformers", _text_content),
    BenchmarkEntry("Dual embedding (text)", "06", "recsys_lab", _dual_embedding),
    BenchmarkEntry("History net (ids + text)", "06", "recsys_lab", _history_net),
    BenchmarkEntry("Wide & deep", "08", "recsys_lab", _wide_deep, fit_kwargs=movielens_feature_kwargs),
    BenchmarkEntry("Two-tower", "09", "recsys_lab", _two_tower, fit_kwargs=movielens_feature_kwargs),
    BenchmarkEntry("SASRec", "10", "recsys_lab", _sasrec),
    BenchmarkEntry("LightGCN", "12", "recsys_lab", _lightgcn),
    BenchmarkEntry("EASE", "12", "recsys_lab", _ease),
    BenchmarkEntry("Mult-VAE", "12", "recsys_lab", _multvae),
    BenchmarkEntry("iALS", "14", "pyspark", _spark_als),
]


def _stop_early_then_refit(model, split, *, show_progress: bool, **fit_kwargs):
    """Choose the epochs by early stopping on the validation targets, then refit on the test history."""
    model.fit(split.train.user_items, show_progress=show_progress, on_epoch_end=validation_ndcg(split), **fit_kwargs)
    return refit(model, split, show_progress=show_progress, **fit_kwargs)


def run_benchmark(entries=ENTRIES, *, show_progress: bool = False) -> pd.DataFrame:
    """Fit every entry on the test history and score it on the test targets.

    Returns one row per entry: model, chapter, implementation, HR@10,
    NDCG@10, MRR with their 95% intervals, catalogue coverage, mean
    popularity of the recommended items, and fit seconds.
    """
    movielens = load_movielens_100k()
    split = leave_last_out(movielens.interactions)
    rows = []
    for entry in entries:
        logger.info("benchmark: fitting %s (%s)", entry.name, entry.implementation)
        model = entry.build(movielens)
        started = time.perf_counter()
        extra = entry.fit_kwargs(movielens) if entry.fit_kwargs else {}
        if getattr(getattr(model, "cfg", None), "patience", None) is not None:
            model = _stop_early_then_refit(model, split, show_progress=show_progress, **extra)
        else:
            history = split.history("test")
            model.fit(history if model.needs_order else history.user_items, show_progress=show_progress, **extra)
        fit_seconds = time.perf_counter() - started
        row = evaluate(model, split, "test", name=entry.name)
        row.insert(1, "chapter", entry.chapter)
        row.insert(2, "implementation", entry.implementation)
        row["fit seconds"] = fit_seconds
        rows.append(row)
    return pd.concat(rows, ignore_index=True).drop(columns=["split", "eval seconds"])
