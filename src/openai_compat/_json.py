"""JSON at the doors: an object from a dict or JSON text, any value from JSON text, a file.

Each problem is a `ConfigurationError` naming the field, with the parser's line and column.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, UsageError

__all__ = [
    "json_kind",
    "load_json_text",
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
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(_invalid(exc), field=field) from None


def parse_json_object(value: Any, *, field: str) -> dict[str, Any]:
    """Return ``value`` as a JSON object: a dict as is, or JSON text holding an object.

    >>> parse_json_object('{"model": "m"}', field="request_format")
    {'model': 'm'}
    """
    if isinstance(value, dict):
        return value
    if not isinstance(value, str | bytes):
        raise ConfigurationError(
            f"must be a JSON object ({{...}}) or JSON text holding one, got {json_kind(value)}",
            field=field,
        )
    try:
        parsed = json.loads(value)
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
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} file {path} is not valid JSON: {where_invalid(exc)}") from None
