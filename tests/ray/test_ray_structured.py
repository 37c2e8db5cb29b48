"""Structured outputs on Ray: the typed columns are the local run's Parquet columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import ray
from openai_compat.ray import map_endpoint
from openai_compat.testing import MockServer
from tests.structured.typed_columns import (
    COLUMNS,
    SCHEMA,
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
