"""The throughput governor on a real Ray cluster (started here, on 127.0.0.1 only): two
actors share the job's token rate through its coordinator and fill a provider's token limit
(the scripted server's ``--limit-tpm``) without tripping it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a cluster started here: 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
from openai_compat.ray import map_endpoint
from openai_compat.testing import MockServer, ProviderLimits
from tests.conftest import CANARY, make_config

TEXT = "word " * 80  # the server counts 103 prompt tokens and 50 completion ones
FORMAT = {
    "model": "mock-model",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "{{text}}"}],
}


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_two_actors_fill_a_token_limit_through_the_coordinator() -> None:
    limits = ProviderLimits(tpm=60_000)
    with MockServer(limits=limits) as server:
        ds = ray.data.from_items([{"id": i, "text": TEXT} for i in range(160)])
        config = make_config(server.url, request_format=json.dumps(FORMAT))
        out = map_endpoint(
            ds,
            config,
            key="id",
            actors=2,
            concurrency=8,
            rate=None,
            token_rate="60000/minute",
            batch_size=80,
            columns=["id", "text"],
        )
        rows = out.take_all()
    assert len(rows) == 160
    assert all(row["error_status"] is None for row in rows), [
        row["error_message"] for row in rows if row["error_status"] is not None
    ][:3]
    assert CANARY not in json.dumps([row.get("error_message") for row in rows])
    charges = limits.charges
    start, end = charges[0].at + 3, charges[-1].at - 0.5  # both actors sending
    tokens = sum(c.tokens for c in charges if not c.refused and start <= c.at < end)
    reached = tokens / (end - start) * 60 / 60_000
    assert reached >= 0.95, f"{reached:.1%} of the limit"
    refused = [c for c in charges if c.refused]
    assert len(refused) <= 0.01 * len(charges), f"{len(refused)} of {len(charges)} got 429"
