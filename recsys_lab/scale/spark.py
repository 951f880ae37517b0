"""Spark MLlib's ALS behind the course's recommender interface.

MLlib's ALS (Zhou et al., 2008; Meng et al., 2016) splits users and items
into blocks; each iteration ships every item block's vectors to the user
blocks that rated one of its items, solves the users' normal equations
exactly (Cholesky), then does the same the other way
(:mod:`recsys_lab.scale.cost` counts what it ships).

:class:`SparkALS` wraps it so that ``evaluate``, ``recommend`` and the
embedding store work on it unchanged: ``fit`` takes the course's CSR matrix
(or a Spark DataFrame that already lives on the cluster) and pulls the
learned factors back into ``user_factors`` / ``item_factors``. The session
helpers of :mod:`recsys_lab.scale.session` are re-exported here, so one
import serves a notebook. Importing this module imports pyspark;
``import recsys_lab`` does not.

>>> spark = spark_session("local[2]")
>>> model = SparkALS(64, regularization=0.1, alpha=2.0, random_state=0).fit(train.user_items)
>>> stop_spark(spark)   # stops Spark and its JVM
"""

from __future__ import annotations

import contextlib
import logging
import time

import numpy as np
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from tqdm.auto import tqdm

from recsys_lab.models.base import FactorRecommender
from recsys_lab.scale.session import VECTOR_MODULE_FLAG, java_home, spark_session, stop_spark, to_spark_frame
from recsys_lab.validation import (
    check_factors_finite,
    check_nonnegative_float,
    check_positive_int,
    check_user_items,
    check_userids,
    seed_from,
)

__all__ = ["SparkALS", "spark_regularization", "java_home", "spark_session", "stop_spark", "to_spark_frame",
           "VECTOR_MODULE_FLAG"]

logger = logging.getLogger("recsys_lab")

def spark_regularization(regularization: float, user_items) -> float:
    """Spark's ``regParam`` that matches the course's iALS ``regularization`` for the average user.

    The course's iALS penalises every user vector by a fixed
    ``lambda * ||x_u||^2``; Spark scales it by the number of the user's
    interactions, ``regParam * n_u * ||x_u||^2`` (the weighted-lambda rule of
    ALS-WR, which Spark applies in implicit mode too). Equal penalties for a
    user with the mean count give ``regParam = lambda * n_users / nnz``
    (about 10 / 104 = 0.1 for lambda=10 on ML-100K's training split). Heavier
    users are then held back more, lighter ones less; items likewise.

    >>> spark_regularization(10.0, train.user_items)
    0.0964...
    """
    regularization = check_nonnegative_float(regularization, "regularization")
    user_items = check_user_items(user_items)
    return regularization * user_items.shape[0] / user_items.nnz


