"""Embeddings on Ray: rows packed per batch, the vector a list<float32> column."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pyarrow as pa
import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a cluster started here: 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
from openai_compat.ray import map_endpoint
from openai_compat.testing import MockServer, embedding_vector
from tests.conftest import make_config

FORMAT = json.dumps({"model": "mock-model", "input": "{{text}}"})


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_embeddings_are_packed_and_typed_on_ray() -> None:
    items = [{"id": i, "text": f"text {i}"} for i in range(200)]
    with MockServer() as srv:
        config = make_config(srv.base_url + "/v1/embeddings", request_format=FORMAT)
        out = map_endpoint(ray.data.from_items(items), config, key="id", rate=None)
        got = out.take_all()
        schema = out.schema()
        sent = [r.json for r in srv.requests]
    assert len(got) == 200
    assert all(row["embedding"] is not None for row in got)
    by_id = {row["id"]: [float(x) for x in row["embedding"]] for row in got}
    assert all(by_id[i] == embedding_vector(f"text {i}") for i in range(200))
    assert sum(len(body["input"]) for body in sent) == 200
    assert len(sent) < 200  # packed, not one row per request
    assert schema.base_schema.field("embedding").type == pa.list_(pa.float32())
