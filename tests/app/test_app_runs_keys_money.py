"""Runs in the application against hostile inputs: keys that collide or cannot be stored,
money counted exactly, prices out of bounds, cancel then resume, outputs the sample lacks.

Each test runs on SQLite and on PostgreSQL (the shared ``app`` fixture) against a real
scripted server on loopback.
"""

from __future__ import annotations

import json
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


def test_ten_dimes_spend_a_one_dollar_budget_exactly(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = base._connector(client, keyed.url)
    upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(20)))
    # Each answer reports 4 completion tokens: $0.10 a row.
    run_id = base._start(
        client,
        connector_id,
        upload["id"],
        concurrency=1,
        prices="input=0,output=25000",
        max_cost=1,
    )
    view = base._wait(client, run_id, ("cancelled", "succeeded", "failed"))
    assert view["status"] == "cancelled", view
    assert view["ok"] == 10 and view["cost"] == 1.0
    assert "spent $1.0000 of the max_cost budget of $1.00" in view["error"]
    assert [line["cost"] for line in _results(client, run_id)] == [0.1] * 10


def test_prices_out_of_bounds_are_refused_and_answers_are_always_json(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = base._connector(client, keyed.url)
    upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(1)))
    body = {"input": {"upload_id": upload["id"]}, "key": "id", "outputs": base._OUTPUTS}
    for prices in ({"input": 1e308, "output": 1}, "input=1,output=1e308"):
        answer = client.post(
            f"/api/v1/connectors/{connector_id}/runs", json={**body, "prices": prices}
        )
        assert answer.status_code == 422, answer.text
        assert "at most 1000000 USD per million tokens" in answer.text


def test_a_json_answer_never_holds_nan_or_infinity() -> None:
    from openai_compat.app.http import json_document

    answer = json_document({"cost": float("inf"), "rows_per_s": float("nan"), "ok": 1.5})
    assert json.loads(answer.body, parse_constant=lambda name: pytest.fail(name)) == {
        "cost": None,
        "rows_per_s": None,
        "ok": 1.5,
    }
