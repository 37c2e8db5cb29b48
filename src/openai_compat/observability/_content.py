"""Prompts and answers on spans: only when the standard opt-in variable asks for them.

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` records the request's messages
and the answer's as ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON); without
it no content is recorded at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["capture_content", "input_messages", "output_messages"]

_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def capture_content() -> bool:
    """True when the environment opts in to recording message content."""
    return os.environ.get(_VARIABLE, "").strip().lower() == "true"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def input_messages(body: Mapping[str, Any]) -> str | None:
    """The request's input (``messages``, ``input`` or ``prompt``) as JSON, or None."""
    for field in ("messages", "input", "prompt"):
        if field in body:
            return _dumps(body[field])
    return None


def output_messages(answer: Mapping[str, Any]) -> str | None:
    """The answer's messages (or output) as JSON, or None."""
    choices = answer.get("choices")
    if isinstance(choices, list):
        return _dumps(
            [
                {
                    "message": choice.get("message", choice.get("text")),
                    "finish_reason": choice.get("finish_reason"),
                }
                for choice in choices
                if isinstance(choice, dict)
            ]
        )
    if "output" in answer:
        return _dumps(answer["output"])
    return None
