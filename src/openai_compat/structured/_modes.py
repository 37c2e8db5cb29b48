"""The four ways to ask a server for a schema, and reading the answer each way gives.

``json_schema`` sends ``response_format: {"type": "json_schema", ...}`` (the server may
enforce it); ``tools`` sends one function tool whose parameters are the schema, forced with
``tool_choice``; ``json_object`` sends ``{"type": "json_object"}`` and states the schema in
a system message; ``prompt`` only states it. `AUTO_ORDER` is the order ``auto`` tries them in,
strongest first.

>>> payload = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
>>> schema = Schema("ticket", {"type": "object"})
>>> apply_mode("json_schema", payload, schema)["response_format"]["type"]
'json_schema'
>>> [m["role"] for m in apply_mode("prompt", payload, schema)["messages"]]
['system', 'user']
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigurationError
from . import _responses
from ._schema import Schema

__all__ = [
    "AUTO_ORDER",
    "MODES",
    "answer_value",
    "apply_mode",
    "check_mode",
    "refuses_mode",
    "schema_field",
]

MODES: tuple[str, ...] = ("auto", "json_schema", "json_object", "tools", "prompt")
AUTO_ORDER: tuple[str, ...] = ("json_schema", "tools", "json_object", "prompt")

# Words of a 400/422 that says the server does not take what a mode sends.
_MODE_WORDS = {
    "json_schema": ("response_format", "json_schema", "response format", "schema"),
    "json_object": ("response_format", "json_object", "response format"),
    "tools": ("tools", "tool_choice", "tool choice", "function"),
    "prompt": (),
}


def check_mode(value: Any, field: str = "schema_mode") -> str:
    """``value`` when it names a mode, else a `ConfigurationError` naming the modes."""
    if value not in MODES:
        raise ConfigurationError(f"must be one of {', '.join(MODES)}, got {value!r}", field=field)
    return str(value)


def schema_field(dialect: str) -> tuple[str, ...]:
    """Where a dialect's request carries the schema: chat's ``response_format``; the
    Responses API's ``text.format`` (its ``json_schema`` format is flat:
    ``{"type": "json_schema", "name", "schema", "strict"}``). Another dialect has none: a
    `ConfigurationError` says so.

    >>> schema_field("chat"), schema_field("responses")
    (('response_format',), ('text', 'format'))
    """
    if dialect == "responses":
        return ("text", "format")
    if dialect == "chat":
        return ("response_format",)
    raise ConfigurationError(
        f"structured outputs need the chat or responses API, not {dialect}", field="schema"
    )


def instruction(schema: Schema) -> str:
    """The system message that states the schema (``json_object`` and ``prompt`` modes)."""
    return (
        "Answer with one JSON object only, no prose and no code fence, that is valid against "
        f"this JSON Schema:\n{json.dumps(schema.schema, ensure_ascii=False)}"
    )


def _with_system(payload: dict[str, Any], text: str) -> dict[str, Any]:
    messages = payload.get("messages")
    messages = list(messages) if isinstance(messages, list) else []
    return {**payload, "messages": [{"role": "system", "content": text}, *messages]}


def apply_mode(
    mode: str, payload: dict[str, Any], schema: Schema, api: str = "chat"
) -> dict[str, Any]:
    """``payload`` (a request of the ``api`` dialect: ``chat`` or ``responses``) asking for
    ``schema`` the way ``mode`` does."""
    if api == "responses":
        return _responses.request_body(mode, payload, schema, instruction(schema))
    if mode == "json_schema":
        return {
            **payload,
            "response_format": {"type": "json_schema", "json_schema": schema.to_json()},
        }
    if mode == "json_object":
        body = _with_system(payload, instruction(schema))
        body["response_format"] = {"type": "json_object"}
        return body
    if mode == "tools":
        function = {
            "name": schema.name,
            "description": "Record the answer with these fields.",
            "parameters": schema.schema,
        }
        return {
            **payload,
            "tools": [{"type": "function", "function": function}],
            "tool_choice": {"type": "function", "function": {"name": schema.name}},
        }
    if mode == "prompt":
        return _with_system(payload, instruction(schema))
    raise ValueError(f"not a mode: {mode!r}")


def _message(response: dict[str, Any]) -> dict[str, Any]:
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return message
    return {}


def _chat_parts(response: dict[str, Any]) -> tuple[Any, str | None]:
    """A chat answer's first tool call's arguments (None: no call) and its text."""
    message = _message(response)
    calls = message.get("tool_calls")
    arguments = None
    if isinstance(calls, list) and calls and isinstance(calls[0], dict):
        function = calls[0].get("function") or {}
        arguments = function.get("arguments") if isinstance(function, dict) else None
    content = message.get("content")
    return arguments, content if isinstance(content, str) else None


def answer_value(
    mode: str, response: dict[str, Any], api: str = "chat"
) -> tuple[Any, str | None, bool]:
    """What an answer of the ``api`` dialect holds: ``(value, text, followed)``: the parsed
    JSON value (None when there is none), the text it was read from, and whether the answer
    took the form the mode asks for (a tool call for ``tools``, JSON text for the
    ``response_format`` modes).
    """
    from ._extract import extract_json

    if api == "responses":
        arguments, text = _responses.function_call(response), _responses.response_text(response)
    else:
        arguments, text = _chat_parts(response)
    if isinstance(arguments, dict):
        return arguments, json.dumps(arguments), True
    if isinstance(arguments, str):
        return extract_json(arguments), arguments, True
    value = extract_json(text) if text else None
    if mode == "tools":
        return value, text, False
    if mode in ("json_schema", "json_object"):
        followed = text is not None and _is_bare_json(text)
        return value, text, followed
    return value, text, True


def _is_bare_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def refuses_mode(mode: str, status: int | None, message: str = "") -> bool:
    """True when an error answer to a request in ``mode`` is the server refusing the mode:
    a 400 or 422 (the request differs from one the server takes only by the mode's
    fields), or another 4xx whose message names what the mode sends.

    >>> refuses_mode("json_schema", 400), refuses_mode("tools", 501, "tools unsupported")
    (True, False)
    """
    if status in (400, 422):
        return True
    if status is None or not 400 <= status < 500:
        return False
    lowered = message.lower()
    return any(word in lowered for word in _MODE_WORDS.get(mode, ()))
