"""From an SSE event's data to the JSON objects it holds, and the errors sent in a stream.

The same for every API dialect (what the objects mean is the dialect's business, in
``apis/``). Pure functions over strings and dicts: no I/O here, so the whole streaming path
can be tested and benchmarked without a socket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ._text import excerpt
from .errors import StreamError

__all__ = ["DONE", "chunks_from_event", "error_from_chunk"]

DONE = "[DONE]"
_loads = json.loads


def chunks_from_event(data: str) -> Iterator[dict[str, Any]]:
    """The JSON objects one event's data holds (usually exactly one).

    An event whose data is not valid JSON as a whole but whose lines each are holds one
    chunk per line: servers that separate events with a single newline produce that.
    Raises ``StreamError`` for data that is not JSON at all.
    """
    try:
        value = _loads(data)
    except ValueError:
        if "\n" not in data:
            raise StreamError(f"the stream sent data that is not JSON: {excerpt(data)}") from None
        for line in data.split("\n"):
            line = line.strip()
            if not line:
                continue
            if line.startswith("data:"):
                line = line[5:].lstrip()
            if line == DONE:
                continue
            try:
                item = _loads(line)
            except ValueError:
                raise StreamError(
                    f"the stream sent data that is not JSON: {excerpt(line)}"
                ) from None
            yield _as_object(item)
        return
    yield _as_object(value)


def _as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StreamError(f"the stream sent a JSON {type(value).__name__}, not an object")
    return value


def error_from_chunk(chunk: dict[str, Any]) -> StreamError | None:
    """The error an in-stream ``{"error": ...}`` chunk carries, or None for a normal chunk."""
    err = chunk.get("error")
    if err is None or err is False:
        return None
    if isinstance(err, dict):
        message = str(err.get("message") or err.get("type") or json.dumps(err))
        code = err.get("code")
        kind = err.get("type")
        extra = ", ".join(
            f"{k} {v}" for k, v in (("type", kind), ("code", code)) if v not in (None, "")
        )
        text = f"the endpoint sent an error in the stream: {message}"
        return StreamError(
            f"{text} ({extra})" if extra else text,
            body=chunk,
            code=None if code is None else str(code),
        )
    return StreamError(f"the endpoint sent an error in the stream: {err}", body=chunk)
