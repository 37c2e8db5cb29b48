"""Whether anything records telemetry: an SDK (or any real provider) has been set.

The request path asks before it builds a span, so with the API alone (no SDK configured)
a request costs one type check, not a span that records nothing.
"""

from __future__ import annotations

from opentelemetry import metrics, trace

__all__ = ["metrics_on", "tracing_on"]

# The API's own stand-ins, there until an SDK's provider is set.
_NO_METER_PROVIDERS = ("_ProxyMeterProvider", "NoOpMeterProvider")


def tracing_on() -> bool:
    """True when a tracer provider other than the API's stand-ins is set."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def metrics_on() -> bool:
    """True when a meter provider other than the API's stand-ins is set."""
    return type(metrics.get_meter_provider()).__name__ not in _NO_METER_PROVIDERS
