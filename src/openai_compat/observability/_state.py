"""Whether anything records telemetry: an SDK (or any real provider) has been set.

The request path asks before it builds a span, so with the API alone (no SDK configured)
a request costs a clock read, not a span that records nothing. Asking the API itself costs
microseconds (it looks at the environment each time), so the answer is kept: a provider
once set stays set (the API refuses to replace it); until both are set, the API is asked
again at most every `RECHECK_S` seconds.
"""

from __future__ import annotations

import time

from opentelemetry import metrics, trace

__all__ = ["RECHECK_S", "forget", "metrics_on", "providers_on", "tracer", "tracing_on"]

#: How long an answer of "not set" is kept before the API is asked again.
RECHECK_S = 0.25
# The API's own stand-ins, there until an SDK's provider is set.
_NO_METER_PROVIDERS = ("_ProxyMeterProvider", "NoOpMeterProvider")
_NO_TRACER_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)

_known = (False, False)
_asked_at = -RECHECK_S


def _ask() -> tuple[bool, bool]:
    traced = not isinstance(trace.get_tracer_provider(), _NO_TRACER_PROVIDERS)
    measured = type(metrics.get_meter_provider()).__name__ not in _NO_METER_PROVIDERS
    return traced, measured


def providers_on() -> tuple[bool, bool]:
    """(tracing on, metrics on): whether a tracer / meter provider other than the API's
    stand-ins is set."""
    global _known, _asked_at
    known = _known
    if known[0] and known[1]:
        return known
    now = time.monotonic()
    if now - _asked_at < RECHECK_S:
        return known
    _known, _asked_at = _ask(), now
    return _known


def forget() -> None:
    """Drop the kept answer: the next `providers_on` asks the API (a provider was just set)."""
    global _known, _asked_at
    _known, _asked_at = (False, False), -RECHECK_S


_tracer: trace.Tracer | None = None


def tracer() -> trace.Tracer:
    """The package's tracer, asked for once: a provider once set stays set, and the API's
    tracer of a provider not set yet delegates to the one set later."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer("openai_compat")
    return _tracer


def tracing_on() -> bool:
    """True when a tracer provider other than the API's stand-ins is set."""
    return providers_on()[0]


def metrics_on() -> bool:
    """True when a meter provider other than the API's stand-ins is set."""
    return providers_on()[1]