class SparkALS(FactorRecommender):
    """Spark MLlib's ALS (implicit or explicit) behind the course's recommender interface.

    Parameters
    ----------
    factors : int
        Embedding dimension k (Spark's ``rank``).
    regularization : float
        Spark's ``regParam``: each user (item) vector is penalised by
        ``regularization * n_u``, its number of interactions (ALS-WR). Map the
        course's iALS lambda with :func:`spark_regularization`.
    alpha : float
        Implicit mode: confidence ``1 + alpha * |r|``, as in the course's iALS.
    iterations : int
        Alternating sweeps (Spark's ``maxIter``).
    implicit : bool
        True: Hu et al.'s implicit-feedback loss over all pairs; False: squared
        error on the stored ratings only (no mean is subtracted).
    blocks : int or None
        User and item blocks (partitions); None keeps Spark's default of 10.
    random_state : None, int or numpy.random.Generator
        Seeds Spark's random initial factors.

    Attributes
    ----------
    user_factors : ndarray of shape (n_users, factors), float32
        Rows of users Spark never saw are zero.
    item_factors : ndarray of shape (n_items, factors), float32
    fit_seconds_ : float
        Time of Spark's fit alone (data already handed over, factors not yet pulled back).

    Notes
    -----
    Spark solves each user's and item's normal equations exactly (Cholesky)
    every sweep, where the course's iALS takes a few conjugate-gradient steps:
    more work per sweep, the exact ALS path, and a different random start, so
    the two agree in quality, not digit for digit.

    References
    ----------
    Zhou, Wilkinson, Schreiber & Pan (2008). Large-scale parallel collaborative
    filtering for the Netflix prize. AAIM. Hu, Koren & Volinsky (2008).
    Collaborative filtering for implicit feedback datasets. ICDM. Meng et al.
    (2016). MLlib: machine learning in Apache Spark. JMLR.

    Examples
    --------
    >>> model = SparkALS(64, regularization=0.1, alpha=2.0, random_state=0).fit(train.user_items)
    >>> ids, scores = model.recommend(0, train.user_items[0], N=10)
    """

    def __init__(self, factors: int = 10, *, regularization: float = 0.1, alpha: float = 1.0, iterations: int = 10,
                 implicit: bool = True, blocks: int | None = None, random_state=None):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.implicit = implicit
        self.blocks = blocks
        self.random_state = random_state

    def fit(self, user_items, *, show_progress: bool = True) -> "SparkALS":
        """Fit on a CSR (n_users, n_items) matrix, or on a Spark DataFrame with
        integer columns ``user`` and ``item`` (and optionally ``rating``).

        A CSR matrix is sent to the active Spark session; with none active, a
        local one is started for this fit and stopped (JVM included) after it.
        """
        factors = check_positive_int(self.factors, "factors")
        regularization = check_nonnegative_float(self.regularization, "regularization")
        alpha = check_nonnegative_float(self.alpha, "alpha")
        iterations = check_positive_int(self.iterations, "iterations")
        blocks = 10 if self.blocks is None else check_positive_int(self.blocks, "blocks")
        if not isinstance(self.implicit, bool):
            raise TypeError(f"implicit={self.implicit!r} must be True or False.")
        seed = seed_from(self.random_state)

        with tqdm(total=3, disable=not show_progress, desc="Spark ALS") as bar:
            with _session_for(user_items) as spark:
                als = ALS(rank=factors, maxIter=iterations, regParam=regularization, alpha=alpha,
                          implicitPrefs=self.implicit, numUserBlocks=blocks, numItemBlocks=blocks, userCol="user",
                          itemCol="item", ratingCol="rating", seed=seed)   # a JVM object: needs the session
                frame, (n_users, n_items), rating_range = _training_frame(spark, user_items)
                frame = frame.cache()
                frame.count()                                            # hand-over done before the clock starts
                bar.update()
                started = time.perf_counter()
                spark_model = als.fit(frame)
                self.fit_seconds_ = time.perf_counter() - started
                bar.update()
                user_factors = _dense_factors(spark_model.userFactors, n_users, factors)
                item_factors = _dense_factors(spark_model.itemFactors, n_items, factors)
                frame.unpersist()
                bar.update()
        check_factors_finite(type(self).__name__, user_factors=user_factors, item_factors=item_factors)
        self.user_factors, self.item_factors = user_factors, item_factors
        self.rating_range_ = rating_range
        logger.info("Spark ALS: %d sweeps in %.1f s on the JVM", iterations, self.fit_seconds_)
        return self

    def predict(self, userids, itemids, *, clip: bool = True) -> np.ndarray:
        """Predicted ratings ``x_u . y_i`` for the pairs ``(userids[j], itemids[j])``, shape (n_pairs,).

        In explicit mode ``clip`` keeps them inside the training rating range.
        """
        self._check_fitted()
        users, _ = check_userids(userids, self.n_users)
        items, _ = check_userids(itemids, self.n_items, name="itemid")
        if users.shape != items.shape:
            raise ValueError(f"userids and itemids must pair up; got {users.shape} and {items.shape}.")
        predicted = np.einsum("pk,pk->p", self.user_factors[users], self.item_factors[items]).astype(np.float64)
        return np.clip(predicted, *self.rating_range_) if clip and not self.implicit else predicted


@contextlib.contextmanager
def _session_for(user_items):
    """The session a fit runs in: the DataFrame's, the active one, or a private local one."""
    if isinstance(user_items, DataFrame):
        yield user_items.sparkSession
        return
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    logger.info("no active Spark session: starting a local one for this fit")
    spark = spark_session()
    try:
        yield spark
    finally:
        stop_spark(spark)


def _training_frame(spark, user_items):
    """(DataFrame user/item/rating, (n_users, n_items), (min, max) rating) from either input."""
    if not isinstance(user_items, DataFrame):
        user_items = check_user_items(user_items)
        return (to_spark_frame(spark, user_items), user_items.shape,
                (float(user_items.data.min()), float(user_items.data.max())))
    missing = {"user", "item"} - set(user_items.columns)
    if missing:
        raise ValueError(f"the DataFrame has columns {user_items.columns}; it needs integer columns 'user' and "
                         f"'item' (and optionally 'rating'), so {sorted(missing)} are missing.")
    rating = F.col("rating") if "rating" in user_items.columns else F.lit(1.0)
    frame = user_items.select(F.col("user").cast("int"), F.col("item").cast("int"), rating.cast("float").alias("rating"))
    stats = frame.agg(F.min("user"), F.max("user"), F.min("item"), F.max("item"),
                      F.min("rating"), F.max("rating"), F.count(F.lit(1))).first()
    if stats[6] == 0:
        raise ValueError("the DataFrame is empty: a recommender needs at least one interaction.")
    if stats[0] < 0 or stats[2] < 0:
        raise ValueError(f"user and item must be non-negative indices; found min user {stats[0]}, min item {stats[2]}.")
    return frame, (stats[1] + 1, stats[3] + 1), (float(stats[4]), float(stats[5]))


def _dense_factors(frame: DataFrame, n: int, factors: int) -> np.ndarray:
    """Spark's (id, features) rows as a dense (n, factors) float32 array; absent ids stay zero."""
    dense = np.zeros((n, factors), dtype=np.float32)
    rows = frame.collect()
    if rows:
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        dense[ids] = np.asarray([row[1] for row in rows], dtype=np.float32)
    return dense
