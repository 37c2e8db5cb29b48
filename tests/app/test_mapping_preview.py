"""``POST /api/v1/connectors/{id}/mapping_preview``: the payload a row becomes, over a real server."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from openai_compat.mapping import PayloadBuilder
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

REQUEST_FORMAT = {
    "model": "mock-model",
    "messages": [{"role": "user", "content": "Summarise this ticket: {{body}} ({{ team }})"}],
}


@pytest.fixture
def connector_id(client: httpx.Client) -> int:
    config = make_config("http://127.0.0.1:9/v1/chat/completions")
    config["request_format"] = json.dumps(REQUEST_FORMAT)
    response = client.post("/api/v1/connectors", json={"name": "preview", "configuration": config})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _preview(client: httpx.Client, connector_id: int, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/connectors/{connector_id}/mapping_preview", json=body)


def test_preview_is_the_payload_the_mapping_package_builds(
    client: httpx.Client, connector_id: int
) -> None:
    mapping = [
        {"name": "max_tokens", "value": "n", "value_type": "dynamic", "type": "number"},
        {"name": "temperature", "value": "0.2", "value_type": "static", "type": "number"},
        {"name": "metadata.flag", "value": "flag", "type": "boolean"},
    ]
    row = {"body": "the printer is on fire", "team": "ops", "n": "64", "flag": "true"}
    response = _preview(client, connector_id, mapping=mapping, row=row)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["payload"] == PayloadBuilder(REQUEST_FORMAT, mapping).build(row)
    assert body["payload"]["messages"][0]["content"] == (
        "Summarise this ticket: the printer is on fire (ops)"
    )
    assert body["payload"]["max_tokens"] == 64
    assert body["payload"]["temperature"] == 0.2
    assert body["placeholders"] == ["body", "team"]
    assert body["columns"] == ["body", "team", "n", "flag"]


def test_a_placeholder_can_read_another_column(client: httpx.Client, connector_id: int) -> None:
    row = {"text": "no paper", "group": "it"}
    response = _preview(
        client, connector_id, row=row, placeholders={"body": "text", "team": "group"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["payload"]["messages"][0]["content"] == "Summarise this ticket: no paper (it)"
    assert body["columns"] == ["text", "group"]


def test_a_row_that_cannot_be_mapped_is_a_422_naming_the_column(
    client: httpx.Client, connector_id: int
) -> None:
    response = _preview(client, connector_id, row={"body": "x"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["errors"][0]["field"] == "row"
    assert "no column 'team'" in error["errors"][0]["message"]
    # The page still learns the placeholders to offer pickers for.
    assert error["placeholders"] == ["body", "team"]

    bad_cast = [{"name": "max_tokens", "value": "n", "type": "number"}]
    response = _preview(
        client, connector_id, mapping=bad_cast, row={"body": "x", "team": "y", "n": "lots"}
    )
    assert response.status_code == 422
    message = response.json()["error"]["errors"][0]["message"]
    assert "cannot cast column 'n' to number" in message


def test_a_mapping_that_cannot_be_used_is_a_422_per_item(
    client: httpx.Client, connector_id: int
) -> None:
    mapping = [
        {"name": "max_tokens", "value": "n"},
        {"name": "model.name", "value": "x", "value_type": "static"},
    ]
    response = _preview(client, connector_id, mapping=mapping, row={})
    assert response.status_code == 422
    errors = response.json()["error"]["errors"]
    assert errors[0]["field"] == "mapping[1].name"
    assert errors[0]["message"] == (
        "cannot set model.name: model is a string, not an object or a list"
    )

    response = _preview(client, connector_id, mapping=[{"name": "a", "value_type": "sometimes"}])
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["field"] == "mapping[0].value_type"


def test_a_mapping_that_would_pad_lists_without_bound_is_a_422(
    client: httpx.Client, connector_id: int
) -> None:
    mapping = [{"name": f"a{i}.10000", "value": "x", "value_type": "static"} for i in range(2500)]
    started = time.monotonic()
    response = _preview(client, connector_id, mapping=mapping, row={"body": "b", "team": "t"})
    assert response.status_code == 422, response.text[:300]
    assert time.monotonic() - started < 5
    error = response.json()["error"]["errors"][0]
    assert error["field"] == "mapping[1].name"
    assert "at most 20000" in error["message"]


def test_preview_needs_the_token_and_a_saved_connector(
    app: AppProcess, client: httpx.Client
) -> None:
    with app.client(token=None) as anonymous:
        assert anonymous.post("/api/v1/connectors/1/mapping_preview", json={}).status_code == 401
    response = client.post(f"/api/v1/connectors/{2**62}/mapping_preview", json={"row": {}})
    assert response.status_code == 404
    assert "no connector" in response.json()["error"]["message"]
    assert CANARY not in response.text
