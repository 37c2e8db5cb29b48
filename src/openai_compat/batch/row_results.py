"""A row's result: its outputs picked out of the answer, or why it failed, with the keys
every line of the run has.

`RowResults` makes the `BatchResult` of each row for the row engine: a failure before or
after a request (``error``, ``attempts``), an answer sent now or found in the cache (the
outputs picked out; a missing output or a cut-off answer is the row's error), and then the
keys the run adds to every line alike: ``input`` and ``response`` when asked for (for a
refused row, the error answer's body), ``cached`` and ``cost`` when the run has a cache or
prices (`RowAccounting`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..mapping import OutputField, extract_outputs
from ..structured import Answer
from ._row_accounting import RowAccounting
from .results import BatchResult

__all__ = ["RowResults", "failed"]


def failed(
    key: str | int,
    index: int,
    message: str,
    status: int | None = None,
    attempts: int = 0,
    latency_ms: float = 0.0,
) -> BatchResult:
    """The result of a row that failed: ``status`` None when no HTTP answer said so.

    >>> failed("a", 0, "no key").error
    {'status': None, 'message': 'no key'}
    """
    return BatchResult(
        key=key,
        index=index,
        error={"status": status, "message": message or "failed"},
        attempts=attempts,
        latency_ms=latency_ms,
    )


class RowResults:
    """The results of one run's rows, each with the same keys."""

    def __init__(
        self,
        outputs: Sequence[OutputField],
        *,
        include_input: bool,
        include_response: bool,
        accounting: RowAccounting | None,
    ) -> None:
        self.outputs = list(outputs)
        self.include_input = include_input
        self.include_response = include_response
        self.accounting = accounting

    def answered(
        self,
        key: str | int,
        index: int,
        response: dict[str, Any],
        warnings: list[str],
        attempts: int,
        latency_ms: float,
        request_id: str | None,
    ) -> BatchResult:
        """The result of an answer (sent now, or from the cache): its outputs picked out."""
        output, problems = extract_outputs(response, self.outputs)
        problems.extend(warnings)
        usage = response.get("usage")
        result = BatchResult(
            key=key,
            index=index,
            output=output,
            usage=usage if isinstance(usage, dict) else None,
            error={"status": None, "message": "; ".join(problems)} if problems else None,
            attempts=attempts,
            latency_ms=latency_ms,
            request_id=request_id,
        )
        if self.include_response:
            result.response = response
        return result

    def validated(
        self, key: str | int, index: int, answer: Answer, latency_ms: float
    ) -> BatchResult:
        """The result of a structured answer: the outputs read from the valid value, or
        the failed row naming the last answer's problems (that answer kept as ``response``
        when responses are asked for)."""
        problems: list[str] = []
        output: dict[str, Any] = {}
        if answer.valid:
            output, problems = extract_outputs(answer.value, self.outputs)
        else:
            problems.append(answer.error_message())
        problems.extend(answer.warnings)
        result = BatchResult(
            key=key,
            index=index,
            output=output,
            usage=answer.usage,
            error={"status": None, "message": "; ".join(problems)} if problems else None,
            attempts=answer.attempts,
            latency_ms=latency_ms,
            request_id=answer.request_id,
            schema={"mode": answer.mode, "answers": answer.answers, "valid": answer.valid},
        )
        if self.include_response:
            result.response = answer.response
        return result

    def refused(self, result: BatchResult, body: Any) -> BatchResult:
        """Keep an error answer's body as the failed row's ``response`` when responses are
        asked for: a gateway puts the cause there (a guardrail's ``hook_results``)."""
        if self.include_response and body is not None:
            result.response = body
        return result

    def complete(self, result: BatchResult, row: Any) -> BatchResult:
        """Add the keys every line of the run has (``input``, ``response``, ``cached``,
        ``cost``) that ``result`` lacks."""
        if self.accounting is not None:
            self.accounting.complete(result)
        if self.include_input:
            result.input = row
        if self.include_response and not result.has_response:
            result.response = None
        return result
