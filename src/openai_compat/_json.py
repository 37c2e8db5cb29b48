"""JSON at the doors: an object from a dict or JSON text, any value from JSON text, a file.

Each problem is a `ConfigurationError` naming the field, with the parser's line and column.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, UsageError

__all__ = [
    "MAX_DEPTH",
    "check_depth",
    "depth_problem",
    "json_kind",
    "load_json_text",
    "loads",
    "parse_json_object",
    "read_json_file",
    "read_text_file",
    "where_invalid",
]

_EXAMPLE = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}'


def json_kind(value: Any) -> str:
    """What a JSON value is, for messages: ``"an array"``, ``"a number"``, ``"null"``...

    >>> json_kind([1]), json_kind(2.5), json_kind(None)
    ('an array', 'a number', 'null')
    """
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if type(value) in kinds:
        return kinds[type(value)]
    if isinstance(value, int | float):
        return "a number"
    return "an object" if isinstance(value, dict) else "a value"


MAX_DEPTH = 64
"""How deeply JSON may nest at the doors. Real payloads nest a few levels (a message, its
content parts, a tool's JSON schema); far deeper input is hostile or broken, and would reach
Python's recursion limit in the parser, in pydantic or when the payload is serialised."""


def _too_deep(limit: int) -> str:
    return (
        f"is nested more than {limit} levels deep; flatten it (objects and arrays inside "
        "each other)"
    )


def depth_problem(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why ``value`` nests too deeply (objects and arrays inside each other), or None.

    Walked without recursion, so no input can exhaust the stack here.

    >>> depth_problem({"a": [{"b": 1}]}) is None
    True
    >>> depth_problem([[[1]]], limit=2)
    'is nested more than 2 levels deep; flatten it (objects and arrays inside each other)'
    """
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > limit:
            return _too_deep(limit)
        todo.extend((child, depth + 1) for child in children)
    return None


def _refuse_constant(field: str) -> Callable[[str], Any]:
    def refuse(name: str) -> Any:
        raise ConfigurationError(
            f"holds {name}, which is not a JSON number (RFC 8259); use null or a number",
            field=field,
        )

    return refuse


def loads(text: str | bytes, *, field: str) -> Any:
    """``json.loads`` for input from outside: too deep a nesting is a ``ConfigurationError``.

    ``json.JSONDecodeError`` passes through for the caller to word. ``NaN`` and ``Infinity``
    (which Python's parser accepts) are refused: JSON (RFC 8259) has no such numbers, and an
    endpoint would be sent invalid JSON.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant(field))
    except ConfigurationError:
        raise
    except RecursionError:  # deeper than the parser's own stack allows
        raise ConfigurationError(_too_deep(MAX_DEPTH), field=field) from None
    except json.JSONDecodeError:
        raise
    except UnicodeDecodeError as exc:  # bytes that are not UTF-8 (nor UTF-16/32)
        raise ConfigurationError(f"is not UTF-8 text ({exc.reason})", field=field) from None
    except ValueError:  # the only other: an integer beyond Python's 4300-digit limit
        raise ConfigurationError(
            f"holds a number of more than {sys.get_int_max_str_digits()} digits; "
            "no endpoint reads such a number",
            field=field,
        ) from None
    check_depth(value, field=field)
    return value


def check_depth(value: Any, *, field: str) -> None:
    """Raise a ``ConfigurationError`` naming ``field`` when ``value`` nests too deeply."""
    problem = depth_problem(value)
    if problem is not None:
        raise ConfigurationError(problem, field=field)


def where_invalid(exc: json.JSONDecodeError) -> str:
    """What the JSON parser found wrong, and where: ``"Expecting value at line 1 column 9"``."""
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"


def _invalid(exc: json.JSONDecodeError) -> str:
    return f"is not valid JSON ({where_invalid(exc)})"


def load_json_text(raw: Any, *, field: str) -> Any:
    """``raw`` parsed when it is JSON text (str or bytes), else ``raw`` itself.

    >>> load_json_text('[1, 2]', field="outputs"), load_json_text([3], field="outputs")
    ([1, 2], [3])
    """
    if not isinstance(raw, str | bytes):
        check_depth(raw, field=field)
        return raw
    try:
        return loads(raw, field=field)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(_invalid(exc), field=field) from None


def parse_json_object(value: Any, *, field: str) -> dict[str, Any]:
    """Return ``value`` as a JSON object: a dict as is, or JSON text holding an object.

    >>> parse_json_object('{"model": "m"}', field="request_format")
    {'model': 'm'}
    """
    if isinstance(value, dict):
        check_depth(value, field=field)
        return value
    if not isinstance(value, str | bytes):
        raise ConfigurationError(
            f"must be a JSON object ({{...}}) or JSON text holding one, got {json_kind(value)}",
            field=field,
        )
    try:
        parsed = loads(value, field=field)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{_invalid(exc)}; write a JSON object such as {_EXAMPLE}", field=field
        ) from None
    if not isinstance(parsed, dict):
        raise ConfigurationError(
            f"must be a JSON object ({{...}}), got {json_kind(parsed)}", field=field
        )
    return parsed


def read_text_file(path: str) -> str:
    """The text of ``path`` (``-`` = standard input); `UsageError` when it cannot be read."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {path}: it is not UTF-8 text ({exc.reason})") from None


def read_json_file(path: str, what: str) -> Any:
    """The JSON value in the file ``path`` (``-`` = standard input), for the command line.

    ``what`` names the file in messages (``"config"``, ``"mapping"``); every problem is a
    `UsageError` (exit code 2).
    """
    text = read_text_file(path)
    try:
        return loads(text, field=what)
    except ConfigurationError as exc:
        raise UsageError(f"{what} file {path} {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} file {path} is not valid JSON: {where_invalid(exc)}") from None
