"""An input file checked as OpenAI checks it when a batch is created.

Each line is a JSON object with a string ``custom_id`` (unique in the file), ``method``
``POST``, ``url`` equal to the batch's endpoint, and a ``body`` object naming its
``model``; every line names the same model; the file has at least one line and at most
``max_lines``. Each problem is one entry of OpenAI's ``errors.data``: ``{code, message,
param, line}`` (line numbers from 1). A blank line is skipped, as the batch readers skip it.

>>> import io
>>> data = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",'
>>> data += b' "body": {"model": "m"}}\\n{"custom_id": "a"}\\nnot json\\n'
>>> found = check_lines(io.BytesIO(data), "/v1/chat/completions", max_lines=10)
>>> [(e["line"], e["code"], e["param"]) for e in found.errors][:2]
[(2, 'duplicate_custom_id', 'custom_id'), (2, 'missing_required_parameter', 'method')]
>>> found.errors[-1]["line"], found.errors[-1]["code"]
(3, 'invalid_json_line')
>>> found.total, found.models
(3, ['m'])
>>> first_model(io.BytesIO(b"\\n" + data)), first_model(io.BytesIO(b"not json\\n" + data))
('m', None)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ERRORS", "InputCheck", "check_lines", "first_model"]

# The errors listed for one file: enough to fix a file; a file of 50,000 bad lines is not
# listed whole.
MAX_ERRORS = 100
_FIELDS = ("custom_id", "method", "url", "body")


@dataclass
class InputCheck:
    """What a file holds: its lines, the models they name, and the problems found."""

    total: int = 0
    models: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    more_errors: int = 0

    def add(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        """One problem (counted only, past `MAX_ERRORS`)."""
        if len(self.errors) >= MAX_ERRORS:
            self.more_errors += 1
            return
        self.errors.append({"code": code, "message": message, "param": param, "line": line})


def _check_line(
    data: Any, number: int, endpoint: str, seen: set[str], found: InputCheck
) -> str | None:
    """The line's problems into ``found``; its model when it names one."""
    if not isinstance(data, dict):
        found.add("invalid_json_line", "This line is not a JSON object.", number)
        return None
    custom_id = data.get("custom_id")
    if isinstance(custom_id, str):
        if custom_id in seen:
            found.add(
                "duplicate_custom_id",
                f"The custom_id {custom_id!r} is used by an earlier line; each line's "
                "custom_id must be unique in the file.",
                number,
                "custom_id",
            )
        seen.add(custom_id)
    for name in _FIELDS:
        if name not in data or data[name] is None:
            found.add(
                "missing_required_parameter",
                f"Missing required parameter: {name!r}.",
                number,
                name,
            )
    if custom_id is not None and not isinstance(custom_id, str):
        found.add("invalid_custom_id", "The custom_id must be a string.", number, "custom_id")
    method = data.get("method")
    if method is not None and method != "POST":
        found.add("invalid_method", f"The method must be 'POST', not {method!r}.", number, "method")
    url = data.get("url")
    if url is not None and url != endpoint:
        found.add(
            "url_mismatch",
            f"The url {url!r} does not match the batch's endpoint {endpoint!r}; every line "
            "of a batch is for its endpoint.",
            number,
            "url",
        )
    body = data.get("body")
    if body is None:
        return None
    if not isinstance(body, dict):
        found.add("invalid_body", "The body must be a JSON object.", number, "body")
        return None
    model = body.get("model")
    if not isinstance(model, str) or not model:
        found.add(
            "missing_required_parameter",
            "Missing required parameter: 'body.model'.",
            number,
            "body.model",
        )
        return None
    return model


def check_lines(lines: Iterable[bytes], endpoint: str, *, max_lines: int) -> InputCheck:
    """Check every line of an input file for a batch of ``endpoint``."""
    found = InputCheck()
    seen: set[str] = set()
    models: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        found.total += 1
        try:
            data = json.loads(raw)
        except ValueError:
            found.add("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        model = _check_line(data, number, endpoint, seen, found)
        if model is not None and model not in models:
            models[model] = number
            if len(models) == 2:
                found.add(
                    "model_mismatch",
                    f"The model {model!r} differs from the model of line "
                    f"{next(iter(models.values()))}; every line of a batch names one model.",
                    number,
                    "body.model",
                )
    found.models = list(models)
    if found.total == 0:
        found.add("empty_file", "The input file has no lines.", None)
    elif found.total > max_lines:
        found.add(
            "too_many_tasks",
            f"The file has {found.total} lines; a batch holds at most {max_lines} "
            "(OPENAI_COMPAT_BATCH_MAX_LINES).",
            None,
        )
    return found


def first_model(lines: Iterable[bytes]) -> str | None:
    """The ``body.model`` of the first line, read alone to choose the batch's connector
    when it is created; None when that line names none (then the file has a problem,
    which its check finds)."""
    for raw in lines:
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        body = data.get("body") if isinstance(data, dict) else None
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) and model else None
    return None
