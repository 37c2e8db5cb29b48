"""Spans and metrics of requests to an endpoint, named by the OpenTelemetry GenAI conventions.

One `RequestObserver` per configuration (the client's); one `RequestSpan` per request, from
the first attempt to the end of the answer (retries are events on it, as the conventions
ask of a logical operation). The span's context goes to the server as ``traceparent``.
Nothing from the request's headers is ever recorded: the API key lives there.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _conventions as names
from ._content import capture_content, input_messages, output_messages
from ._state import providers_on, tracer

__all__ = ["RequestObserver", "RequestSpan", "error_type"]

_RETRY_EVENT = "openai_compat.retry"


def error_type(exc: BaseException) -> str:
    """The ``error.type`` of a failed request: the HTTP status the endpoint answered with,
    else the error's class name (low cardinality, never its message)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return str(status)
    return type(exc).__name__


class _Instruments:
    """The two client histograms of the conventions, made once per meter provider."""

    def __init__(self) -> None:
        meter = metrics.get_meter(names.INSTRUMENTATION)
        self.tokens = meter.create_histogram(
            names.TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(names.TOKEN_BUCKETS),
        )
        self.duration = meter.create_histogram(
            names.OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS),
        )


_instruments: _Instruments | None = None
_instruments_of: object = None


def _histograms() -> _Instruments:
    global _instruments, _instruments_of
    provider = metrics.get_meter_provider()
    if _instruments is None or _instruments_of is not provider:
        _instruments, _instruments_of = _Instruments(), provider
    return _instruments


class RequestObserver:
    """Makes the spans of one configuration's requests (``dialect`` names the operation)."""

    __slots__ = ("_base", "_capture", "_measures", "_names", "dialect", "operation")

    def __init__(self, url: str, dialect: Any) -> None:
        self.dialect = dialect
        self.operation = names.operation_name(dialect)
        parts = urlsplit(url)
        base: dict[str, Any] = {
            names.OPERATION: self.operation,
            names.PROVIDER_NAME: names.PROVIDER,
        }
        if parts.hostname:
            base[names.SERVER_ADDRESS] = parts.hostname
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None and parts.scheme in ("http", "https"):
            port = 443 if parts.scheme == "https" else 80
        if port is not None:
            base[names.SERVER_PORT] = port
        self._base = base
        # Read once per configuration: the environment is asked for the opt-in per client,
        # not per request (a request would pay two environment look-ups for it).
        self._capture = capture_content()
        # A configuration's requests share a few attribute sets (a model, the model that
        # answered, an error type): each is built once and reused for every measurement.
        self._measures: dict[tuple[Any, Any, Any], _MeasureAttributes] = {}
        self._names: dict[Any, str] = {}

    def start(self, body: Mapping[str, Any], headers: dict[str, str]) -> RequestSpan | None:
        """The span of a request about to be sent, or None when nothing records telemetry."""
        traced, measured = providers_on()
        if not (traced or measured):
            return None
        return RequestSpan(self, body, headers, traced, measured)

    def _span_name(self, model: Any) -> str:
        name = self._names.get(model)
        if name is None:
            name = self.operation if model is None else f"{self.operation} {model}"
            if len(self._names) < _KEPT:
                self._names[model] = name
        return name

    def _measure_attributes(self, model: Any, answered: Any, error: Any) -> _MeasureAttributes:
        key = (model, answered, error)
        kept = self._measures.get(key)
        if kept is None:
            kept = _MeasureAttributes(self._base, model, answered, error)
            if len(self._measures) < _KEPT:
                self._measures[key] = kept
        return kept


# How many attribute sets (and span names) one configuration keeps: models and error types
# are few; a configuration that sends more (a model per row) builds the rest each time.
_KEPT = 64


class _MeasureAttributes:
    """The attributes of one request's measurements: the duration's and each token type's."""

    __slots__ = ("duration", "input", "output")

    def __init__(self, base: Mapping[str, Any], model: Any, answered: Any, error: Any) -> None:
        attrs = dict(base)
        if model is not None:
            attrs[names.REQUEST_MODEL] = model
        if answered is not None:
            attrs[names.RESPONSE_MODEL] = answered
        if error is not None:
            attrs[names.ERROR_TYPE] = error
        self.duration = attrs
        self.input = {**attrs, names.TOKEN_TYPE: "input"}
        self.output = {**attrs, names.TOKEN_TYPE: "output"}


