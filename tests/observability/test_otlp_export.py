"""Spans and metrics, exported by the doors over OTLP/HTTP to a real receiver on 127.0.0.1.

The CLI's ``read`` and ``batch`` run as child processes (as users run them), the application
as ``openai-compat serve``; each is pointed at the receiver with the standard ``OTEL_*``
variables. What arrives is decoded from protobuf and checked against the OpenTelemetry GenAI
conventions; the canary key is searched for in every exported byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_compat.testing import MockServer, error_reply
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config
from tests.observability.otlp_receiver import OTLPReceiver, Received, Span

EXE = [sys.executable, "-m", "openai_compat"]
CLIENT = 3  # SpanKind.CLIENT in OTLP
ERROR = 2  # Status.STATUS_CODE_ERROR
DURATION_BOUNDS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BOUNDS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


def otel_env(receiver: OTLPReceiver, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="otel-test",
        OTEL_METRIC_EXPORT_INTERVAL="200",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **extra,
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*EXE, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert CANARY not in done.stdout and CANARY not in done.stderr
    return done


def no_canary(received: Received) -> None:
    assert received.raw, "nothing was exported"
    for body in received.raw:
        assert CANARY.encode() not in body, "the API key was exported"


def is_traceparent_of(header: str | None, span: Span) -> bool:
    """True when ``header`` (W3C ``traceparent``) names ``span``, sampled."""
    version, trace_id, span_id, flags = (header or "---").split("-")
    return (version, trace_id, span_id) == ("00", span.trace_id, span.span_id) and bool(
        int(flags or "0", 16) & 1
    )


def check_chat_span(span: Span, server: MockServer) -> None:
    """The attributes the GenAI conventions require or recommend of a chat client span."""
    a = span.attributes
    assert span.name == "chat mock-model" and span.kind == CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "mock-model"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == server.port
    assert span.resource["service.name"] == "otel-test"


def test_cli_read_exports_a_chat_span_with_retries_and_metrics(
    server: MockServer, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    server.enqueue(error_reply(503, "busy", headers={"retry-after-ms": "10"}))
    config = make_config(server.url)
    payload = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "secret prompt text"}],
        "temperature": 0.25,
        "max_tokens": 20,
    }
    (tmp_path / "c.json").write_text(json.dumps(config))
    (tmp_path / "p.json").write_text(json.dumps(payload))
    done = run_cli(
        otel_env(receiver),
        "--retries", "2", "read", "--config", str(tmp_path / "c.json"),
        "--payload", str(tmp_path / "p.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = receiver.wait_for(
        lambda r: (
            any(s.name == "chat mock-model" for s in r.spans)
            and {p.metric for p in r.points}
            >= {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}
        )
    )
    [span] = receiver.spans("chat mock-model")
    check_chat_span(span, server)
    a = span.attributes
    assert a["gen_ai.request.temperature"] == 0.25 and a["gen_ai.request.max_tokens"] == 20
    answer = json.loads(done.stdout.splitlines()[0])["record"]["data"]
    assert a["gen_ai.response.model"] == "mock-model"
    assert a["gen_ai.response.id"] == answer["id"]
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == answer["usage"]["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == answer["usage"]["completion_tokens"]
    assert "error.type" not in a
    # One event per retry, with the status and the wait.
    [(event, attrs)] = span.events
    assert event == "openai_compat.retry"
    assert attrs["http.response.status_code"] == 503 and attrs["error.type"] == "503"
    assert attrs["openai_compat.retry.number"] == 1
    assert attrs["openai_compat.retry.wait_s"] == pytest.approx(0.01)
    # Both attempts carried the span's context to the server.
    sent = [r.headers.get("traceparent") for r in server.requests]
    assert len(sent) == 2 and all(is_traceparent_of(h, span) for h in sent)
    # Content is not recorded by default.
    for body in got.raw:
        assert b"secret prompt text" not in body and b"You said" not in body
    no_canary(got)
    durations = [p for p in got.points if p.metric == "gen_ai.client.operation.duration"]
    assert durations and durations[0].unit == "s" and durations[0].bounds == DURATION_BOUNDS
    assert durations[0].attributes["gen_ai.operation.name"] == "chat"
    assert durations[0].attributes["gen_ai.response.model"] == "mock-model"
    tokens = {
        p.attributes["gen_ai.token.type"]: p
        for p in got.points
        if p.metric == "gen_ai.client.token.usage"
    }
    assert tokens["input"].sum == answer["usage"]["prompt_tokens"]
    assert tokens["output"].sum == answer["usage"]["completion_tokens"]
    assert tokens["input"].unit == "{token}" and tokens["input"].bounds == TOKEN_BOUNDS


def test_content_is_recorded_only_when_asked(
    server: MockServer, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    config = make_config(server.url, is_stream=True)
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "hello there"}]}
    (tmp_path / "c.json").write_text(json.dumps(config))
    (tmp_path / "p.json").write_text(json.dumps(payload))
    env = otel_env(receiver, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    done = run_cli(
        env, "read", "--config", str(tmp_path / "c.json"), "--payload", str(tmp_path / "p.json")
    )
    assert done.returncode == 0, done.stderr
    receiver.wait_for(lambda r: any(s.name == "chat mock-model" for s in r.spans))
    [span] = receiver.spans("chat mock-model")
    assert span.attributes["gen_ai.request.stream"] is True
    assert json.loads(span.attributes["gen_ai.input.messages"]) == payload["messages"]
    output = json.loads(span.attributes["gen_ai.output.messages"])
    assert output[0]["message"]["content"] == "You said: hello there"
    # The streamed answer, assembled, gives the response's attributes too.
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    no_canary(receiver.received)


def test_a_failed_request_has_its_error_type(
    server: MockServer, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    config = make_config(server.url + "?scenario=404")
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "x"}]}
    (tmp_path / "c.json").write_text(json.dumps(config))
    (tmp_path / "p.json").write_text(json.dumps(payload))
    done = run_cli(
        otel_env(receiver),
        "read", "--config", str(tmp_path / "c.json"), "--payload", str(tmp_path / "p.json"),
    )  # fmt: skip
    assert done.returncode != 0
    got = receiver.wait_for(
        lambda r: (
            any(s.name == "chat mock-model" for s in r.spans)
            and any("error.type" in p.attributes for p in r.points)
        )
    )
    spans = receiver.spans("chat mock-model")
    assert len(spans) == 1, [(s.name, s.attributes, s.events) for s in got.spans]
    span = spans[0]
    assert span.attributes["error.type"] == "404" and span.status_code == ERROR
    # Cumulative: a slow exit may export the one measurement twice (the periodic reader,
    # then the shutdown), never another one.
    points = [p for p in got.points if p.metric == "gen_ai.client.operation.duration"]
    assert points and all(p.count == 1 and p.attributes["error.type"] == "404" for p in points)
    no_canary(got)


def test_batch_run_row_and_request_spans(
    server: MockServer, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    # Row 1 is retried once (429), row 2 fails for good (400), row 3 has no usable row.
    rows = [
        {"id": "a", "text": "one"},
        {"id": "b", "text": "two"},
        {"id": "c", "text": "three"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = make_config(
        server.url,
        request_format=json.dumps(
            {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
        ),
    )
    (tmp_path / "c.json").write_text(json.dumps(config))
    server.enqueue(
        error_reply(429, "slow down", headers={"retry-after-ms": "5"}),
        error_reply(400, "bad row"),
    )
    done = run_cli(
        otel_env(receiver),
        "batch", "--config", str(tmp_path / "c.json"), "--input", str(tmp_path / "in.jsonl"),
        "--output", str(tmp_path / "out.jsonl"), "--key", "id", "--concurrency", "1",
    )  # fmt: skip
    results = {
        line["key"]: line
        for line in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())
    }
    assert len(results) == 3, done.stderr
    got = receiver.wait_for(lambda r: any(s.name == "openai_compat.batch.run" for s in r.spans))
    [run] = receiver.spans("openai_compat.batch.run")
    assert run.attributes["openai_compat.batch.rows.ok"] == 2
    assert run.attributes["openai_compat.batch.rows.failed"] == 1
    row_spans = {
        s.attributes["openai_compat.batch.row.key"]: s
        for s in receiver.spans("openai_compat.batch.row")
    }
    assert set(row_spans) == {"a", "b", "c"}
    requests = receiver.spans("chat mock-model")
    assert len(requests) == 3
    by_parent = {s.parent_id: s for s in requests}
    for key, row in row_spans.items():
        assert row.parent_id == run.span_id and row.trace_id == run.trace_id
        request = by_parent[row.span_id]  # the row's request, beneath it
        check_chat_span(request, server)
        assert row.attributes["openai_compat.batch.row.attempts"] == results[key]["attempts"]
        assert row.attributes["openai_compat.batch.row.cached"] is False
        outcome = "ok" if results[key]["error"] is None else "failed"
        assert row.attributes["openai_compat.batch.row.outcome"] == outcome
    failed_key = next(k for k, r in results.items() if r["error"] is not None)
    assert row_spans[failed_key].status_code == ERROR
    assert by_parent[row_spans[failed_key].span_id].attributes["error.type"] == "400"
    retried = [s for s in requests if s.events]
    assert len(retried) == 1 and retried[0].events[0][1]["http.response.status_code"] == 429
    # Every request the server got carried its own span's context.
    spans_by_id = {s.span_id: s for s in requests}
    for request in server.requests:
        _, trace_id, span_id, _ = request.headers["traceparent"].split("-")
        assert spans_by_id[span_id].trace_id == trace_id == run.trace_id
    no_canary(got)


def test_app_execution_has_server_and_request_spans(
    keyed: MockServer, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    proc = AppProcess(tmp_path / "data", env=otel_env(receiver, OC_TEST_PROVIDER_KEY=CANARY))
    try:
        with proc.client() as client:
            created = client.post(
                "/api/v1/connectors",
                json={"name": "t", "configuration": make_config(keyed.url)},
            )
            assert created.status_code == 201, created.text
            cid = created.json()["id"]
            payload = {"model": "mock-model", "messages": [{"role": "user", "content": "ping"}]}
            answer = client.post(
                f"/api/v1/connectors/{cid}/execute_model", json={"payload": payload}
            )
            assert answer.status_code == 200, answer.text
        got = receiver.wait_for(
            lambda r: (
                any(s.name == "chat mock-model" for s in r.spans)
                and any(s.kind == 2 and "execute_model" in s.name for s in r.spans)
            )
        )
        [request] = receiver.spans("chat mock-model")
        check_chat_span(request, keyed)
        parents = {s.span_id: s for s in got.spans}
        server_span = parents[request.parent_id]
        while server_span.parent_id in parents:  # the ASGI instrumentation's inner spans
            server_span = parents[server_span.parent_id]
        assert server_span.kind == 2  # SERVER
        assert "execute_model" in server_span.name
        assert is_traceparent_of(keyed.requests[-1].headers.get("traceparent"), request)
    finally:
        proc.stop()
    receiver.wait_for(lambda r: True)
    no_canary(receiver.received)
    assert CANARY not in proc.log_text()


def test_without_otel_variables_nothing_is_set_up(server: MockServer, tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(make_config(server.url)))
    (tmp_path / "p.json").write_text(json.dumps({"model": "mock-model", "messages": []}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    code = (
        "import sys\n"
        "from openai_compat.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print([m for m in ('opentelemetry.sdk', 'opentelemetry.exporter') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "read", "--config", str(tmp_path / "c.json"),
         "--payload", str(tmp_path / "p.json")],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"  # the SDK is not even imported
    [request] = server.requests
    assert "traceparent" not in request.headers


def test_otel_sdk_disabled_wins(server: MockServer, receiver: OTLPReceiver, tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(make_config(server.url)))
    (tmp_path / "p.json").write_text(json.dumps({"model": "mock-model", "messages": []}))
    env = otel_env(receiver, OTEL_SDK_DISABLED="true")
    done = run_cli(
        env, "read", "--config", str(tmp_path / "c.json"), "--payload", str(tmp_path / "p.json")
    )
    assert done.returncode == 0, done.stderr
    assert "traceparent" not in server.requests[0].headers
    assert receiver.received.raw == []


def test_a_sampled_out_request_still_sends_its_context_and_is_measured(
    server: MockServer, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    # A span the sampler leaves out records nothing, but the server still gets its context
    # (its sampled flag clear) and the request is still measured.
    (tmp_path / "c.json").write_text(json.dumps(make_config(server.url)))
    (tmp_path / "p.json").write_text(json.dumps({"model": "mock-model", "messages": []}))
    env = otel_env(receiver, OTEL_TRACES_SAMPLER="always_off")
    done = run_cli(
        env, "read", "--config", str(tmp_path / "c.json"), "--payload", str(tmp_path / "p.json")
    )
    assert done.returncode == 0, done.stderr
    got = receiver.wait_for(
        lambda r: any(p.metric == "gen_ai.client.operation.duration" for p in r.points)
    )
    version, trace_id, span_id, flags = server.requests[0].headers["traceparent"].split("-")
    assert version == "00" and int(trace_id, 16) and int(span_id, 16)
    assert not int(flags, 16) & 1
    assert got.spans == []
    # The last export (cumulative: a slow exit may export the one measurement twice).
    duration = [p for p in got.points if p.metric == "gen_ai.client.operation.duration"][-1]
    assert duration.count == 1
    assert duration.attributes["gen_ai.request.model"] == "mock-model"
    assert duration.attributes["gen_ai.response.model"] == "mock-model"
