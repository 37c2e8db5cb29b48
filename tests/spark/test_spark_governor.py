"""The throughput options on Spark: each task's share of the token rate (a request above the
whole of it is a failed row saying so), the server's headers read by each task, and
``concurrency="auto"``; bad values refused before any request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat.errors import ConfigurationError
from openai_compat.spark import map_endpoint
from openai_compat.testing import MockServer, ProviderLimits
from tests.conftest import make_config

FORMAT = {
    "model": "mock-model",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "{{text}}"}],
}


def test_token_rate_and_auto_concurrency_reach_the_tasks(spark: Any) -> None:
    limits = ProviderLimits(tpm=600_000)
    with MockServer(limits=limits) as server:
        items = [{"id": i, "text": f"row {i}"} for i in range(30)]
        items.append({"id": 30, "text": "x" * 40_000})  # about 10,000 tokens: over the whole rate
        df = spark.createDataFrame(items).coalesce(2)
        config = make_config(server.url, request_format=json.dumps(FORMAT))
        out = map_endpoint(
            df,
            config,
            key="id",
            rate=None,
            token_rate="6000/minute",
            concurrency="auto",
            max_concurrency=8,
            tasks_at_once=2,
        ).collect()
    by_id = {row["id"]: row for row in out}
    assert len(by_id) == 31
    assert all(by_id[i]["error_message"] is None for i in range(30))
    # Each of 2 tasks holds 3000/minute: the long row is over its share's whole minute.
    assert "more than the whole token rate of 3000/minute" in by_id[30]["error_message"]
    assert len(limits.charges) == 30 and not any(c.refused for c in limits.charges)


def test_bad_throughput_values_fail_before_any_request(spark: Any) -> None:
    with MockServer() as server:
        df = spark.createDataFrame([{"id": 1, "text": "t"}])
        config = make_config(server.url, request_format=json.dumps(FORMAT))
        with pytest.raises(ConfigurationError, match="token_rate: must be more than 0"):
            map_endpoint(df, config, token_rate="0/minute")
        with pytest.raises(ConfigurationError, match="max_concurrency: must be 1"):
            map_endpoint(df, config, concurrency="auto", max_concurrency=0)
        assert server.requests == []
