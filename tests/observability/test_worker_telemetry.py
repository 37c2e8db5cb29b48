"""What a cluster's driver hands its workers, and a worker's run joined to the driver's span.

The Ray and Spark suites run whole jobs (tests/ray/test_ray_otel.py,
tests/spark/test_spark_otel.py); here the parts, without a cluster: the capture of the
driver's settings, and a run given a ``traceparent`` in a process of its own (as a worker
is) exporting its rows beneath that span to a real OTLP/HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from openai_compat.observability import parent_context, worker_telemetry
from openai_compat.testing import MockServer
from tests.conftest import CANARY, make_config
from tests.observability.cluster_trace import no_canary, otel_variables, without_otel
from tests.observability.otlp_receiver import OTLPReceiver

TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'
DRIVER_SPAN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_driver_hands_on_its_otel_variables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    assert worker_telemetry() is None  # nothing asked for: nothing handed on
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "jobs")
    monkeypatch.setenv("OC_TEST_SECRET", CANARY)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer {CANARY}")
    telemetry = worker_telemetry()
    assert telemetry is not None
    assert telemetry.environment == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {CANARY}",
        "OTEL_SERVICE_NAME": "jobs",
    }
    # Wherever a cluster shows the job's arguments: the names, not the collector's token.
    assert CANARY not in repr(telemetry) and CANARY not in str(telemetry)
    # No tracer provider in this process: no run span to hang the rows beneath.
    assert telemetry.traceparent is None
    assert pickle.loads(pickle.dumps(telemetry)) == telemetry  # it travels with the job
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert worker_telemetry() is None


def test_a_traceparent_that_is_not_one_is_ignored() -> None:
    assert parent_context("00-zz-yy-01") is None
    assert parent_context(DRIVER_SPAN) is not None


# A worker: the SDK set up from the driver's variables, one run beneath the driver's span.
WORKER = """
import json, sys
from openai_compat.batch import run_batch_sync
from openai_compat.observability import WorkerTelemetry
job = json.loads(sys.argv[1])
telemetry = WorkerTelemetry(job["otel"], job["traceparent"])
assert telemetry.start()
summary = run_batch_sync(
    job["config"], job["rows"], key="id", rate=None, trace_parent=telemetry.traceparent
)
assert summary.ok == len(job["rows"]), summary
telemetry.flush()
"""


def test_a_workers_rows_hang_beneath_the_drivers_span(server: MockServer, tmp_path: Path) -> None:
    with OTLPReceiver() as receiver:
        job = {
            "otel": {**otel_variables(receiver), "OTEL_BSP_SCHEDULE_DELAY": "60000"},
            "traceparent": DRIVER_SPAN,
            "config": make_config(server.url, request_format=TEMPLATE),
            "rows": [{"id": f"k{i}", "text": f"t{i}"} for i in range(3)],
        }
        done = subprocess.run(
            [sys.executable, "-c", WORKER, json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=without_otel(),
        )
        assert done.returncode == 0, done.stderr
        # Flushed before the process ended, though the processor would wait a minute.
        got = receiver.wait_for(
            lambda r: len([s for s in r.spans if s.name == "openai_compat.batch.row"]) == 3
        )
    _, trace_id, span_id, _ = DRIVER_SPAN.split("-")
    rows = [s for s in got.spans if s.name == "openai_compat.batch.row"]
    assert all(s.trace_id == trace_id and s.parent_id == span_id for s in rows)
    assert not [s for s in got.spans if s.name == "openai_compat.batch.run"]  # the driver's
    requests = [s for s in got.spans if s.name == "chat mock-model"]
    assert sorted(s.parent_id for s in requests) == sorted(s.span_id for s in rows)
    assert all(s.resource["service.name"] == "otel-cluster-test" for s in got.spans)
    for request in server.requests:
        assert request.headers["traceparent"].split("-")[1] == trace_id
    no_canary(got)


# A worker whose collector does not answer: its flush gives up waiting, the rows go on.
DEAD_COLLECTOR = """
import sys, time
from opentelemetry import trace
from openai_compat.observability import WorkerTelemetry
telemetry = WorkerTelemetry({"OTEL_EXPORTER_OTLP_ENDPOINT": sys.argv[1],
                             "OTEL_EXPORTER_OTLP_TIMEOUT": "3"}, None)
assert telemetry.start()
trace.get_tracer("t").start_span("s").end()
started = time.monotonic()
done = telemetry.flush(wait_s=0.5)
print(done, round(time.monotonic() - started, 1))
"""


def test_a_collector_that_does_not_answer_holds_a_worker_up_for_the_wait_only() -> None:
    with socket.socket() as listening:  # accepts connections, never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        endpoint = f"http://127.0.0.1:{listening.getsockname()[1]}"
        done = subprocess.run(
            [sys.executable, "-c", DEAD_COLLECTOR, endpoint],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=without_otel(),
        )
    assert done.returncode == 0, done.stderr
    flushed, waited = done.stdout.split()
    assert flushed == "False" and float(waited) < 1.5
