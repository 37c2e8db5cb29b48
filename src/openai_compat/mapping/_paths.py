"""Dotted paths: parsing them, setting and reading values at them, reading a row's column."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ._kinds import kind_of

__all__ = [
    "MISSING",
    "Path",
    "Segment",
    "get_path",
    "harvest",
    "is_index",
    "parse_path",
    "path_text",
    "set_path",
]

Segment = str | int
Path = tuple[Segment, ...]

# What `harvest` returns for a column the row does not have (None is a value a row can hold).
MISSING = object()

# The largest list index a path may set: padding a list to a larger one is a typo (or an
# attack) that would fill memory with nulls.
MAX_INDEX = 10_000
# The list items a whole mapping's paths may reach, padding included: each path alone is
# bounded by MAX_INDEX, but thousands of paths into thousands of lists would not be.
MAX_LIST_ITEMS = 20_000


def is_index(segment: str) -> bool:
    """True when a path segment is a list index.

    >>> is_index("12"), is_index("²"), is_index("x")
    (True, False, False)
    """
    # ASCII digits only (str.isdigit() also accepts "²", which int() refuses), and short
    # enough for int() (which refuses thousands of digits).
    return segment.isascii() and segment.isdigit() and len(segment) < 20


def parse_path(name: Any, *, field: str = "name") -> Path:
    """Split a dotted path; all-digit segments become list indices.

    >>> parse_path("messages.0.content")
    ('messages', 0, 'content')
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError("must be a dotted path such as messages.0.content", field=field)
    segments = name.strip().split(".")
    if any(not s for s in segments):
        raise ConfigurationError(
            f'"{name}" has an empty segment; write a dotted path such as messages.0.content',
            field=field,
        )
    return tuple(int(s) if is_index(s) else s for s in segments)


def path_text(path: Path) -> str:
    """``path`` written as a dotted path again.

    >>> path_text(("messages", 0, "content"))
    'messages.0.content'
    """
    return ".".join(str(s) for s in path)


def set_path(root: dict[str, Any], path: Path, value: Any) -> None:
    """Set ``value`` at ``path`` inside ``root``, creating the missing containers.

    A missing (or null) container becomes a list when the next segment is numeric, else an
    object; a list shorter than an index is padded with ``None``. Raises
    ``ConfigurationError`` when the path runs into a value that is not a container.

    >>> payload = {"model": "m"}
    >>> set_path(payload, ("messages", 1, "content"), "hi")
    >>> payload
    {'model': 'm', 'messages': [None, {'content': 'hi'}]}
    """
    node: Any = root
    for depth, segment in enumerate(path[:-1]):
        child = _child(node, segment)
        if child is MISSING or child is None:
            child = [] if isinstance(path[depth + 1], int) else {}
            _assign(node, segment, child, path[: depth + 1])
        elif not isinstance(child, dict | list):
            where = path_text(path[: depth + 1])
            raise ConfigurationError(
                f"cannot set {path_text(path)}: {where} is {kind_of(child)}, "
                "not an object or a list",
                field="mapping",
            )
        node = child
    _assign(node, path[-1], value, path)


def _child(node: Any, segment: Segment) -> Any:
    if isinstance(node, dict):
        return node.get(str(segment), MISSING)
    if isinstance(node, list) and isinstance(segment, int):
        return node[segment] if segment < len(node) else MISSING
    return MISSING


def _assign(node: Any, segment: Segment, value: Any, path: Path) -> None:
    if isinstance(node, dict):
        node[str(segment)] = value
        return
    if not isinstance(segment, int):
        raise ConfigurationError(
            f'cannot set {path_text(path)}: "{segment}" is not a list index '
            f"and {path_text(path[:-1]) or 'the payload'} is a list",
            field="mapping",
        )
    if segment >= len(node):
        if segment > MAX_INDEX:
            raise ConfigurationError(
                f"cannot set {path_text(path)}: the list index {segment} is above the "
                f"largest allowed, {MAX_INDEX}",
                field="mapping",
            )
        node.extend([None] * (segment + 1 - len(node)))
    node[segment] = value


def get_path(data: Any, path: Path) -> Any:
    """The value at ``path`` in ``data``, or ``None`` when any segment is missing.

    A ``delta`` segment reads ``message`` when there is no ``delta`` (see the doc of
    `openai_compat.mapping`).

    >>> get_path({"choices": [{"message": {"content": "Hi"}}]}, ("choices", 0, "delta", "content"))
    'Hi'
    """
    node = data
    for segment in path:
        if isinstance(node, dict):
            key = str(segment)
            if key in node:
                node = node[key]
            elif key == "delta" and "message" in node:
                node = node["message"]
            else:
                return None
        elif isinstance(node, list) and isinstance(segment, int):
            if segment >= len(node):
                return None
            node = node[segment]
        else:
            return None
    return node


def harvest(row: Mapping[str, Any], column: str) -> Any:
    """The row's value for ``column`` (a dotted column reads nested JSON), or ``MISSING``.

    >>> harvest({"meta": {"tags": ["a", "b"]}}, "meta.tags.1"), harvest({}, "x") is MISSING
    ('b', True)
    """
    if column in row:
        return row[column]
    if "." in column:
        node: Any = row
        for part in column.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and is_index(part) and int(part) < len(node):
                node = node[int(part)]
            else:
                return MISSING
        return node
    return MISSING
