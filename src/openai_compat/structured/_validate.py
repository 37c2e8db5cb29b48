"""Validation of answers against the run's schema, compiled once per run (jsonschema-rs:
the fastest correct validator measured, see bench/structured.py).

>>> validator = Validator({"type": "object", "properties": {"urgency": {"type": "integer"}},
...                        "required": ["urgency"]})
>>> validator.problems({"urgency": 3})
[]
>>> validator.problems({"urgency": "soon"})
['$.urgency: "soon" is not of type "integer"']
"""

from __future__ import annotations

from typing import Any

__all__ = ["Validator", "json_path"]


def json_path(parts: Any) -> str:
    """A location as a JSONPath: ``$.a[0].b`` (``$`` for the whole value).

    >>> json_path(["items", 0, "name"]), json_path([])
    ('$.items[0].name', '$')
    """
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            text += f".{part}"
        else:
            text += f"[{part!r}]"
    return text


def _whole_schemas_only(uri: str) -> Any:
    # A $ref outside the schema is never fetched: the server is sent the schema itself, so
    # it must be whole; and a schema from the application's API must not make it read a
    # file or open a connection.
    raise ValueError(
        f"the schema refers to {uri}, outside itself: write what it refers to into the "
        'schema (under "$defs", referred to as "#/$defs/NAME")'
    )


class Validator:
    """A schema compiled once: `problems` lists what is wrong with a value (path: reason)."""

    __slots__ = ("_compiled",)

    def __init__(self, schema: dict[str, Any]) -> None:
        import jsonschema_rs

        self._compiled = jsonschema_rs.validator_for(schema, retriever=_whole_schemas_only)

    def is_valid(self, value: Any) -> bool:
        """True when ``value`` satisfies the schema."""
        return bool(self._compiled.is_valid(value))

    def problems(self, value: Any, limit: int = 5) -> list[str]:
        """Up to ``limit`` problems of ``value``, each ``"$.path: reason"`` (none: valid)."""
        if self._compiled.is_valid(value):
            return []
        found: list[str] = []
        for error in self._compiled.iter_errors(value):
            found.append(f"{json_path(error.instance_path)}: {error.message}")
            if len(found) >= limit:
                break
        return found
