"""Column types derived from a schema, in one place: each top-level property is an output
column, and each engine maps these kinds to its own types (Arrow for Parquet and Ray,
Spark's, SQL's).

Kinds: ``text``, ``integer``, ``decimal``, ``boolean``, ``list`` (with ``item``),
``struct`` (with ``fields``), and ``json`` for anything else (a union, no type, a
``$ref``): written as JSON text.

>>> types = column_types({"type": "object", "properties": {
...     "label": {"enum": ["bug", "question"]}, "urgency": {"type": "integer"},
...     "tags": {"type": "array", "items": {"type": "string"}},
...     "score": {"type": ["number", "null"]}, "any": {}}})
>>> {name: str(t) for name, t in types.items()}
{'label': 'text', 'urgency': 'integer', 'tags': 'list<text>', 'score': 'decimal', 'any': 'json'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SQL_TYPES", "ColumnType", "column_types"]

_SCALARS = {"string": "text", "integer": "integer", "number": "decimal", "boolean": "boolean"}
#: The SQL type of each kind (lists, structs and the rest: JSON; JSONB on PostgreSQL).
SQL_TYPES = {
    "text": "TEXT",
    "integer": "BIGINT",
    "decimal": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
    "list": "JSON",
    "struct": "JSON",
    "json": "JSON",
}


@dataclass(frozen=True, slots=True)
class ColumnType:
    """The type of one column (or of a list's items, a struct's field)."""

    kind: str
    item: ColumnType | None = None
    fields: tuple[tuple[str, ColumnType], ...] = ()

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list<{self.item}>"
        if self.kind == "struct":
            return "struct<" + ", ".join(f"{n}: {t}" for n, t in self.fields) + ">"
        return self.kind


_JSON = ColumnType("json")


def _enum_kind(values: list[Any]) -> str | None:
    kinds = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("decimal")
        elif isinstance(value, str):
            kinds.add("text")
        else:
            return None
    if kinds == {"integer", "decimal"}:
        return "decimal"
    return kinds.pop() if len(kinds) == 1 else None


def type_of(schema: Any, depth: int = 0) -> ColumnType:
    """The column type of one (sub)schema."""
    if not isinstance(schema, dict) or depth > 8:
        return _JSON
    if "const" in schema:
        kind = _enum_kind([schema["const"]])
        return ColumnType(kind) if kind else _JSON
    if isinstance(schema.get("enum"), list):
        kind = _enum_kind(schema["enum"])
        return ColumnType(kind) if kind else _JSON
    declared = schema.get("type")
    if isinstance(declared, list):
        named = [t for t in declared if t != "null"]
        declared = named[0] if len(named) == 1 else None
    if declared in _SCALARS:
        return ColumnType(_SCALARS[declared])
    if declared == "array":
        return ColumnType("list", item=type_of(schema.get("items"), depth + 1))
    if declared == "object":
        properties = schema.get("properties")
        if isinstance(properties, dict) and properties:
            return ColumnType(
                "struct",
                fields=tuple((name, type_of(sub, depth + 1)) for name, sub in properties.items()),
            )
    return _JSON


def column_types(schema: dict[str, Any]) -> dict[str, ColumnType]:
    """The type of each top-level property's column, in the schema's order."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    return {name: type_of(sub) for name, sub in properties.items()}
