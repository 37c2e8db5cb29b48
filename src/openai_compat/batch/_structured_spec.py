"""A run's structured-output options, checked for `RunSpec`: the schema, its outputs (one
per top-level property) and their column types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ConfigurationError
from ..mapping import OutputField
from ..structured import ColumnType, Schema, check_mode, column_types, load_schema

__all__ = ["check_reasks", "schema_outputs", "schema_types", "structured_schema"]


def structured_schema(value: Any) -> Schema:
    """``value`` as a checked `Schema` (a `ConfigurationError` on the ``schema`` field)."""
    return load_schema(value, field="schema")


def check_reasks(name: str, value: Any, has_schema: bool) -> Any:
    """``schema_mode`` / ``reasks`` checked: they need a schema."""
    if not has_schema:
        raise ConfigurationError(
            "needs a schema: give schema too (a JSON Schema file), or leave it out", field=name
        )
    if name == "schema_mode":
        return check_mode(value, field=name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise ConfigurationError(
            f"must be 0 to 20 (times an invalid answer is asked again), got {value!r}", field=name
        )
    return value


def schema_outputs(schema: Schema) -> list[OutputField]:
    """One output per top-level property, read from the validated answer."""
    return [OutputField(name, (name,), name) for name in schema.properties]


def schema_types(schema: Schema, outputs: Sequence[OutputField]) -> dict[str, ColumnType]:
    """The type of each output that reads one top-level property (renamed or not); an output
    parsed further or read deeper is text, as without a schema."""
    types = column_types(schema.schema)
    typed: dict[str, ColumnType] = {}
    for field in outputs:
        if field.name is None or field.parse is not None or len(field.path) != 1:
            continue
        found = types.get(str(field.path[0]))
        if found is not None:
            typed[field.name] = found
    return typed
