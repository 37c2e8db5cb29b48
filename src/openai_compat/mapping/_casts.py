"""Casts of the mapping list's ``type``: text, numbers, booleans."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ._kinds import kind_of

__all__ = ["as_text", "cast_value"]

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def as_text(value: Any, *, compact: bool = False) -> str:
    """A value as text: strings as they are, null as "", JSON spelling for the rest.

    A value JSON has no spelling for (a Parquet timestamp or decimal) is written as its
    ``str()``.

    ``compact`` drops the spaces after ``,`` and ``:`` in objects and lists (CSV cells).

    >>> as_text(True), as_text(None), as_text({"a": 1}), as_text([1, 2], compact=True)
    ('true', '', '{"a": 1}', '[1,2]')
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) or not isinstance(value, dict | list | tuple):
        return str(value)
    if compact:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return json.dumps(value, ensure_ascii=False, default=str)


def _as_number(value: Any) -> int | float:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ValueError(f"{kind_of(value)} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value
    text = str(value).strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    raise ValueError(f"{json.dumps(value, ensure_ascii=False)} is not a number")


def cast_value(value: Any, type_: str | None) -> Any:
    """Cast ``value`` per the mapping ``type``; raises ``ValueError`` when it cannot.

    >>> cast_value("3.7", "number"), cast_value("42", "number"), cast_value(True, "boolean")
    (3.7, 42, True)
    >>> cast_value(None, "string"), cast_value("yes", "boolean"), cast_value([1], "array")
    ('', False, [1])
    """
    kind = (type_ or "").strip().lower()
    if kind == "string":
        return as_text(value)
    if kind == "number":
        return _as_number(value)
    if kind == "boolean":
        return value is True or value == "true"
    return value
