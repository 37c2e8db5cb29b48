"""Batch runs on Spark: ours vs the common pattern (a pandas UDF calling the SDK per row) vs
the local run.

2,000 rows, the scripted server in its own process at 200 ms latency, ``local[2]``, the
input cut into the same partitions for both Spark runs (2 by default: one per task slot,
as the command line cuts 2,000 rows) and cached first; ours also at 4 times as many. Ours (``openai_compat.spark.map_endpoint``, 32 rows in
flight per task) against the pattern of Databricks' batch-inference notebook (a
``pandas_udf`` whose rows each call ``OpenAI().chat.completions.create``, one after another)
and against the local ``openai-compat batch`` engine at the same total concurrency (64).
Then 5% of the rows answered with a 400 (an empty model): what each does. Spark's start-up
and the first run's Python workers are timed apart. Run: ``.venv/bin/python bench/spark.py``
(about 5 minutes here; ``BENCH_SKIP_SDK=1`` leaves the pandas UDF out).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.functions import pandas_udf

from openai_compat.batch import run_batch_sync
from openai_compat.spark import map_endpoint, spark_session

ROWS = int(os.environ.get("BENCH_ROWS", "2000"))
LATENCY_MS = 200
SLOTS, PER_TASK = 2, 32
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", str(SLOTS)))
OUTPUTS = [{"name": "choices.0.message.content", "as": "answer"}]
MAPPING = [{"name": "model", "value": "model", "value_type": "dynamic", "type": "string"}]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rows(n: int, failing: bool) -> list[dict[str, Any]]:
    bad = (lambda i: i % 20 == 0) if failing else (lambda i: False)
    return [{"id": i, "text": f"t{i}", "model": "" if bad(i) else "mock-model"} for i in range(n)]


def _config(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "api_key": "sk-bench",
        "is_stream": False,
        "request_format": '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}',
        "response_format": '{"choices": [{"message": {"content": "x"}}]}',
    }


def local(url: str, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    run_batch_sync(
        _config(url),
        rows,
        mapping=MAPPING,
        outputs=OUTPUTS,
        key="id",
        concurrency=SLOTS * PER_TASK,
        rate=None,
    )
    return time.perf_counter() - started


def _input(
    spark: Any, rows: list[dict[str, Any]], directory: str, name: str, partitions: int = PARTITIONS
) -> Any:
    """The rows as a Parquet file read back, cut into ``partitions`` and cached (not timed)."""
    path = os.path.join(directory, f"{name}.parquet")
    pq.write_table(pa.Table.from_pylist(rows), path)
    df = spark.read.parquet(path).repartition(partitions).cache()
    df.count()
    return df


def ours(url: str, df: Any) -> tuple[float, int]:
    started = time.perf_counter()
    out = map_endpoint(
        df,
        _config(url),
        mapping=MAPPING,
        outputs=OUTPUTS,
        key="id",
        concurrency=PER_TASK,
        rate=None,
    )
    failed = out.where("error_message IS NOT NULL").count()
    return time.perf_counter() - started, failed


def theirs(port: int, df: Any) -> tuple[float, str]:
    """The notebook's pattern: a pandas UDF, the SDK called for each row in turn."""
    base_url = f"http://127.0.0.1:{port}/v1"

    @pandas_udf("string")  # type: ignore[call-overload]
    def answer(texts: pd.Series, models: pd.Series) -> pd.Series:
        from openai import OpenAI

        client = OpenAI(
            base_url=base_url, api_key="sk-bench", default_query={"latency_ms": str(LATENCY_MS)}
        )
        return pd.Series(
            [
                client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": text}]
                )
                .choices[0]
                .message.content
                for text, model in zip(texts, models, strict=True)
            ]
        )

    started = time.perf_counter()
    try:
        n = df.withColumn("answer", answer("text", "model")).where("answer IS NOT NULL").count()
        outcome = f"completed ({n} rows)"
    except Exception as exc:  # what the pattern does with a 400
        outcome = f"the job failed: {type(exc).__name__}"
    return time.perf_counter() - started, outcome


def main() -> None:
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "openai_compat", "mock-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spark = None
    try:
        time.sleep(2)
        url = f"http://127.0.0.1:{port}/v1/chat/completions?latency_ms={LATENCY_MS}"
        clean, failing = _rows(ROWS, False), _rows(ROWS, True)
        local_s = local(url, clean)
        t = time.perf_counter()
        spark, _ = spark_session(f"local[{SLOTS}]", app_name="bench")
        start_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            clean_df, failing_df = (
                _input(spark, clean, tmp, "clean"),
                _input(spark, failing, tmp, "failing"),
            )
            t = time.perf_counter()
            ours(url, _input(spark, clean[:64], tmp, "warm"))  # the Python workers start once
            warm_s = time.perf_counter() - t
            ours_s, _ = ours(url, clean_df)
            finer_s, _ = ours(url, _input(spark, clean, tmp, "finer", 4 * PARTITIONS))
            skip = os.environ.get("BENCH_SKIP_SDK") == "1"
            theirs_s, _ = (float("nan"), "") if skip else theirs(port, clean_df)
            ours_fail_s, ours_failed = ours(url, failing_df)
            theirs_fail_s, theirs_outcome = (
                (float("nan"), "skipped") if skip else theirs(port, failing_df)
            )
        result = {
            "rows": ROWS,
            "latency_ms": LATENCY_MS,
            "master": f"local[{SLOTS}]",
            "partitions": PARTITIONS,
            "spark_start_s": round(start_s, 1),
            "first_run_64_rows_s": round(warm_s, 1),
            "local_s": round(local_s, 2),
            "ours_on_spark_s": round(ours_s, 2),
            f"ours_on_spark_{4 * PARTITIONS}_partitions_s": round(finer_s, 2),
            "pandas_udf_sdk_s": round(theirs_s, 1),
            "pandas_udf_sdk_over_ours": round(theirs_s / ours_s, 1),
            "ours_over_local": round(ours_s / local_s, 2),
            f"ours_{4 * PARTITIONS}_partitions_over_local": round(finer_s / local_s, 2),
            "with_5pct_400": {
                "ours": f"completed in {ours_fail_s:.1f} s, {ours_failed} error rows",
                "pandas_udf_sdk": theirs_outcome
                if skip
                else f"{theirs_outcome} after {theirs_fail_s:.1f} s",
            },
        }
        print(json.dumps(result, indent=2))
    finally:
        if spark is not None:
            spark.stop()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
