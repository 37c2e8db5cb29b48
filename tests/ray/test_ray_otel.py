"""Ray actors export their spans with the driver's OpenTelemetry settings, beneath its run.

The cluster is started here (127.0.0.1 only) without any ``OTEL_*`` variable, as a cluster's
workers are; the driver is another process that joins it with the variables set (pointing at
a real OTLP/HTTP receiver on 127.0.0.1), as a user's job does. Whatever the workers export
reaches the receiver only because the driver handed its settings to them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a cluster started here: 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray
from openai_compat.observability import worker_telemetry
from openai_compat.ray import map_endpoint
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

# The driver: joins the cluster, then takes the OTEL_* settings (the cluster's processes never
# see them), and runs one job through the Python API and one through the command line.
DRIVER = """
import json, os, sys
import ray
job = json.loads(sys.argv[1])
ray.init(address=job["address"], log_to_driver=False, logging_level="WARNING")
ray.data.DataContext.get_current().enable_progress_bars = False
os.environ.update(job["otel"])
from openai_compat.cli import main
from openai_compat.observability import configure_from_env, flush
from openai_compat.ray import map_endpoint
assert configure_from_env()
out = map_endpoint(
    ray.data.from_items(job["rows"]), job["config"], outputs=job["outputs"], key="id",
    rate=None, actors=2, batch_size=2,
)
answers = out.take_all()
assert len(answers) == len(job["rows"]) and all(a["error_status"] is None for a in answers)
flush()
sys.exit(main(job["argv"]))
"""


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[str]:
    """A local cluster whose processes have no OTEL_* variable; its address."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    context = ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING"
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield str(context.address_info["gcs_address"])
    ray.shutdown()


def test_actors_export_row_and_request_spans_beneath_the_drivers_run(
    cluster: str, server: MockServer, tmp_path: Path
) -> None:
    config = make_config(server.url, request_format=TEMPLATE)
    (tmp_path / "c.json").write_text(json.dumps(config))
    cli_rows = rows(range(10, 14))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cli_rows))
    with OTLPReceiver() as receiver:
        job = {
            "address": cluster,
            "otel": otel_variables(receiver),
            "rows": rows(range(4)),
            "config": config,
            "outputs": OUTPUTS,
            "argv": [
                "batch", "--config", str(tmp_path / "c.json"),
                "--input", str(tmp_path / "in.jsonl"), "--key", "id", "--rate", "off",
                "--quiet", "--engine", "ray", "--actors", "2", "--batch-size", "2",
                "--output", str(tmp_path / "out"), "--output-format", "jsonl",
            ],
        }  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=without_otel(),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert CANARY not in done.stdout + done.stderr
        api_keys = {r["id"] for r in job["rows"]}
        cli_keys = {r["id"] for r in cli_rows}
        received = receiver.wait_for(lambda r: have_rows(r, api_keys | cli_keys), timeout=30)
        python_run = check_job(received, "ray", api_keys)
        cli_run = check_job(received, "ray", cli_keys)
    assert python_run.trace_id != cli_run.trace_id  # two jobs, two traces
    assert cli_run.attributes["openai_compat.batch.rows.ok"] == 4
    assert cli_run.attributes["openai_compat.batch.rows.failed"] == 0
    check_traceparents(server, received, [python_run, cli_run])
    no_canary(received)


def test_without_otel_variables_the_actors_send_no_traceparent(server: MockServer) -> None:
    assert worker_telemetry() is None  # nothing captured: the actors set nothing up
    config = make_config(server.url, request_format=TEMPLATE)
    out = map_endpoint(
        ray.data.from_items(rows(range(4))), config, outputs=OUTPUTS, key="id", rate=None
    ).take_all()
    assert len(out) == 4 and all(row["error_status"] is None for row in out)
    assert len(server.requests) == 4
    assert all("traceparent" not in request.headers for request in server.requests)
