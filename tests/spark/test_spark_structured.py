"""Structured outputs on Spark: the typed columns are the local run's Parquet columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from openai_compat.spark import map_endpoint
from openai_compat.testing import MockServer
from tests.structured.typed_columns import (
    COLUMNS,
    SCHEMA,
    local_types,
    normalised,
    structured_config,
)


def test_spark_typed_columns_are_the_local_parquet_columns(spark: Any, tmp_path: Path) -> None:
    with MockServer() as srv:
        expected = local_types(srv.url, tmp_path)
        df = spark.createDataFrame([{"id": i, "text": f"t{i}"} for i in range(6)])
        out = map_endpoint(
            df,
            structured_config(srv.url),
            key="id",
            rate=None,
            schema=SCHEMA,
            schema_mode="json_schema",
        )
        out.write.parquet(str(tmp_path / "spark"))
        rows = out.collect()
    schema = pq.read_table(tmp_path / "spark").schema
    assert {name: normalised(schema.field(name).type) for name in COLUMNS} == expected
    assert expected["urgency"] == "int64" and expected["tags"] == "list<string>"
    assert all(row["error_message"] is None for row in rows)
    assert all(
        row["label"] in ("bug", "question") and isinstance(row["urgency"], int) for row in rows
    )
