"""The Responses API's shapes of the four modes, and of the answer each gives.

The request carries the schema in ``text.format`` (flat: ``{"type": "json_schema", "name",
"schema", "strict"}``), its function tools are flat too (``{"type": "function", "name",
"parameters"}``, forced by ``{"type": "function", "name"}``), a system message is the
``instructions`` field, and the conversation is the ``input`` list. The answer's text is its
``output_text``; a tool call is a ``function_call`` item of ``output``.

>>> body = request_body("json_schema", {"model": "m", "input": "Hi"}, Schema("t", {}))
>>> body["text"]["format"]["type"], body["text"]["format"]["name"]
('json_schema', 't')
>>> function_call({"output": [{"type": "function_call", "name": "t", "arguments": "{}"}]})
'{}'
"""

from __future__ import annotations

from typing import Any

from ..apis import output_text
from ._schema import Schema

__all__ = ["function_call", "reask_input", "request_body", "response_text"]


def _with_instructions(payload: dict[str, Any], text: str) -> dict[str, Any]:
    # The row's own instructions come first: the schema's are added, never replace them.
    given = payload.get("instructions")
    joined = f"{given}\n\n{text}" if isinstance(given, str) and given else text
    return {**payload, "instructions": joined}


def _with_format(payload: dict[str, Any], fmt: dict[str, Any]) -> dict[str, Any]:
    text = payload.get("text")
    return {**payload, "text": {**(text if isinstance(text, dict) else {}), "format": fmt}}


def request_body(
    mode: str, payload: dict[str, Any], schema: Schema, instruction: str = ""
) -> dict[str, Any]:
    """``payload`` (a Responses request) asking for ``schema`` the way ``mode`` does;
    ``instruction`` is the text that states the schema (``json_object`` and ``prompt``)."""
    if mode == "json_schema":
        return _with_format(payload, {"type": "json_schema", **schema.to_json()})
    if mode == "json_object":
        return _with_format(_with_instructions(payload, instruction), {"type": "json_object"})
    if mode == "tools":
        tool = {
            "type": "function",
            "name": schema.name,
            "description": "Record the answer with these fields.",
            "parameters": schema.schema,
        }
        return {
            **payload,
            "tools": [tool],
            "tool_choice": {"type": "function", "name": schema.name},
        }
    if mode == "prompt":
        return _with_instructions(payload, instruction)
    raise ValueError(f"not a mode: {mode!r}")


def function_call(response: dict[str, Any]) -> Any:
    """The arguments of the answer's first ``function_call`` item (None: it has none)."""
    output = response.get("output")
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict) and item.get("type") == "function_call":
            return item.get("arguments")
    return None


def response_text(response: dict[str, Any]) -> str | None:
    """The answer's ``output_text`` (the field a door adds, else its message parts)."""
    text = response.get("output_text")
    return text if isinstance(text, str) else output_text(response)


def reask_input(body: dict[str, Any], answer: str, message: str) -> dict[str, Any]:
    """``body`` with the model's ``answer`` and the re-ask ``message`` after its input (an
    ``input`` string becomes the user message it stands for)."""
    given = body.get("input")
    if isinstance(given, str):
        items: list[Any] = [{"role": "user", "content": given}]
    else:
        items = list(given) if isinstance(given, list) else []
    return {
        **body,
        "input": [
            *items,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": message},
        ],
    }
