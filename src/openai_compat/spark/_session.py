"""A Spark session for a batch run: the active one, or one started here on 127.0.0.1 only."""

from __future__ import annotations

import os
import sys
import warnings

from pyspark.sql import SparkSession

__all__ = ["DEFAULT_MASTER", "LOOPBACK_CONF", "QUIET_CONF", "session_conf", "spark_session"]

DEFAULT_MASTER = "local[*]"

# Every session this command starts, on any master: no console progress bars (they would
# interleave with the run's own progress lines) and no driver web UI (a listening port the
# run does not need).
QUIET_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
# A local session also listens only on loopback (the driver's RPC and block manager servers).
# SPARK_LOCAL_IP (set before the JVM starts) keeps Spark from asking the network for this
# machine's address. A cluster's executors reach the driver from other machines: there the
# driver's address is the cluster's to set.
LOOPBACK_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    **QUIET_CONF,
}


def session_conf(master: str) -> dict[str, str]:
    """The settings a session this command starts on ``master`` gets.

    >>> session_conf("spark://10.0.0.5:7077") == QUIET_CONF
    True
    >>> session_conf("local[2]")["spark.driver.bindAddress"]
    '127.0.0.1'
    """
    return dict(LOOPBACK_CONF if master.startswith("local") else QUIET_CONF)


def spark_session(
    master: str | None = None, app_name: str = "openai-compat batch"
) -> tuple[SparkSession, bool]:
    """The active session, or a new one on ``master`` (default ``SPARK_MASTER``, else
    ``local[*]``); True when this call started it (and should stop it).

    Every master gets `QUIET_CONF`; a ``local`` one `LOOPBACK_CONF` (nothing listens outside
    127.0.0.1), and its Python workers run this interpreter unless ``PYSPARK_PYTHON`` says
    otherwise.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    master = master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER
    builder = SparkSession.builder.master(master).appName(app_name)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # The workers run this interpreter (its packages), not whatever python3 is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for name, value in session_conf(master).items():
        builder = builder.config(name, value)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True
