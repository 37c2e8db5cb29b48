"""The flat result row as Arrow: one fixed schema, so every block (even all-failed) agrees.

The columns are `openai_compat.batch.results.flat_columns`'s; this module only maps their
kinds to Arrow types and puts a batch's input columns and its results side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from .results import BatchResult, flat_columns

__all__ = ["result_schema", "result_table"]

_TYPES = {
    "text": pa.large_string(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
    "vector": pa.list_(pa.float32()),
    "boolean": pa.bool_(),
    "json": pa.large_string(),
}


def arrow_type(column: Any) -> pa.DataType:
    """The Arrow type of a schema-derived `openai_compat.structured.ColumnType`."""
    if column.kind == "list":
        return pa.large_list(arrow_type(column.item))
    if column.kind == "struct":
        return pa.struct([pa.field(name, arrow_type(sub)) for name, sub in column.fields])
    return _TYPES[column.kind]


def result_schema(
    output_names: Sequence[str],
    *,
    include_response: bool = False,
    types: Mapping[str, Any] | None = None,
) -> pa.Schema:
    """The Arrow schema of the result columns (the input columns come before them);
    ``types`` are the outputs' schema-derived types (`RunSpec.output_types`)."""
    typed = types or {}
    return pa.schema(
        [
            pa.field(name, arrow_type(typed[name]) if name in typed else _TYPES[kind])
            for name, kind in flat_columns(
                output_names, include_response=include_response, types=typed
            )
        ]
    )


def result_table(
    batch: pa.Table,
    results: Sequence[BatchResult],
    output_names: Sequence[str],
    *,
    keep_columns: Sequence[str],
    include_response: bool = False,
    types: Mapping[str, Any] | None = None,
) -> pa.Table:
    """``keep_columns`` of ``batch`` (input order) followed by the results' flat columns."""
    schema = result_schema(output_names, include_response=include_response, types=types)
    flat = [
        r.to_flat(output_names, include_response=include_response, types=types) for r in results
    ]
    arrays: list[Any] = [batch.column(name).combine_chunks() for name in keep_columns]
    names = list(keep_columns)
    for field in schema:
        arrays.append(pa.array([row[field.name] for row in flat], type=field.type))
        names.append(field.name)
    return pa.Table.from_arrays(arrays, names=names)
