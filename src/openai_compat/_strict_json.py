"""Strict JSON (RFC 8259): what a value holds that JSON cannot, and a copy of it that can.

Python's ``json`` writes ``NaN`` and ``Infinity`` (not JSON), and a string holding a lone
surrogate (``"\\ud800"`` in a JSON input line, or bytes decoded with ``surrogatepass``) cannot
be encoded as UTF-8. A payload with either cannot be sent; a result line with either must
still be written, as strict JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ._json import MAX_DEPTH, depth_problem

__all__ = ["dumps_strict", "encode_body", "encode_strict", "json_problem", "json_safe"]

_SURROGATE = re.compile("[\ud800-\udfff]")
# ``json.dumps`` with these options, made once: ``dumps`` with any option builds a new
# encoder per call, and a batch run encodes every row's body.
_BODY_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
# Deeper than any value the doors let in (MAX_DEPTH), and far from the recursion limit.
_SAFE_DEPTH = 500


def _where(path: list[str]) -> str:
    return ".".join(path) or "the value"


def _leaf_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is None:
            return None
        return (
            f"holds text that is not valid Unicode (a lone surrogate "
            f"\\u{ord(found.group()):04x}); fix that text in the input"
        )
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value}, which JSON cannot hold"
    if isinstance(value, int):
        try:
            str(value)
        except ValueError:
            return "is an integer too long to write as JSON"
        return None
    return f"is a {type(value).__name__}, which JSON cannot hold"


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be written as strict JSON (with where), or None.

    >>> json_problem({"a": [1, float("nan")]})
    'a.1 is nan, which JSON cannot hold'
    >>> json_problem({"a": "ok"}) is None
    True
    """
    deep = depth_problem(value)
    if deep is not None:
        return f"the value {deep}"
    # Known now to be at most MAX_DEPTH deep: plain recursion is safe.
    return _problem(value, [])


def _problem(value: Any, path: list[str]) -> str | None:
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"{_where(path)} has a key of type {type(key).__name__}"
            where = [*path, str(key)]
            problem = _leaf_problem(key) if isinstance(key, str) else None
            if problem is not None:
                return f"the key {_where(where)} {problem}"
            problem = _problem(child, where)
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for i, child in enumerate(value):
            problem = _problem(child, [*path, str(i)])
            if problem is not None:
                return problem
        return None
    problem = _leaf_problem(value)
    return None if problem is None else f"{_where(path)} {problem}"


def dumps_strict(value: Any) -> str:
    """``value`` as compact JSON text that is strict JSON; raises ``ValueError`` (with
    `json_problem`'s words) when it cannot be.

    Fast: one C-speed ``json.dumps``; the walk that finds the reason runs only on failure.

    >>> dumps_strict({"a": [1, "é"]})
    '{"a":[1,"é"]}'
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        raise ValueError(json_problem(value) or "cannot be written as JSON") from None
    # ASCII text (flagged by CPython, so O(1)) cannot hold a surrogate.
    if not text.isascii() and _SURROGATE.search(text):
        raise ValueError(json_problem(value) or "holds a lone surrogate")
    # Only text with more than MAX_DEPTH brackets can nest more deeply.
    if text.count("[") + text.count("{") > MAX_DEPTH:
        deep = depth_problem(value)
        if deep is not None:
            raise ValueError(f"the value {deep}")
    return text


def encode_body(value: Any) -> bytes:
    """``value`` as a request body: JSON in UTF-8, Python's default separators, no NaN.

    The one spelling of a request body (the client's, and `encode_strict`'s): the bytes
    a payload builder hands over are the bytes the client would have made. Raises
    ``ValueError`` (a lone surrogate: ``UnicodeEncodeError``), ``TypeError`` or
    ``RecursionError`` as ``json.dumps`` and ``str.encode`` do.
    """
    return _BODY_ENCODER.encode(value).encode("utf-8")


def encode_strict(value: Any) -> bytes:
    """`encode_body`, checked as `dumps_strict` checks (strict JSON, at most ``MAX_DEPTH``
    deep); raises ``ValueError`` with `json_problem`'s words when it cannot be sent.

    >>> encode_strict({"a": [1, "é"]})
    b'{"a": [1, "\\xc3\\xa9"]}'
    """
    try:
        body = encode_body(value)
    except (ValueError, TypeError, RecursionError):  # NaN, a lone surrogate, a date, a cycle
        raise ValueError(json_problem(value) or "cannot be written as JSON") from None
    # Only a body with more than MAX_DEPTH brackets can nest more deeply.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        deep = depth_problem(value)
        if deep is not None:
            raise ValueError(f"the value {deep}")
    return body


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` that is strict JSON: NaN and infinities become null, lone
    surrogates U+FFFD, other objects their text; what nests past 500 levels becomes null.

    >>> json_safe({"a": [float("inf"), "x\\ud800"]})
    {'a': [None, 'x\ufffd']}
    """
    if _depth > _SAFE_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            _safe_text(str(k) if not isinstance(k, str) else k): json_safe(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [json_safe(v, _depth + 1) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _safe_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return None if _leaf_problem(value) else value
    return _safe_text(str(value))


def _safe_text(text: str) -> str:
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)
