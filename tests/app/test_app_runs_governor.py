"""The application's runs take the throughput options: ``token_rate``, ``concurrency``
"auto" and ``max_concurrency``, checked with the rest (422 naming each) and run."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from openai_compat.testing import MockServer
from tests.conftest import CANARY, make_config

_REQUEST = '{"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "{{body}}"}]}'
_MAPPING = [{"name": "messages.0.content", "value": "body", "value_type": "dynamic"}]


def _connector_and_upload(client: httpx.Client, url: str) -> tuple[int, str]:
    config = make_config(url, request_format=_REQUEST)
    created = client.post("/api/v1/connectors", json={"name": "gov", "configuration": config})
    assert created.status_code == 201, created.text
    rows = "".join(json.dumps({"id": f"t-{i}", "body": f"ticket {i}"}) + "\n" for i in range(6))
    upload = client.post("/api/v1/uploads", files={"file": ("rows.jsonl", rows.encode())})
    assert upload.status_code == 201, upload.text
    return created.json()["id"], upload.json()["id"]


def test_bad_throughput_options_are_422_naming_each(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id, upload_id = _connector_and_upload(client, keyed.url)
    bad = client.post(
        f"/api/v1/connectors/{connector_id}/runs",
        json={
            "input": {"upload_id": upload_id},
            "mapping": _MAPPING,
            "key": "id",
            "token_rate": "0/minute",
            "concurrency": "auto",
            "max_concurrency": 0,
        },
    )
    assert bad.status_code == 422, bad.text
    fields = {e["field"] for e in bad.json()["error"]["errors"]}
    assert {"token_rate", "max_concurrency"} <= fields
    assert "must be more than 0 tokens" in bad.text
    sometimes = client.post(
        f"/api/v1/connectors/{connector_id}/runs",
        json={"input": {"upload_id": upload_id}, "concurrency": "sometimes"},
    )
    assert sometimes.status_code == 422
    assert "concurrency" in sometimes.text


def test_a_run_with_a_token_rate_and_auto_concurrency_runs(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id, upload_id = _connector_and_upload(client, keyed.url)
    body: dict[str, Any] = {
        "input": {"upload_id": upload_id},
        "mapping": _MAPPING,
        "key": "id",
        "rate": None,
        "token_rate": "100000/minute",
        "concurrency": "auto",
        "max_concurrency": 8,
    }
    created = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        view = client.get(f"/api/v1/runs/{run_id}").json()
        if view["status"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, view
        time.sleep(0.1)
    assert view["status"] == "succeeded", view
    assert view["token_rate"] == "100000/minute" and view["concurrency"] == "auto"
    assert CANARY not in json.dumps(view)
    assert view["ok"] == 6 and view["failed"] == 0
