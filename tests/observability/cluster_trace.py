"""Checks of a cluster job's trace: the driver's run span, the workers' row and request spans."""

from __future__ import annotations

import os
from typing import Any

from openai_compat.testing import MockServer
from tests.conftest import CANARY
from tests.observability.otlp_receiver import OTLPReceiver, Received, Span

RUN, ROW, REQUEST = "openai_compat.batch.run", "openai_compat.batch.row", "chat mock-model"


def otel_variables(receiver: OTLPReceiver) -> dict[str, str]:
    """The driver's standard OTEL_* settings: OTLP/HTTP to ``receiver``, exported quickly."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "otel-cluster-test",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def without_otel() -> dict[str, str]:
    """This process's environment without any OTEL_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def have_rows(received: Received, keys: set[str]) -> bool:
    """True once the row and request spans of ``keys``, and a run span, have arrived."""
    rows = [s for s in received.spans if s.name == ROW]
    got = {s.attributes["openai_compat.batch.row.key"] for s in rows}
    requests = [s for s in received.spans if s.name == REQUEST]
    runs = [s for s in received.spans if s.name == RUN]
    return got >= keys and len(requests) >= len(keys) and bool(runs)


def check_job(received: Received, engine: str, keys: set[str]) -> Span:
    """The run span of ``engine`` whose rows are ``keys``: run -> row -> request, one trace id,
    every span from the driver's settings (its service name). Returns the run span."""
    spans = list(received.spans)
    runs = [
        s for s in spans if s.name == RUN and s.attributes["openai_compat.batch.engine"] == engine
    ]
    rows_of: dict[str, list[Span]] = {
        run.span_id: [s for s in spans if s.name == ROW and s.parent_id == run.span_id]
        for run in runs
    }
    [run] = [
        r
        for r in runs
        if {s.attributes["openai_compat.batch.row.key"] for s in rows_of[r.span_id]} == keys
    ]
    rows = rows_of[run.span_id]
    assert len(rows) == len(keys), "each row once"
    assert run.attributes["server.address"] == "127.0.0.1"
    for row in rows:
        assert row.trace_id == run.trace_id
        assert row.attributes["openai_compat.batch.row.outcome"] == "ok"
        assert row.attributes["openai_compat.batch.row.attempts"] == 1
        [request] = [s for s in spans if s.name == REQUEST and s.parent_id == row.span_id]
        assert request.trace_id == run.trace_id
        assert request.attributes["gen_ai.operation.name"] == "chat"
        assert request.attributes["gen_ai.request.model"] == "mock-model"
        assert request.attributes["server.address"] == "127.0.0.1"
        for span in (row, request):  # exported by a worker, set up from the driver's variables
            assert span.resource["service.name"] == "otel-cluster-test"
    return run


def check_traceparents(server: MockServer, received: Received, runs: list[Span]) -> None:
    """Every request the server got carried its own span's context, in one of ``runs``' traces."""
    requests = {s.span_id: s for s in received.spans if s.name == REQUEST}
    traces = {run.trace_id for run in runs}
    assert server.requests
    for request in server.requests:
        version, trace_id, span_id, flags = request.headers["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1  # sampled
        assert requests[span_id].trace_id == trace_id and trace_id in traces


def no_canary(received: Received, *secrets: str) -> None:
    """Neither the canary key nor any of ``secrets`` in any exported byte."""
    assert received.raw, "nothing was exported"
    for body in received.raw:
        for secret in (CANARY, *secrets):
            assert secret.encode() not in body, f"{secret[:4]}... was exported"


def rows(keys: range, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"k{i}", "text": f"t{i}", **extra} for i in keys]
