"""Spans of batch runs: one for the run, one per row, with the row's request spans beneath.

A row's span is current while its request is sent, so the request's span (and the
``traceparent`` the server gets) hangs beneath it; the run's span is current when the run
starts its tasks, so every row's span hangs beneath the run's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Status, StatusCode

from . import _conventions as names
from ._state import tracer, tracing_on

__all__ = ["RowSpan", "RunSpan", "run_span"]

_ROW = "openai_compat.batch.row"
_KEY, _INDEX = f"{_ROW}.key", f"{_ROW}.index"
_ATTEMPTS, _CACHED, _OUTCOME = f"{_ROW}.attempts", f"{_ROW}.cached", f"{_ROW}.outcome"


class RunSpan:
    """The span of one batch run; `attach` makes it current (tasks started then inherit it)."""

    __slots__ = ("_context", "_span")

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self._span = tracer().start_span("openai_compat.batch.run", attributes=dict(attributes))
        # Every row's span is started beneath this context: made once, not per row.
        self._context = trace.set_span_in_context(self._span)

    def attach(self) -> object:
        """Make the run's span current; give the token back to `detach`."""
        return context.attach(self._context)

    @staticmethod
    def detach(token: object) -> None:
        """Undo `attach`."""
        context.detach(token)  # type: ignore[arg-type]

    def row(self, key: str | int, index: int) -> RowSpan:
        """The span of a row starting now, beneath the run's."""
        return RowSpan(key, index, self._context)

    def end(self, counts: Mapping[str, Any]) -> None:
        """End the run's span with its counts (rows ok, failed, cached, requests)."""
        self._span.set_attributes({f"openai_compat.batch.{k}": v for k, v in counts.items()})
        self._span.end()


class RowSpan:
    """The span of one row; current between `enter` and `end` (its request goes beneath)."""

    __slots__ = ("_span", "_token")

    def __init__(self, key: str | int, index: int, parent: context.Context) -> None:
        self._span = tracer().start_span(
            _ROW,
            context=parent,
            attributes={_KEY: str(key), _INDEX: index},
        )
        self._token: object | None = None

    def enter(self) -> None:
        """Make the row's span current (in this task) while its request is sent."""
        self._token = context.attach(trace.set_span_in_context(self._span))

    def end(self, result: Any) -> None:
        """End with what came of the row (a `BatchResult`): attempts, cached, outcome."""
        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        span = self._span
        if not span.is_recording():  # sampled out: nothing to give it
            span.end()
            return
        error = result.error
        span.set_attributes(
            {
                _ATTEMPTS: result.attempts,
                _CACHED: bool(result.cached),
                _OUTCOME: "ok" if error is None else "failed",
            }
        )
        if error is not None:
            status = error.get("status") if isinstance(error, dict) else None
            span.set_attribute(names.ERROR_TYPE, str(status) if status else "row_failed")
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def run_span(attributes: Mapping[str, Any]) -> RunSpan | None:
    """The span of a batch run starting now, or None when nothing records traces."""
    return RunSpan(attributes) if tracing_on() else None
