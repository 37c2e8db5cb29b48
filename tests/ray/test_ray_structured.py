"""Structured outputs on Ray: the typed columns are the local run's Parquet columns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import ray
from openai_compat.ray import map_endpoint
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


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_ray_typed_columns_are_the_local_parquet_columns(tmp_path: Path) -> None:
    with MockServer() as srv:
        expected = local_types(srv.url, tmp_path)
        ds = ray.data.from_items([{"id": i, "text": f"t{i}"} for i in range(6)])
        out = map_endpoint(
            ds, structured_config(srv.url), key="id", rate=None, actors=1, schema=SCHEMA
        )
        result = pa.concat_tables(ray.get(out.to_arrow_refs()))
    assert {name: normalised(result.schema.field(name).type) for name in COLUMNS} == expected
    assert result.num_rows == 6
    assert result.column("error_message").null_count == 6


def test_auto_mode_is_decided_once_per_job_not_per_batch() -> None:
    """Four batches on two actors against a server that refuses ``response_format``: the
    refused mode is tried once in the whole job, every row is sent once in the mode chosen
    (``tools``), so the server sees exactly rows + 1 requests."""
    rows = 8
    with MockServer() as srv:
        config = make_config(
            f"{srv.url}?scenario=structured&refuse=response_format", request_format=TEMPLATE
        )
        ds = ray.data.from_items([{"id": i, "text": f"t{i}"} for i in range(rows)])
        out = map_endpoint(
            ds, config, key="id", rate=None, actors=2, batch_size=2,
            schema=SCHEMA, lines=True,
        )  # fmt: skip
        result = pa.concat_tables(ray.get(out.to_arrow_refs()))
        sent = [r.json for r in srv.requests if r.method == "POST"]
    lines = [json.loads(line) for line in result.column("line").to_pylist()]
    assert len(lines) == rows
    assert all(line["error"] is None for line in lines), lines
    assert {line["schema"]["mode"] for line in lines} == {"tools"}
    assert sum("response_format" in body for body in sent) == 1
    assert sum("tools" in body for body in sent) == rows
    assert len(sent) == rows + 1