class RequestSpan:
    """One request's span and measurements; ``headers`` are the ones to send (with
    ``traceparent``). Ends once, by `finish` or `fail`."""

    __slots__ = (
        "_ended",
        "_measured",
        "_model",
        "_observer",
        "_span",
        "_started",
        "answer",
        "headers",
    )

    def __init__(
        self,
        observer: RequestObserver,
        body: Mapping[str, Any],
        headers: dict[str, str],
        traced: bool,
        measured: bool,
    ) -> None:
        self._started = time.perf_counter()
        self._observer = observer
        self._ended = False
        self._measured = measured
        self.answer: Mapping[str, Any] | None = None
        model = body.get("model")
        self._model = model if isinstance(model, str) else None
        self._span: trace.Span | None = None
        self.headers = headers
        if traced:
            # One dict, given at creation: the SDK checks a span's attributes each time
            # they are set, so they are set once here and once at the end.
            attributes = {**observer._base, **names.request_attributes(body)}
            if observer._capture:
                content = input_messages(body)
                if content is not None:
                    attributes[names.INPUT_MESSAGES] = content
            span = tracer().start_span(
                observer._span_name(self._model), kind=SpanKind.CLIENT, attributes=attributes
            )
            if span.get_span_context().is_valid:
                # A span the sampler left out still goes to the server (its flags say so).
                self.headers = dict(headers)
                propagate.inject(self.headers, context=trace.set_span_in_context(span))
            # A span that records nothing is not given its answer's attributes either.
            self._span = span if span.is_recording() else None

    @property
    def span(self) -> trace.Span | None:
        """The span (None when it records nothing: only metrics, or sampled out)."""
        return self._span

    def retry(self, number: int, exc: BaseException, wait: float) -> None:
        """Record retry ``number`` (1 for the first), after ``exc``, waiting ``wait`` s."""
        if self._span is None:
            return
        attributes: dict[str, Any] = {
            "openai_compat.retry.number": number,
            "openai_compat.retry.wait_s": round(wait, 6),
            names.ERROR_TYPE: error_type(exc),
        }
        status = getattr(exc, "status", None)
        if isinstance(status, int):
            attributes["http.response.status_code"] = status
        self._span.add_event(_RETRY_EVENT, attributes)

    def finish(self, answer: Mapping[str, Any] | None = None) -> None:
        """End with ``answer`` (the JSON answer, or the one a stream assembled; None: the
        one `answer` was set to, if any)."""
        if self._ended:
            return
        self._ended = True
        answer = answer if answer is not None else self.answer
        response: dict[str, Any] = {}
        usage = None
        if answer is not None:
            response = _response_attributes(answer)
            usage = self._observer.dialect.usage(answer)
        input_tokens = getattr(usage, "input", None)
        output_tokens = getattr(usage, "output", None)
        span = self._span
        if span is not None:
            if input_tokens is not None:
                response[names.INPUT_TOKENS] = input_tokens
            if output_tokens is not None:
                response[names.OUTPUT_TOKENS] = output_tokens
            if answer is not None and self._observer._capture:
                content = output_messages(answer)
                if content is not None:
                    response[names.OUTPUT_MESSAGES] = content
            span.set_attributes(response)
            span.end()
        if self._measured:
            self._measure(response.get(names.RESPONSE_MODEL), None, input_tokens, output_tokens)

    def fail(self, exc: BaseException) -> None:
        """End as failed by ``exc`` (its type only: messages stay off the span's attributes)."""
        if self._ended:
            return
        self._ended = True
        kind = error_type(exc)
        span = self._span
        if span is not None:
            span.set_attribute(names.ERROR_TYPE, kind)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
            span.end()
        if self._measured:
            self._measure(None, kind, None, None)

    def _measure(
        self,
        answered: str | None,
        error: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
    ) -> None:
        attrs = self._observer._measure_attributes(self._model, answered, error)
        histograms = _histograms()
        histograms.duration.record(time.perf_counter() - self._started, attrs.duration)
        if input_tokens is not None:
            histograms.tokens.record(input_tokens, attrs.input)
        if output_tokens is not None:
            histograms.tokens.record(output_tokens, attrs.output)


def _response_attributes(answer: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    model = answer.get("model")
    if isinstance(model, str):
        out[names.RESPONSE_MODEL] = model
    ident = answer.get("id")
    if isinstance(ident, str):
        out[names.RESPONSE_ID] = ident
    reasons = [
        str(choice["finish_reason"])
        for choice in answer.get("choices") or ()
        if isinstance(choice, dict) and choice.get("finish_reason")
    ]
    if not reasons and isinstance(answer.get("status"), str):  # the responses API
        reasons = [answer["status"]]
    if reasons:
        out[names.FINISH_REASONS] = tuple(reasons)
    return out
