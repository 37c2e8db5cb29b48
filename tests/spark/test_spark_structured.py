"""Structured outputs on Spark: the typed columns are the local run's Parquet columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from openai_compat.spark import map_endpoint
from openai_compat.testing import MockServer
from tests.conftest import make_config
from tests.structured.typed_columns import (
    COLUMNS,
    SCHEMA,
    TEMPLATE,
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


def test_auto_mode_is_decided_once_per_job_not_per_partition(spark: Any) -> None:
    """Four partitions against a server that refuses ``response_format``: the driver finds
    the mode once (the refused one tried once, ``tools`` taken), and every row is sent once
    in it: the server sees rows + 2 requests (the probe's answer is not kept)."""
    rows = 8
    with MockServer() as srv:
        config = make_config(
            f"{srv.url}?scenario=structured&refuse=response_format", request_format=TEMPLATE
        )
        df = spark.createDataFrame([{"id": i, "text": f"t{i}"} for i in range(rows)])
        out = map_endpoint(
            df.repartition(4), config, key="id", rate=None, schema=SCHEMA, lines=True
        )
        lines = [json.loads(row["line"]) for row in out.collect()]
        sent = [r.json for r in srv.requests if r.method == "POST"]
    assert len(lines) == rows
    assert all(line["error"] is None for line in lines), lines
    assert {line["schema"]["mode"] for line in lines} == {"tools"}
    assert sum("response_format" in body for body in sent) == 1
    assert sum("tools" in body for body in sent) == rows + 1
    assert len(sent) == rows + 2
