"""Tests of recsys_lab.scale.spark: the Java launcher, the session helper and SparkALS on tiny data.

One Spark session (one JVM) serves the whole module and is stopped, JVM
included, at the end.
"""

import subprocess

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("pyspark")

from recsys_lab.models.explicit_als import weighted_ridge_solve  # noqa: E402
from recsys_lab.scale.spark import (  # noqa: E402
    VECTOR_MODULE_FLAG,
    SparkALS,
    java_home,
    spark_regularization,
    spark_session,
    stop_spark,
    to_spark_frame,
)


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", driver_memory="1g")
    yield session
    exit_code = stop_spark(session)
    assert exit_code is not None, "the Spark JVM is still running after stop_spark"


@pytest.fixture(scope="module")
def planted():
    """40 users x 30 items from two taste groups, every user with 6 interactions (some counted twice)."""
    rng = np.random.default_rng(0)
    rows, cols, data = [], [], []
    for user in range(40):
        group = user % 2
        items = rng.choice(np.arange(group * 15, group * 15 + 15), size=6, replace=False)
        rows += [user] * 6
        cols += items.tolist()
        data += rng.integers(1, 3, size=6).tolist()
    return sp.csr_matrix((np.asarray(data, np.float32), (rows, cols)), shape=(40, 30))


def test_java_home_honours_an_existing_java_home(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert java_home() == tmp_path


def test_the_java_spark_gets_accepts_sparks_vector_module_flag(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    java = java_home() / "bin" / "java"
    result = subprocess.run([str(java), VECTOR_MODULE_FLAG, "-version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("master", ["", "local[0]", "local[two]", "spark master"])
def test_spark_session_refuses_a_bad_master(master):
    with pytest.raises(ValueError, match="master"):
        spark_session(master)


def test_spark_session_refuses_bad_memory_and_partitions():
    with pytest.raises(ValueError, match="driver_memory"):
        spark_session("local[1]", driver_memory="lots")
    with pytest.raises(ValueError, match="shuffle_partitions"):
        spark_session("local[1]", shuffle_partitions=0)


def test_spark_session_is_local_quiet_and_shared(spark):
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.driver.host") == "127.0.0.1"
    assert spark_session("local[2]") is not None           # the running session is returned
    with pytest.raises(RuntimeError, match="stop_spark"):
        spark_session("local[1]")                           # another master needs a stop first


def test_to_spark_frame_holds_every_stored_entry(spark, planted):
    rows = to_spark_frame(spark, planted).collect()
    got = sp.csr_matrix(([r["rating"] for r in rows], ([r["user"] for r in rows], [r["item"] for r in rows])),
                        shape=planted.shape)
    assert len(rows) == planted.nnz
    assert abs(got - planted).max() == 0


def test_spark_regularization_matches_the_average_user(planted):
    assert spark_regularization(12.0, planted) == pytest.approx(12.0 / 6)


def test_implicit_user_step_is_the_exact_ials_solve_with_count_scaled_lambda(spark, planted):
    """Spark updates the users last: their vectors solve the iALS normal equations for its item vectors."""
    reg, alpha = 0.05, 2.0
    model = SparkALS(4, regularization=reg, alpha=alpha, iterations=3, blocks=2, random_state=0)
    model.fit(planted, show_progress=False)
    assert model.user_factors.shape == (40, 4) and model.item_factors.shape == (30, 4)
    Y = model.item_factors.astype(np.float64)
    weights = planted.copy()
    weights.data = alpha * weights.data                                   # c - 1
    confidence = planted.copy()
    confidence.data = 1 + alpha * confidence.data
    counts = np.diff(planted.indptr)                                      # ALS-WR: lambda n_u
    exact = weighted_ridge_solve(weights, Y, np.asarray(confidence @ Y), ridge=reg * counts, base=Y.T @ Y)
    np.testing.assert_allclose(model.user_factors, exact, atol=2e-4, rtol=1e-3)


def test_explicit_mode_solves_ridge_on_observed_ratings_and_predicts_in_range(spark, planted):
    reg = 0.1
    model = SparkALS(3, regularization=reg, iterations=3, implicit=False, blocks=2, random_state=0)
    model.fit(planted, show_progress=False)
    Y = model.item_factors.astype(np.float64)
    pattern = planted.copy()
    pattern.data[:] = 1.0
    exact = weighted_ridge_solve(pattern, Y, np.asarray(planted @ Y), ridge=reg * np.diff(planted.indptr))
    np.testing.assert_allclose(model.user_factors, exact, atol=2e-4, rtol=1e-3)
    predicted = model.predict([0, 1, 2], [0, 15, 29])
    assert predicted.shape == (3,) and np.all((1 <= predicted) & (predicted <= 2))


def test_recommend_ranks_the_planted_group_first(spark, planted):
    model = SparkALS(4, regularization=0.05, alpha=5.0, iterations=5, blocks=2, random_state=0).fit(
        planted, show_progress=False)
    ids, scores = model.recommend(np.arange(40), planted, N=5)
    own_group = (ids // 15) == (np.arange(40) % 2)[:, None]
    assert own_group.mean() > 0.9
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_fit_accepts_a_spark_dataframe_without_ratings(spark, planted):
    frame = to_spark_frame(spark, planted).select("user", "item")
    model = SparkALS(4, iterations=2, blocks=2, random_state=0).fit(frame, show_progress=False)
    assert model.user_factors.shape == (40, 4) and model.item_factors.shape == (30, 4)
    assert model.fitted_on_ is None                               # the events live in Spark, not here


def test_fit_checks_settings_and_dataframe_columns(spark, planted):
    with pytest.raises(ValueError, match="factors=0"):
        SparkALS(0).fit(planted, show_progress=False)
    with pytest.raises(ValueError, match="regularization=-1"):
        SparkALS(4, regularization=-1.0).fit(planted, show_progress=False)
    with pytest.raises(TypeError, match="implicit"):
        SparkALS(4, implicit="yes").fit(planted, show_progress=False)
    frame = to_spark_frame(spark, planted).withColumnRenamed("item", "movie")
    with pytest.raises(ValueError, match="'item'"):
        SparkALS(4).fit(frame, show_progress=False)
