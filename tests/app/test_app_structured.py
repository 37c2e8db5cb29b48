"""Runs with a schema in the application: the run body's ``schema``, typed result lines,
the counts in /metrics, and a bad schema refused with a 422 before anything is sent."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from openai_compat.testing import MockServer
from tests._servers import serve_asgi
from tests.conftest import CANARY, make_config

_REQUEST = '{"model": "m", "messages": [{"role": "user", "content": "{{body}}"}]}'
SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["bug", "question"]}, "urgency": {"type": "integer"}},
    "required": ["label", "urgency"],
}


def _connector(client: httpx.Client, url: str) -> int:
    config = make_config(url, request_format=_REQUEST)
    created = client.post("/api/v1/connectors", json={"name": "typed", "configuration": config})
    assert created.status_code == 201, created.text
    connector_id: int = created.json()["id"]
    return connector_id


def _upload(client: httpx.Client, rows: int) -> str:
    data = "".join(json.dumps({"id": f"t-{i}", "body": f"ticket {i}"}) + "\n" for i in range(rows))
    answer = client.post("/api/v1/uploads", files={"file": ("rows.jsonl", data.encode())})
    assert answer.status_code == 201, answer.text
    upload_id: str = answer.json()["id"]
    return upload_id


def _wait(client: httpx.Client, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        if view["status"] in ("succeeded", "failed"):
            return view
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_a_run_with_a_schema_has_typed_outputs_and_counts(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, f"{keyed.url}?scenario=structured&invalid_pct=50")
    # The application lives for the session: other runs counted before this one.
    before = {o: _schema_rows(client, o) for o in ("valid_first", "valid_after_reasks")}
    body = {
        "input": {"upload_id": _upload(client, 10)},
        "key": "id",
        "rate": None,
        "concurrency": 2,
        "schema": SCHEMA,
        "schema_mode": "json_schema",
    }
    answer = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
    assert answer.status_code == 201, answer.text
    view = _wait(client, answer.json()["id"])
    assert (view["ok"], view["failed"], view["requests"]) == (10, 0, 15)
    assert view["schema"] == SCHEMA and view["schema_mode"] == "json_schema"
    assert view["output_names"] == ["label", "urgency"]
    lines = [
        json.loads(line)
        for line in client.get(
            f"/api/v1/runs/{view['id']}/results", params={"format": "jsonl"}
        ).text.splitlines()
    ]
    assert all(isinstance(line["output"]["urgency"], int) for line in lines)
    assert sorted(line["schema"]["answers"] for line in lines) == [1] * 5 + [2] * 5
    metrics = client.get("/metrics").text
    assert _schema_rows(client, "valid_first") == before["valid_first"] + 5
    assert _schema_rows(client, "valid_after_reasks") == before["valid_after_reasks"] + 5
    assert CANARY not in json.dumps(view) + metrics


def _schema_rows(client: httpx.Client, outcome: str) -> float:
    """The json_schema rows of ``outcome`` /metrics counts (0 before the first)."""
    name = f'openai_compat_run_schema_rows_total{{mode="json_schema",outcome="{outcome}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name):
            return float(line[len(name) :])
    return 0.0


def test_a_bad_schema_is_a_422_naming_it(client: httpx.Client, keyed: MockServer) -> None:
    connector_id = _connector(client, f"{keyed.url}?scenario=structured")
    before = len(keyed.requests)
    body = {
        "input": {"upload_id": _upload(client, 2)},
        "schema": {"type": "array"},
        "reasks": 99,
    }
    answer = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
    assert answer.status_code == 422, answer.text
    problems = {e["field"]: e["message"] for e in answer.json()["error"]["errors"]}
    assert "the top level must be an object" in problems["schema"]
    assert problems["reasks"] == "must be 0 to 20 (times an invalid answer is asked again), got 99"
    assert len(keyed.requests) == before


def test_a_schema_reads_no_file_and_fetches_no_reference(
    client: httpx.Client, keyed: MockServer, tmp_path: Any
) -> None:
    # A text schema is a file's path to the CLI: through the API it would read the
    # server's files. A $ref outside the schema would have the validator fetch it (a URL)
    # or read it (file://). Both are refused before anything is read, sent or fetched.
    secret_file = tmp_path / "server-only.json"
    secret_file.write_text(json.dumps({"type": "object", "properties": {"server_only": {}}}))
    asked: list[str] = []

    async def elsewhere(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            asked.append(scope["path"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

    with serve_asgi(elsewhere) as port:
        connector_id = _connector(client, f"{keyed.url}?scenario=structured")
        before = len(keyed.requests)
        upload = _upload(client, 1)
        for schema, expected in (
            (str(secret_file), "the application reads no schema file"),
            (
                {
                    "type": "object",
                    "properties": {"a": {"$ref": f"http://127.0.0.1:{port}/s.json"}},
                },
                "outside itself",
            ),
            (
                {"type": "object", "properties": {"a": {"$ref": secret_file.as_uri()}}},
                "outside itself",
            ),
        ):
            body = {"input": {"upload_id": upload}, "schema": schema}
            answer = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
            assert answer.status_code == 422, answer.text
            problems = {e["field"]: e["message"] for e in answer.json()["error"]["errors"]}
            assert expected in problems["schema"], problems
            assert "server_only" not in answer.text
        assert asked == []  # nothing fetched
        assert len(keyed.requests) == before
