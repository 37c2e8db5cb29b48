"""The ``structured`` scenario: answers that follow the schema a request asks for.

The schema is read where each mode puts it (``response_format.json_schema.schema``, the
forced tool's ``parameters``, or the system message's JSON Schema), and the answer is an
example value of it: in a tool call when the request sent tools, else as the content.
URL parameters script the departures tests and benchmarks need:

- ``invalid_pct=N``: N % of first asks (requests without an assistant message; spread
  evenly, so any run of 100 rows has exactly N) get text that is not JSON;
  re-asks always get a valid answer.
- ``refuse=response_format`` (or ``tools``; ``text`` on ``/responses``): a request that
  sends it gets 400 naming it.
- ``ignore=1``: every answer is free text (a server that ignores the mode).

On ``/responses`` the same answers come in the Responses API's shape: the schema is read
from ``text.format``, the flat function tool or the ``instructions``; a tool answer is a
``function_call`` item; re-asks are requests whose ``input`` holds an assistant message.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from ._dialects import response_object
from ._replies import Reply, chat_completion, error_reply, json_reply

__all__ = ["StructuredScenario", "example_of"]

_MARK = "JSON Schema:\n"


def example_of(schema: Any, seed: int = 0, depth: int = 0) -> Any:
    """A value valid against the simple schemas tests use (types, enums, nesting).

    >>> example_of({"type": "object", "properties": {"n": {"type": "integer"},
    ...             "l": {"enum": ["a", "b"]}, "t": {"type": "array", "items": {}}}}, 1)
    {'n': 1, 'l': 'b', 't': [None]}
    """
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][seed % len(schema["enum"])]
    for union in ("anyOf", "oneOf"):
        if isinstance(schema.get(union), list) and schema[union]:
            return example_of(schema[union][0], seed, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        return f"text {seed}"
    if kind == "integer":
        return seed
    if kind == "number":
        return seed + 0.5
    if kind == "boolean":
        return seed % 2 == 0
    if kind == "array":
        return [example_of(schema.get("items"), seed, depth + 1)]
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: example_of(sub, seed, depth + 1) for name, sub in properties.items()}
    return None


def _schema_of(body: dict[str, Any]) -> tuple[Any, bool]:
    """The schema a request asks for, and whether it asks through a tool."""
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict):
        function = tools[0].get("function") or {}
        return function.get("parameters"), True
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and isinstance(response_format.get("json_schema"), dict):
        return response_format["json_schema"].get("schema"), False
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") == "system" and isinstance(content, str) and _MARK in content:
            try:
                return json.loads(content.split(_MARK, 1)[1]), False
            except ValueError:
                return None, False
    return None, False


def _stated(text: Any) -> Any:
    """The JSON Schema a system text states after `_MARK` (None: it states none)."""
    if not isinstance(text, str) or _MARK not in text:
        return None
    try:
        return json.loads(text.split(_MARK, 1)[1])
    except ValueError:
        return None


def _responses_schema_of(body: dict[str, Any]) -> tuple[Any, bool]:
    """The schema a Responses request asks for, and whether it asks through a tool."""
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict):
        return tools[0].get("parameters"), True
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt.get("schema"), False
    return _stated(body.get("instructions")), False


def _is_reask(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or body.get("input") or []
    if not isinstance(messages, list):
        return False
    return any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)


def _responses_tool_answer(name: str, value: Any, model: str) -> dict[str, Any]:
    answer = response_object("", model=model)
    answer["output"] = [
        {
            "type": "function_call",
            "id": "fc_mock",
            "call_id": "call_mock",
            "name": name,
            "arguments": json.dumps(value),
            "status": "completed",
        }
    ]
    return answer


class StructuredScenario:
    """The scenario's state: how many first asks it has answered (for ``invalid_pct``)."""

    def __init__(self) -> None:
        self._firsts = itertools.count()
        self._lock = threading.Lock()

    def _first_invalid(self, body: dict[str, Any], query: dict[str, str]) -> bool:
        if _is_reask(body):
            return False
        with self._lock:
            number = next(self._firsts)
        pct = int(query.get("invalid_pct", "0"))
        # Spread evenly: exactly pct of every 100 first asks.
        return (number + 1) * pct // 100 > number * pct // 100

    def reply_responses(self, body: dict[str, Any], query: dict[str, str], model: str) -> Reply:
        """The reply to one Responses request."""
        refused = query.get("refuse")
        if refused and refused in body:
            return error_reply(400, f"{refused} is not supported by this server", param=refused)
        if query.get("ignore"):
            return json_reply(response_object("Sure! The ticket looks urgent.", model=model))
        schema, as_tool = _responses_schema_of(body)
        if self._first_invalid(body, query):
            return json_reply(response_object("I would say it is {not json", model=model))
        value = example_of(schema, len(json.dumps(body.get("input"))) % 7)
        if as_tool:
            name = str(body["tools"][0].get("name", "output"))
            return json_reply(_responses_tool_answer(name, value, model))
        return json_reply(response_object(json.dumps(value), model=model))

    def reply(self, body: dict[str, Any], query: dict[str, str], model: str) -> Reply:
        """The reply to one chat request."""
        refused = query.get("refuse")
        if refused and refused in body:
            return error_reply(400, f"{refused} is not supported by this server", param=refused)
        if query.get("ignore"):
            return json_reply(chat_completion("Sure! The ticket looks urgent.", model=model))
        schema, as_tool = _schema_of(body)
        invalid = False
        if not _is_reask(body):
            with self._lock:
                number = next(self._firsts)
            pct = int(query.get("invalid_pct", "0"))
            # Spread evenly: exactly pct of every 100 first asks.
            invalid = (number + 1) * pct // 100 > number * pct // 100
        if invalid:
            return json_reply(chat_completion("I would say it is {not json", model=model))
        value = example_of(schema, len(json.dumps(body.get("messages"))) % 7)
        if as_tool:
            name = body["tools"][0].get("function", {}).get("name", "output")
            return json_reply(
                chat_completion(
                    None,
                    model=model,
                    finish_reason="tool_calls",
                    tool_calls=[{"name": name, "arguments": value}],
                )
            )
        return json_reply(chat_completion(json.dumps(value), model=model))
