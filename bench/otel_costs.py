"""Where a traced batch row's CPU goes in the OpenTelemetry Python SDK, piece by piece.

    python bench/otel_costs.py              # 5,000 rows' telemetry, no HTTP at all
    python bench/otel_costs.py --rows 20000

`bench/batch.py --peers ours,traced,floor` gives the run-level ratio (tracing on against off);
this script says where the difference goes. Two parts, each timed with this thread's or this
process's CPU clock (needs the ``[otel]`` extra):

1. Tracing off: what a request pays to ask whether anything records telemetry (no SDK set).
   The SDK's pieces one at a time, on providers that keep everything in memory: a span with
   and without attributes, a child span, ``set_attributes``, context attach, ``traceparent``
   injection, a histogram record with and without attributes, and the OTLP protobuf encoding
   of one span of a request's attributes (what the batch span processor's thread does).
2. A row's whole telemetry as a batch run makes it (the run's span, the row's span, the
   request's span with its ``traceparent``, the three histogram records), through this
   package's own classes, exported over OTLP/HTTP to a loopback receiver with the SDK's
   default batch span processor: this thread's CPU (the request path) and the process's (with
   the exporter's thread), per row, traces and metrics and traces only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable
from typing import Any

_REQUEST = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "server.address": "127.0.0.1",
    "server.port": 8000,
    "gen_ai.request.model": "mock-model",
}
_RESPONSE = {
    "gen_ai.response.model": "mock-model",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 3,
}


def _per_call(fn: Callable[[], Any], n: int) -> float:
    fn()
    started = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - started) / n * 1e6


def pieces(n: int) -> None:
    from opentelemetry import context, propagate, trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    from openai_compat.apis import CHAT
    from openai_compat.observability import RequestObserver

    # Tracing off first (no provider set in this process): what every request pays.
    observer = RequestObserver("http://127.0.0.1:8000/v1/chat/completions", CHAT)
    body, headers = {"model": "mock-model", "messages": []}, {"a": "b"}
    assert observer.start(body, headers) is None
    off = _per_call(lambda: observer.start(body, headers), n * 10)
    empty = _per_call(lambda: None, n * 10)
    print(f"tracing off (this thread's CPU, {n * 10:,} calls):")
    print(f"  {'a request asks whether to trace':<48} {off * 1000:7.0f} ns")
    print(f"  {'of which an empty call':<48} {empty * 1000:7.0f} ns")

    kept: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            if len(kept) < 512:
                kept.append(span)

    provider = TracerProvider()
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("bench")
    histogram = (
        MeterProvider(metric_readers=[InMemoryMetricReader()])
        .get_meter("bench")
        .create_histogram("h")
    )
    parent = trace.set_span_in_context(tracer.start_span("parent"))
    measure = {**_REQUEST, "gen_ai.response.model": "mock-model"}

    def request_span() -> None:
        span = tracer.start_span("chat m", attributes=_REQUEST)
        span.set_attributes(_RESPONSE)
        span.end()

    def attach() -> None:
        context.detach(context.attach(parent))

    rows = [
        ("span, no attributes (start + end)", lambda: tracer.start_span("a").end()),
        ("span, 5 attributes at start", lambda: tracer.start_span("a", attributes=_REQUEST).end()),
        ("child span of a given parent", lambda: tracer.start_span("a", context=parent).end()),
        ("request span (5 at start, 5 set_attributes)", request_span),
        ("context attach + detach", attach),
        ("traceparent injection", lambda: propagate.inject({}, context=parent)),
        ("histogram record, 6 attributes", lambda: histogram.record(0.02, measure)),
        ("histogram record, no attributes", lambda: histogram.record(0.02)),
    ]
    print(f"SDK pieces (this thread's CPU, {n:,} calls each):")
    for label, fn in rows:
        print(f"  {label:<48} {_per_call(fn, n):7.1f} us")
    kept.clear()
    for _ in range(512):
        request_span()
    started = time.thread_time()
    for _ in range(10):
        encode_spans(kept).SerializePartialToString()
    per_span = (time.thread_time() - started) / 10 / len(kept) * 1e6
    print(f"  {'OTLP protobuf encoding of one request span':<48} {per_span:7.1f} us")


def _row_worker(n: int, endpoint: str) -> None:
    """One process: set the SDK up from the environment, make ``n`` rows' telemetry."""
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    # Room for every span: a loop faster than any run must not drop what it measures.
    os.environ.setdefault("OTEL_BSP_MAX_QUEUE_SIZE", str(4 * n))
    from openai_compat.apis import CHAT
    from openai_compat.observability import RequestObserver, configure_from_env, run_span, shutdown

    if not configure_from_env():
        raise SystemExit("the SDK did not start: is the [otel] extra installed?")
    observer = RequestObserver("http://127.0.0.1:8000/v1/chat/completions", CHAT)
    headers = {"content-type": "application/json"}
    bodies = [
        {"model": "mock-model", "messages": [{"role": "user", "content": str(i)}]} for i in range(n)
    ]
    answers = [
        {
            "id": f"chatcmpl-{i}",
            "model": "mock-model",
            "choices": [
                {"message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }
        for i in range(n)
    ]
    results = [
        types.SimpleNamespace(key=i, index=i, attempts=1, cached=False, error=None)
        for i in range(n)
    ]
    thread, process = time.thread_time(), time.process_time()
    run = run_span({"openai_compat.batch.concurrency": 64})
    assert run is not None
    for i in range(n):
        row = run.row(i, i)
        row.enter()
        span = observer.start(bodies[i], headers)
        assert span is not None
        span.finish(answers[i])
        row.end(results[i])
    run.end({"rows.ok": n})
    thread = time.thread_time() - thread
    shutdown()  # the last export counts too
    process = time.process_time() - process
    print(f"{thread / n * 1e6:.1f} {process / n * 1e6:.1f}")


def rows(n: int, repeat: int) -> None:
    # The same loopback receiver bench/batch.py uses (it reads each export and answers 200).
    here = os.path.dirname(os.path.abspath(__file__))
    sink = subprocess.Popen(
        [sys.executable, os.path.join(here, "batch.py"), "--otlp-sink"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        endpoint = f"http://127.0.0.1:{sink.stdout.readline().strip()}"
        print(
            f"\na row's telemetry, {n:,} rows, OTLP/HTTP to a loopback receiver (medians of {repeat}):"
        )
        print(f"  {'':<32} {'request path':>12} {'+ exporter':>12}")
        for label, extra in (
            ("traces and metrics", {}),
            ("traces only", {"OTEL_METRICS_EXPORTER": "none"}),
        ):
            figures = []
            for _ in range(repeat):
                done = subprocess.run(
                    [sys.executable, __file__, "--row-worker", str(n), "--endpoint", endpoint],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, **extra},
                )
                thread, process = (float(v) for v in done.stdout.split())
                figures.append((thread, process))
            figures.sort(key=lambda f: f[1])
            thread, process = figures[len(figures) // 2]
            print(f"  {label:<32} {thread:>9.0f} us {process:>9.0f} us  per row (CPU)")
    finally:
        sink.terminate()
        sink.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=20000, help="calls of each SDK piece")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--row-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row_worker:
        _row_worker(args.row_worker, args.endpoint)
        return
    pieces(args.calls)
    rows(args.rows, args.repeat)


if __name__ == "__main__":
    main()
