"""Traces and metrics in the OpenTelemetry GenAI conventions, on the API alone.

Every request to an endpoint is a client span named ``{gen_ai.operation.name}
{gen_ai.request.model}`` with the conventions' attributes (provider, request parameters,
response model, id and finish reasons, token usage, server address, ``error.type``), one
event per retry, and its ``traceparent`` sent to the server; the ``gen_ai.client.token.usage``
and ``gen_ai.client.operation.duration`` histograms measure them. Batch runs add a span for
the run and one per row (on a Ray or Spark cluster, the workers' rows beneath the driver's
run: `worker_telemetry`). Nothing is recorded until an SDK is configured (`configure_from_env`
does it from the standard ``OTEL_*`` variables, with the ``[otel]`` extra installed); message
content only with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``; headers (the
API key) never.

>>> from openai_compat.apis import CHAT
>>> RequestObserver("http://127.0.0.1:8000/v1/chat/completions", CHAT).operation
'chat'
"""

from __future__ import annotations

from ._batch import JoinedRun, RowSpan, RunSpan, run_span
from ._cluster import WorkerTelemetry, parent_context, worker_telemetry
from ._conventions import operation_name, request_attributes
from ._request import RequestObserver, RequestSpan, error_type
from ._setup import configure_from_env, flush, instrument_app, shutdown, wanted
from ._state import metrics_on, tracing_on

__all__ = [
    "JoinedRun",
    "RequestObserver",
    "RequestSpan",
    "RowSpan",
    "RunSpan",
    "WorkerTelemetry",
    "configure_from_env",
    "error_type",
    "flush",
    "instrument_app",
    "metrics_on",
    "operation_name",
    "parent_context",
    "request_attributes",
    "run_span",
    "shutdown",
    "tracing_on",
    "wanted",
    "worker_telemetry",
]
