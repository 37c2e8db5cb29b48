"""The Spark schema of the results: the kept input columns, then the flat result columns.

The result columns are `openai_compat.batch.results.flat_columns`'s (the Ray engine's and
the database outputs' too); this module maps their kinds to Spark types, once, so every
partition (even one where every row failed) has the same schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    FloatType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from ..batch.results import flat_columns

__all__ = ["LINE_COLUMN", "arrow_schema", "lines_schema", "result_schema"]

# The one column of the ``lines`` form: the local run's result line, as JSON text.
LINE_COLUMN = "line"

_TYPES: dict[str, DataType] = {
    "text": StringType(),
    "integer": LongType(),
    "decimal": DoubleType(),
    "vector": ArrayType(FloatType(), True),
    "boolean": BooleanType(),
    "json": StringType(),
}


def spark_type(column: Any) -> DataType:
    """The Spark type of a schema-derived `openai_compat.structured.ColumnType`."""
    if column.kind == "list":
        return ArrayType(spark_type(column.item), True)
    if column.kind == "struct":
        return StructType([StructField(n, spark_type(t), True) for n, t in column.fields])
    return _TYPES[column.kind]


def result_schema(
    kept: Sequence[StructField],
    output_names: Sequence[str],
    *,
    include_response: bool = False,
    types: Mapping[str, Any] | None = None,
) -> StructType:
    """``kept`` input fields followed by the flat result columns (all nullable).

    >>> [f.name for f in result_schema([], ["summary"]).fields][:3]
    ['summary', 'error_status', 'error_message']
    """
    fields = list(kept)
    typed = types or {}
    for name, kind in flat_columns(output_names, include_response=include_response, types=typed):
        spark = spark_type(typed[name]) if name in typed else _TYPES[kind]
        fields.append(StructField(name, spark, True))
    return StructType(fields)


def lines_schema() -> StructType:
    """The ``lines`` form: one text column of result lines (``openai-compat batch`` JSONL)."""
    return StructType([StructField(LINE_COLUMN, StringType(), False)])


def arrow_schema(schema: StructType) -> pa.Schema:
    """The Arrow schema Spark expects of a ``mapInArrow`` batch of ``schema``."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)
