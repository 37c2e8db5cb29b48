"""Spans of batch runs: one for the run, one per row, with the row's request spans beneath.

A row's span is current while its request is sent, so the request's span (and the
``traceparent`` the server gets) hangs beneath it; the run's span is current when the run
starts its tasks, so every row's span hangs beneath the run's. A run on a cluster worker
(one Ray batch, one Spark partition) is part of the driver's run: its rows hang beneath the
driver's run span, named by a ``traceparent`` (`run_span`'s ``parent``), and it makes no
run span of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Status, StatusCode

from . import _conventions as names
from ._cluster import parent_context
from ._state import tracer, tracing_on

__all__ = ["JoinedRun", "RowSpan", "RunSpan", "run_span"]

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

    def end_with(self, summary: Any) -> None:
        """End with a `BatchSummary`'s counts (a cluster job's driver, once it is done); None:
        the job failed before it started."""
        if summary is None:
            self.end({})
            return
        self.end(
            {
                "rows.ok": summary.ok,
                "rows.failed": summary.failed,
                "rows.cached": summary.cached,
                "requests": summary.requests,
                "interrupted": bool(summary.interrupted),
            }
        )


class JoinedRun(RunSpan):
    """A part of a run whose span is in another process (the driver's): rows hang beneath
    that span; this part has no span of its own to end."""

    __slots__ = ()

    def __init__(self, parent: context.Context) -> None:  # no super(): no span started here
        self._span = trace.get_current_span(parent)
        self._context = parent

    def end(self, counts: Mapping[str, Any]) -> None:
        """Nothing to end: the driver ends its run's span with the job's counts."""


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


def run_span(attributes: Mapping[str, Any], parent: str | None = None) -> RunSpan | None:
    """The span of a batch run starting now, or None when nothing records traces.

    With ``parent`` (W3C ``traceparent`` text: the driver's run span), the run is a part of
    that one: its rows hang beneath it (`JoinedRun`).
    """
    if not tracing_on():
        return None
    joined = parent_context(parent)
    return RunSpan(attributes) if joined is None else JoinedRun(joined)
