"""Spark tasks export their spans with the driver's OpenTelemetry settings, beneath its run.

The driver is a process of its own: it starts a local Spark (``local[2]``, 127.0.0.1 only)
before it takes the ``OTEL_*`` variables, so the JVM and the Python workers it starts never
see them, as on a cluster. Whatever the tasks export reaches the real OTLP/HTTP receiver on
127.0.0.1 only because the driver handed its settings to them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from openai_compat.observability import worker_telemetry
from openai_compat.spark import map_endpoint
from openai_compat.testing import MockServer
from tests.conftest import CANARY, make_config
from tests.observability.cluster_trace import (
    check_job,
    check_traceparents,
    have_rows,
    no_canary,
    otel_variables,
    rows,
    without_otel,
)
from tests.observability.otlp_receiver import OTLPReceiver

OUTPUTS = [{"name": "choices.0.message.content", "as": "answer"}]
TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'

# The driver: Spark first, then the OTEL_* settings; one job through the Python API and one
# through the command line (which takes the active session).
DRIVER = """
import json, os, sys
from openai_compat.spark import map_endpoint, spark_session
job = json.loads(sys.argv[1])
spark, _ = spark_session("local[2]", app_name="otel test")
os.environ.update(job["otel"])
from openai_compat.cli import main
from openai_compat.observability import configure_from_env, flush
assert configure_from_env()
out = map_endpoint(
    spark.createDataFrame(job["rows"]), job["config"], outputs=job["outputs"], key="id",
    rate=None, partitions=2,
).collect()
assert len(out) == len(job["rows"]) and all(r["error_status"] is None for r in out)
flush()
code = main(job["argv"])
spark.stop()
sys.exit(code)
"""


def test_tasks_export_row_and_request_spans_beneath_the_drivers_run(
    server: MockServer, tmp_path: Path
) -> None:
    config = make_config(server.url, request_format=TEMPLATE)
    (tmp_path / "c.json").write_text(json.dumps(config))
    cli_rows = rows(range(10, 14))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cli_rows))
    with OTLPReceiver() as receiver:
        job: dict[str, Any] = {
            "otel": otel_variables(receiver),
            "rows": rows(range(4)),
            "config": config,
            "outputs": OUTPUTS,
            "argv": [
                "batch", "--config", str(tmp_path / "c.json"),
                "--input", str(tmp_path / "in.jsonl"), "--key", "id", "--rate", "off",
                "--quiet", "--engine", "spark", "--partitions", "2",
                "--output", str(tmp_path / "out"), "--output-format", "jsonl",
            ],
        }  # fmt: skip
        env = without_otel()
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert CANARY not in done.stdout + done.stderr
        api_keys = {r["id"] for r in job["rows"]}
        cli_keys = {r["id"] for r in cli_rows}
        received = receiver.wait_for(lambda r: have_rows(r, api_keys | cli_keys), timeout=30)
        python_run = check_job(received, "spark", api_keys)
        cli_run = check_job(received, "spark", cli_keys)
    assert python_run.trace_id != cli_run.trace_id  # two jobs, two traces
    assert cli_run.attributes["openai_compat.batch.rows.ok"] == 4
    assert cli_run.attributes["openai_compat.batch.rows.failed"] == 0
    check_traceparents(server, received, [python_run, cli_run])
    no_canary(received)


def test_without_otel_variables_the_tasks_send_no_traceparent(
    spark: Any, server: MockServer
) -> None:
    assert worker_telemetry() is None  # nothing captured: the tasks set nothing up
    config = make_config(server.url, request_format=TEMPLATE)
    df = spark.createDataFrame(rows(range(4)))
    out = map_endpoint(df, config, outputs=OUTPUTS, key="id", rate=None).collect()
    assert len(out) == 4 and all(row["error_status"] is None for row in out)
    assert len(server.requests) == 4
    assert all("traceparent" not in request.headers for request in server.requests)
