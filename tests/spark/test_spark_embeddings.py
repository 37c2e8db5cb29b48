"""Embeddings on Spark: rows packed per task, the vector an array<float> column."""

from __future__ import annotations

import json
from typing import Any

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
