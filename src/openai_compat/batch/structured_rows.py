"""Cached answers of a run with a schema: taken only when they validate in the run's mode."""

from __future__ import annotations

from typing import Any

from ..structured import Answer, Structured

__all__ = ["cached_answer", "cached_valid", "structured_options"]


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


def structured_options(spec: Any) -> dict[str, Any]:
    """The structured-output options of a `RunSpec` to rebuild it on another process
    (a Ray actor, a Spark executor): the schema as OpenAI's wrapper (a file is read once,
    here), the mode and the re-asks; none without a schema."""
    if spec.schema is None:
        return {}
    options: dict[str, Any] = {"schema": spec.schema_value.to_json()}
    if spec.schema_mode is not None:
        options["schema_mode"] = spec.schema_mode
    if spec.reasks is not None:
        options["reasks"] = spec.reasks
    return options
