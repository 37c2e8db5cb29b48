"""Embeddings on Ray: rows packed per batch, the vector a list<float32> column."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a cluster started here: 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
from openai_compat.cli import main
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


def test_the_command_line_passes_rows_per_request_to_ray(tmp_path: Path) -> None:
    rows = "".join(json.dumps({"id": i, "text": f"text {i}"}) + "\n" for i in range(30))
    (tmp_path / "in.jsonl").write_text(rows)
    with MockServer() as srv:
        config = make_config(srv.base_url + "/v1/embeddings", request_format=FORMAT)
        (tmp_path / "conn.json").write_text(json.dumps(config))
        args = ["batch", "--config", str(tmp_path / "conn.json"), "--input"]
        args += [str(tmp_path / "in.jsonl"), "--key", "id", "--rate", "off", "--quiet"]
        args += ["--engine", "ray", "--output", str(tmp_path / "out"), "--rows-per-request", "5"]
        assert main(args) == 0
        sizes = [len(r.json["input"]) for r in srv.requests]
    assert sum(sizes) == 30 and max(sizes) <= 5 and len(sizes) >= 6
    table = pq.read_table(tmp_path / "out")
    assert sorted(table.column("id").to_pylist()) == list(range(30))


def test_map_endpoint_takes_rows_per_request() -> None:
    items = [{"id": i, "text": f"text {i}"} for i in range(20)]
    with MockServer() as srv:
        config = make_config(srv.base_url + "/v1/embeddings", request_format=FORMAT)
        out = map_endpoint(
            ray.data.from_items(items), config, key="id", rate=None, rows_per_request=1
        )
        assert len(out.take_all()) == 20
        # One row a request: its input sent as the row's text, not a list.
        inputs = [r.json["input"] for r in srv.requests]
        assert len(inputs) == 20 and all(isinstance(i, str) for i in inputs)
