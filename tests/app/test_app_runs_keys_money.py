"""Runs in the application against hostile inputs: keys that collide or cannot be stored,
money counted exactly, prices out of bounds, cancel then resume, outputs the sample lacks.

Each test runs on SQLite and on PostgreSQL (the shared ``app`` fixture) against a real
scripted server on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openai_compat.testing import MockServer
from tests.app import test_app_runs as base
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config


@pytest.fixture(scope="module")
def keyed() -> Iterator[MockServer]:
    with MockServer(api_key=CANARY) as srv:
        yield srv


@pytest.fixture
def client(app: AppProcess) -> Iterator[httpx.Client]:
    with app.client() as c:
        yield c


def _results(client: httpx.Client, run_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/runs/{run_id}/results", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def test_an_output_path_the_sample_response_lacks_is_accepted(
    client: httpx.Client, keyed: MockServer
) -> None:
    config = make_config(keyed.url, request_format=base._REQUEST, response_format="{}")
    created = client.post("/api/v1/connectors", json={"name": "bare", "configuration": config})
    assert created.status_code == 201, created.text
    upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(2)))
    run_id = base._start(client, created.json()["id"], upload["id"])
    view = base._wait(client, run_id)
    assert view["ok"] == 2 and view["output_names"] == ["reply"]
    assert [line["output"]["reply"][:9] for line in _results(client, run_id)] == ["You said:"] * 2
