"""Text the application can store and show: no lone surrogates, JSON that encodes as UTF-8.

A JSON body may carry ``"\\ud800"``: valid JSON syntax, but a lone surrogate is not a
character, and UTF-8 cannot encode it. Saved, such a value makes every answer that shows it
fail; so every string of a name or a configuration (keys too) is checked before anything is
written, and answers are rendered to bytes before they are sent, never half-way.

>>> [problem] = surrogate_problems_of({"headers": {"X-A": "ok\\ud800"}}, "advanced")
>>> problem["field"], problem["message"][:45]
('advanced.headers.X-A', 'holds U+D800 (a lone surrogate) at position 3')
>>> render_json({"a": "é"})
b'{"a":"\\xc3\\xa9"}'
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.encoders import jsonable_encoder
from starlette.responses import Response

from ..._characters import printable, strings_of, surrogate_problem, surrogate_problems
from ..._strict_json import json_safe
from .problems import FieldError

__all__ = [
    "json_answer",
    "json_document",
    "json_response",
    "printable",
    "render_json",
    "surrogate_problems_of",
]

# A surrogate written as a JSON escape, in JSON text such as request_format.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _escaped_problem(text: str) -> str | None:
    # JSON text (a template, headers given as text) whose escapes decode to a lone
    # surrogate: only parsed when an escape of one is there (a pair is fine).
    if _ESCAPED_SURROGATE.search(text) is None:
        return None
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return None
    problem = surrogate_problem(decoded)
    return None if problem is None else f"is JSON text that {problem}"


def surrogate_problems_of(value: Any, field: str) -> list[FieldError]:
    """One problem per string of ``value`` (nested keys and values) holding a lone surrogate,
    directly or as a JSON escape inside JSON text, each under ``field``.

    A problem never quotes the value: it may be a secret.
    """
    problems = [
        FieldError(f"{field}.{path}" if path else field, reason)
        for path, reason in surrogate_problems(value)
    ]
    for path, text, is_key in strings_of(value):
        reason = None if is_key else _escaped_problem(text)
        if reason is not None:
            problems.append(FieldError(f"{field}.{printable(path)}" if path else field, reason))
    return problems


def render_json(document: Any, *, allow_nan: bool = False) -> bytes:
    """``document`` as compact UTF-8 JSON, as ``JSONResponse`` renders it.

    Raises ``UnicodeEncodeError`` (a lone surrogate) or ``ValueError`` (a cycle, or NaN
    unless ``allow_nan``) when it cannot be shown.
    """
    text = json.dumps(document, ensure_ascii=False, allow_nan=allow_nan, separators=(",", ":"))
    return text.encode("utf-8")


def json_response(body: bytes, status_code: int = 200) -> Response:
    """The answer of JSON ``body`` already rendered (`render_json`)."""
    return Response(body, status_code=status_code, media_type="application/json")


def _strict(document: Any) -> bytes:
    try:
        return render_json(document)
    except ValueError:
        return render_json(json_safe(document))


def json_document(document: Any, status_code: int = 200) -> Response:
    """``document`` answered as strict JSON (`render_json`): a NaN or an infinity, which
    JSON cannot hold and clients refuse to parse, is answered as null (`json_safe`)."""
    return json_response(_strict(document), status_code)


def json_answer(content: Any, status_code: int = 200) -> Response:
    """``content`` answered as FastAPI answers a value a route returns (``jsonable_encoder``,
    then ``JSONResponse``'s rendering), for a route whose response model only documents;
    strict JSON, as `json_document`'s."""
    return json_response(_strict(jsonable_encoder(content)), status_code)
