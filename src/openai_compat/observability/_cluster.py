"""Telemetry on cluster workers: the driver's ``OTEL_*`` settings and its run's context.

Ray actors and Spark tasks run in processes of their own, which do not have the driver's
environment (a cluster's workers were started before, elsewhere). The driver captures its
``OTEL_*`` variables and the context of its run's span when the job is defined
(`worker_telemetry`); each worker process sets the SDK up from those variables once
(`WorkerTelemetry.start`), hangs its row spans beneath the driver's run span (the W3C
``traceparent`` text), and flushes what it buffered when its batch or partition ends
(`WorkerTelemetry.flush`), since a worker process may be killed without running its exit
handlers. A driver without ``OTEL_*`` variables captures nothing: its workers import no
SDK and send no ``traceparent``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._setup import configure_from_env, flush, wanted
from ._state import tracer, tracing_on

__all__ = ["WorkerTelemetry", "parent_context", "worker_telemetry"]

_log = logging.getLogger("openai_compat.observability")
_W3C = TraceContextTextMapPropagator()
_TRACEPARENT = "traceparent"
#: How long a worker waits for its buffered spans and metrics to be exported: a collector
#: that does not answer must not hold the rows up (the export goes on in the background).
FLUSH_WAIT_S = 5.0
_flush_lock = threading.Lock()
_flushing: threading.Thread | None = None


@dataclass(frozen=True)
class WorkerTelemetry:
    """What a worker needs to export as its driver does (pickled to it with the job).

    Its text names the variables, never their values (``OTEL_EXPORTER_OTLP_HEADERS`` may
    hold a collector's token), wherever a cluster shows the job's arguments:

    >>> WorkerTelemetry({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer t0ken"}, None)
    WorkerTelemetry(environment=['OTEL_EXPORTER_OTLP_HEADERS'], traceparent=None)
    """

    #: The driver's ``OTEL_*`` variables (exporter endpoint and headers, sampler, service).
    environment: Mapping[str, str]
    #: The driver's run span, as W3C ``traceparent`` text; None when it has none.
    traceparent: str | None

    def __repr__(self) -> str:
        names = sorted(self.environment)
        return f"WorkerTelemetry(environment={names}, traceparent={self.traceparent!r})"

    def start(self) -> bool:
        """Set the SDK up in this process from the driver's variables (once per process:
        the first job's settings stay for the process's life). True when it exports."""
        # The driver's settings win over the worker's own: the trace is the driver's.
        os.environ.update(self.environment)
        return configure_from_env()

    @staticmethod
    def flush(wait_s: float = FLUSH_WAIT_S) -> bool:
        """Export what this process buffered (its spans, its metrics) now, waiting at most
        ``wait_s`` seconds; True when it is done. One export runs at a time."""
        global _flushing
        with _flush_lock:
            if _flushing is None or not _flushing.is_alive():
                _flushing = threading.Thread(
                    target=flush, name="openai-compat-otel-flush", daemon=True
                )
                _flushing.start()
            running = _flushing
        running.join(wait_s)
        return not running.is_alive()


def worker_telemetry(attributes: Mapping[str, Any] | None = None) -> WorkerTelemetry | None:
    """The driver's telemetry for its workers, captured now; None when ``OTEL_*`` asks for none.

    The workers' row spans hang beneath the current span (the command line's run span, or
    the caller's own). Without one, and with tracing on here, a run span (``attributes``)
    is started and ended now: it marks when the job was defined, and joins the rows of all
    workers in one trace.
    """
    if not wanted():
        return None
    environment = {name: value for name, value in os.environ.items() if name.startswith("OTEL_")}
    current = context.get_current()
    if not trace.get_current_span(current).get_span_context().is_valid and tracing_on():
        span = tracer().start_span("openai_compat.batch.run", attributes=dict(attributes or {}))
        span.end()
        current = trace.set_span_in_context(span)
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=current)
    return WorkerTelemetry(environment, carrier.get(_TRACEPARENT))


def parent_context(traceparent: str | None) -> context.Context | None:
    """The context a ``traceparent`` text names (a span in another process); None without
    one, or when the text is not a valid ``traceparent``.

    >>> parent_context(None) is None
    True
    >>> parent_context("not a traceparent") is None
    True
    """
    if not traceparent:
        return None
    found = _W3C.extract({_TRACEPARENT: traceparent})
    if not trace.get_current_span(found).get_span_context().is_valid:
        _log.warning("ignoring a traceparent that is not valid W3C trace context")
        return None
    return found
