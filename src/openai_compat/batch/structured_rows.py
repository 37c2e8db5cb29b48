"""Cached answers of a run with a schema: taken only when they validate in the run's mode."""

from __future__ import annotations

from typing import Any

from ..structured import Answer, Structured

__all__ = ["cached_answer", "cached_valid"]


def cached_valid(structured: Structured, response: dict[str, Any]) -> bool:
    """True when a cached answer validates (one that does not is asked again, live)."""
    _, problems, _ = structured.validate_answer(response)
    return not problems


def cached_answer(structured: Structured, response: dict[str, Any], request_id: Any) -> Answer:
    """A valid cached answer as the row's `Answer` (nothing sent: no attempts, no usage)."""
    value, problems, _ = structured.validate_answer(response)
    answer = Answer(
        value=value,
        response=response,
        mode=structured.mode or "auto",
        answers=1,
        attempts=0,
        latency_s=0.0,
        usage=None,
        problems=problems,
        request_id=request_id if isinstance(request_id, str) else None,
    )
    structured.counts.add(answer)
    return answer
