"""The OpenTelemetry SDK, set up the standard way from ``OTEL_*`` variables (the ``[otel]`` extra).

The doors (``read``, ``check``, ``batch``, ``serve``) call `configure_from_env` first: when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a traces/metrics endpoint, or ``OTEL_TRACES_EXPORTER`` /
``OTEL_METRICS_EXPORTER``) is set, traces and metrics are exported over OTLP/HTTP; the SDK
itself reads ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` (and
its argument), the exporters' headers, timeouts and the batch processor's settings. Without
those variables, or without the extra, nothing is set up and the API stays a no-op.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Mapping
from typing import Any

from ._state import forget

__all__ = ["configure_from_env", "flush", "instrument_app", "shutdown", "wanted"]

_log = logging.getLogger("openai_compat.observability")
_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
_configured: list[object] = []


def _exporters(env: Mapping[str, str], variable: str) -> list[str]:
    """The exporters a ``OTEL_*_EXPORTER`` variable names (``otlp`` when an endpoint is set)."""
    given = env.get(variable)
    if given is None:
        return ["otlp"] if any(env.get(name) for name in _ENDPOINTS) else []
    return [name.strip().lower() for name in given.split(",") if name.strip()]


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment asks for telemetry to be exported.

    >>> wanted({})
    False
    >>> wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    True
    >>> wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
    False
    """
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    chosen = _exporters(env, "OTEL_TRACES_EXPORTER") + _exporters(env, "OTEL_METRICS_EXPORTER")
    return any(name != "none" for name in chosen)


def configure_from_env() -> bool:
    """Set up the SDK's tracer and meter providers from the environment, once per process.

    True when telemetry is now exported. Without the ``[otel]`` extra (the SDK and the OTLP
    exporter) a warning says what to install and nothing else happens.
    """
    if _configured:
        return True
    if not wanted():
        return False
    try:
        from ._sdk import providers
    except ImportError as exc:
        _log.warning(
            "OpenTelemetry variables are set but the SDK is not installed (%s): "
            "install openai-compat[otel] to export traces and metrics",
            exc.name,
        )
        return False
    made = providers(
        _exporters(os.environ, "OTEL_TRACES_EXPORTER"),
        _exporters(os.environ, "OTEL_METRICS_EXPORTER"),
    )
    _configured.extend(made)
    forget()  # asked before the providers were set: ask again now
    atexit.register(shutdown)
    return True


def flush() -> None:
    """Export what is buffered now, keeping the exporters (a cluster worker calls it when its
    batch or partition ends: its process may be killed without running exit handlers). It
    returns when the exporters have answered (or given up: ``OTEL_EXPORTER_OTLP_TIMEOUT``)."""
    for provider in list(_configured):
        try:
            provider.force_flush()  # type: ignore[attr-defined]
        except Exception as exc:  # an exporter that cannot flush must not fail the rows
            _log.warning("OpenTelemetry flush failed: %s", type(exc).__name__)


def shutdown() -> None:
    """Flush what is buffered and stop the exporters (the doors call it on exit)."""
    while _configured:
        provider = _configured.pop()
        try:
            provider.shutdown()  # type: ignore[attr-defined]
        except Exception as exc:  # an exporter that cannot flush must not fail the command
            _log.warning("OpenTelemetry shutdown failed: %s", type(exc).__name__)


def instrument_app(app: Any) -> bool:
    """Give a FastAPI application server spans (the request to the endpoint beneath them),
    when telemetry was set up here and the FastAPI instrumentation is installed."""
    if not _configured:
        return False
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        _log.warning(
            "no server spans: the FastAPI instrumentation is not installed (%s); "
            "install openai-compat[otel]",
            exc.name,
        )
        return False
    FastAPIInstrumentor.instrument_app(app)
    return True
