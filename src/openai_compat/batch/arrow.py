"""The flat result row as Arrow: one fixed schema, so every block (even all-failed) agrees.

The columns are `openai_compat.batch.results.flat_columns`'s; this module only maps their
kinds to Arrow types and puts a batch's input columns and its results side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from .results import BatchResult, flat_columns

__all__ = ["result_schema", "result_table"]

_TYPES = {
    "text": pa.large_string(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
    "vector": pa.list_(pa.float32()),
}


def result_schema(output_names: Sequence[str], *, include_response: bool = False) -> pa.Schema:
    """The Arrow schema of the result columns (the input columns come before them)."""
    return pa.schema(
        [
            pa.field(name, _TYPES[kind])
            for name, kind in flat_columns(output_names, include_response=include_response)
        ]
    )


def result_table(
    batch: pa.Table,
    results: Sequence[BatchResult],
    output_names: Sequence[str],
    *,
    keep_columns: Sequence[str],
    include_response: bool = False,
) -> pa.Table:
    """``keep_columns`` of ``batch`` (input order) followed by the results' flat columns."""
    schema = result_schema(output_names, include_response=include_response)
    flat = [r.to_flat(output_names, include_response=include_response) for r in results]
    arrays: list[Any] = [batch.column(name).combine_chunks() for name in keep_columns]
    names = list(keep_columns)
    for field in schema:
        arrays.append(pa.array([row[field.name] for row in flat], type=field.type))
        names.append(field.name)
    return pa.Table.from_arrays(arrays, names=names)
