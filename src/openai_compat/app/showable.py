"""Text the application can store and show: no lone surrogates, JSON that encodes as UTF-8.

A JSON body may carry ``"\\ud800"``: valid JSON syntax, but a lone surrogate is not a
character, and UTF-8 cannot encode it. Saved, such a value makes every answer that shows it
fail; so every string of a name or a configuration (keys too) is checked before anything is
written, and answers are rendered to bytes before they are sent, never half-way.

>>> [problem] = surrogate_problems({"headers": {"X-A": "ok\\ud800"}}, "advanced")
>>> problem["field"], problem["message"][:45]
('advanced.headers.X-A', 'holds a lone surrogate (U+D800 at position 3)')
>>> render_json({"a": "é"})
b'{"a":"\\xc3\\xa9"}'
"""

from __future__ import annotations

import json
import re
from typing import Any

from .problems import FieldError

__all__ = ["printable", "render_json", "surrogate_problems"]

_SURROGATE = re.compile("[\ud800-\udfff]")
# A surrogate written as a JSON escape, in JSON text such as request_format.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def printable(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\ud800``), safe to show."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _problem(text: str) -> str | None:
    found = _SURROGATE.search(text)
    if found is None:
        return _escaped_problem(text)
    where = f"U+{ord(found.group()):04X} at position {found.start() + 1}"
    return f"holds a lone surrogate ({where}), which is not a character; send valid Unicode text"


def _escaped_problem(text: str) -> str | None:
    # JSON text (a template, headers given as text) whose escapes decode to a lone
    # surrogate: only parsed when an escape of one is there (a pair is fine).
    if _ESCAPED_SURROGATE.search(text) is None:
        return None
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not surrogate_problems(decoded, ""):
        return None
    return (
        "is JSON text whose \\u escapes make a lone surrogate (a \\ud800 to \\udfff "
        "escape without its pair), which is not a character; send valid Unicode text"
    )


def surrogate_problems(value: Any, field: str) -> list[FieldError]:
    """One problem per string of ``value`` (nested keys and values) holding a lone surrogate.

    A problem never quotes the value: it may be a secret. A key that holds one is named by
    its escaped form, and reported as the key of its parent.
    """
    problems: list[FieldError] = []
    # Iterative: the depth of a body is bounded at the door, but a stack costs nothing here.
    pending: list[tuple[str, Any]] = [(field, value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            reason = _problem(item)
            if reason is not None:
                problems.append(FieldError(path, reason))
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                key_text = str(key)
                key_reason = _problem(key_text)
                child_path = f"{path}.{printable(key_text)}"
                if key_reason is not None:
                    problems.append(FieldError(child_path, f"(the key) {key_reason}"))
                pending.append((child_path, child))
        elif isinstance(item, list):
            pending.extend((f"{path}.{i}", child) for i, child in reversed(list(enumerate(item))))
    return problems


def render_json(document: Any) -> bytes:
    """``document`` as compact UTF-8 JSON, as ``JSONResponse`` renders it.

    Raises ``UnicodeEncodeError`` (a lone surrogate) or ``ValueError`` (NaN, a cycle)
    when it cannot be shown.
    """
    text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")
