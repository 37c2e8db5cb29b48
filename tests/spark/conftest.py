"""One real local Spark session (``local[2]``, on 127.0.0.1 only) for the whole Spark suite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from openai_compat.spark import spark_session

    # Two task threads; a task may run up to 4 times (local[N, maxFailures]): a plain
    # local[2] gives up on the first failed task, and a cluster retries it.
    session, started = spark_session("local[2,4]", app_name="openai-compat tests")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    if started:
        session.stop()
