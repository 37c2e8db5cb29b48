"""Embeddings on Spark: rows packed per task, the vector an array<float> column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from openai_compat.cli import main
from openai_compat.spark import map_endpoint
from openai_compat.testing import MockServer, embedding_vector
from tests.conftest import make_config

FORMAT = json.dumps({"model": "mock-model", "input": "{{text}}"})


def test_embeddings_are_packed_and_typed_on_spark(spark: Any) -> None:
    from pyspark.sql.types import ArrayType, FloatType

    data = [{"id": i, "text": f"text {i}"} for i in range(200)]
    df = spark.createDataFrame(data).repartition(2)
    with MockServer() as srv:
        config = make_config(srv.base_url + "/v1/embeddings", request_format=FORMAT)
        out = map_endpoint(df, config, key="id", rate=None)
        assert out.schema["embedding"].dataType == ArrayType(FloatType(), True)
        got = {row["id"]: row["embedding"] for row in out.collect()}
        sent = [r.json for r in srv.requests]
    assert len(got) == 200
    assert all(got[i] == embedding_vector(f"text {i}") for i in range(200))
    assert sum(len(body["input"]) for body in sent) == 200
    assert len(sent) <= 8  # two tasks, 100 rows each, packs of at most 64


def test_the_command_line_passes_rows_per_request_to_spark(spark: Any, tmp_path: Path) -> None:
    rows = "".join(json.dumps({"id": i, "text": f"text {i}"}) + "\n" for i in range(30))
    (tmp_path / "in.jsonl").write_text(rows)
    with MockServer() as srv:
        config = make_config(srv.base_url + "/v1/embeddings", request_format=FORMAT)
        (tmp_path / "conn.json").write_text(json.dumps(config))
        args = ["batch", "--config", str(tmp_path / "conn.json"), "--input"]
        args += [str(tmp_path / "in.jsonl"), "--key", "id", "--rate", "off", "--quiet"]
        args += ["--engine", "spark", "--output", str(tmp_path / "out"), "--rows-per-request", "5"]
        assert main(args) == 0
        sizes = [len(r.json["input"]) for r in srv.requests]
    assert sum(sizes) == 30 and max(sizes) <= 5 and len(sizes) >= 6
    table = pq.read_table(tmp_path / "out")
    assert sorted(table.column("id").to_pylist()) == list(range(30))


def test_map_endpoint_takes_rows_per_request(spark: Any) -> None:
    df = spark.createDataFrame([{"id": i, "text": f"text {i}"} for i in range(20)])
    with MockServer() as srv:
        config = make_config(srv.base_url + "/v1/embeddings", request_format=FORMAT)
        out = map_endpoint(df, config, key="id", rate=None, rows_per_request=1)
        assert len(out.collect()) == 20
        # One row a request: its input sent as the row's text, not a list.
        inputs = [r.json["input"] for r in srv.requests]
        assert len(inputs) == 20 and all(isinstance(i, str) for i in inputs)
