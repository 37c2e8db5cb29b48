"""The HTTP API over a real running server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import openai_compat.app
from openai_compat.testing import MockServer, error_reply, json_reply
from tests.app_support import AppProcess
from tests.conftest import APP_KEY_ENV as KEY_ENV
from tests.conftest import CANARY, make_config


def _create(client: httpx.Client, url: str, name: str = "test", **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/connectors", json={"name": name, "configuration": make_config(url, **extra)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_health_needs_no_token(app: AppProcess) -> None:
    assert httpx.get(app.url + "/health").json() == {"status": "ok"}


def test_connector_definition_has_spec_and_meta(client: httpx.Client) -> None:
    body = client.get("/api/v1/connector_definitions/openai_compatible").json()
    props = body["spec"]["connection_specification"]["properties"]
    assert list(props) == [
        "url",
        "api_key",
        "is_stream",
        "config",
        "request_format",
        "response_format",
        "advanced",
    ]
    assert body["meta_data"]["data"]["name"] == "GenericOpenAI"


def test_check_connection_before_saving(client: httpx.Client, keyed: MockServer) -> None:
    ok = client.post(
        "/api/v1/connector_definitions/check_connection",
        json={"configuration": make_config(keyed.url)},
    )
    assert ok.json() == {"type": "connection_status", "connection_status": {"status": "succeeded"}}
    bad = client.post(
        "/api/v1/connector_definitions/check_connection",
        json={"configuration": make_config(keyed.url, api_key="sk-wrong")},
    )
    status = bad.json()["connection_status"]
    assert status["status"] == "failed"
    assert "401" in status["message"] and "sk-wrong" not in status["message"]


def test_crud_masks_the_key_and_keeps_it_when_left_out(
    client: httpx.Client, keyed: MockServer
) -> None:
    created = _create(client, keyed.url, name="Local model")
    assert created["configuration"]["api_key"] == "********" and created["api_key_set"] is True
    cid = created["id"]
    assert client.get(f"/api/v1/connectors/{cid}").json()["name"] == "Local model"
    assert cid in [c["id"] for c in client.get("/api/v1/connectors").json()["data"]]

    config = make_config(keyed.url, is_stream=True)
    del config["api_key"]
    updated = client.put(
        f"/api/v1/connectors/{cid}", json={"name": "Renamed", "configuration": config}
    )
    assert updated.status_code == 200, updated.text
    assert (
        updated.json()["name"] == "Renamed" and updated.json()["configuration"]["is_stream"] is True
    )
    # The stored key still works: the keyed server accepts the check.
    check = client.post(f"/api/v1/connectors/{cid}/check").json()
    assert check["connection_status"] == {"status": "succeeded"}
    # The masked value sent back as is also keeps the key.
    masked = updated.json()["configuration"]
    assert (
        client.put(f"/api/v1/connectors/{cid}", json={"configuration": masked}).status_code == 200
    )
    assert (
        client.post(f"/api/v1/connectors/{cid}/check").json()["connection_status"]["status"]
        == "succeeded"
    )
    # A new key replaces it.
    config["api_key"] = "sk-other"
    client.put(f"/api/v1/connectors/{cid}", json={"configuration": config})
    failed = client.post(f"/api/v1/connectors/{cid}/check").json()["connection_status"]
    assert failed["status"] == "failed" and "401" in failed["message"]

    assert client.delete(f"/api/v1/connectors/{cid}").status_code == 204
    gone = client.get(f"/api/v1/connectors/{cid}")
    assert (
        gone.status_code == 404 and f"no connector with id {cid}" in gone.json()["error"]["message"]
    )
    assert client.delete(f"/api/v1/connectors/{cid}").status_code == 404


def test_invalid_configuration_is_422_per_field(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/connectors",
        json={
            "name": "",
            "configuration": {
                "url": "api.example.com/v1/chat/completions",
                "is_stream": "maybe",
                "config": {"timeout": ""},
                "request_format": '{"model": "m",',
            },
        },
    )
    assert response.status_code == 422
    errors = {e["field"]: e["message"] for e in response.json()["error"]["errors"]}
    assert set(errors) == {
        "name",
        "configuration.url",
        "configuration.api_key",
        "configuration.is_stream",
        "configuration.config.timeout",
        "configuration.request_format",
        "configuration.response_format",
    }
    assert "https://api.example.com" in errors["configuration.url"]
    assert "line 1 column" in errors["configuration.request_format"]
    assert "is required" in errors["configuration.response_format"]


def test_invalid_configuration_lists_every_problem_with_its_path_and_no_secret(
    client: httpx.Client,
) -> None:
    advanced = {"deadline": "later", "proxy": "ftp://user:pw-3@host", "auth": "sometimes"}
    response = client.post(
        "/api/v1/connectors",
        json={"name": "several", "configuration": make_config(CANARY, advanced=advanced)},
    )
    assert response.status_code == 422
    errors = response.json()["error"]["errors"]
    assert [e["field"] for e in errors] == [
        "configuration.url",
        "configuration.advanced.auth",
        "configuration.advanced.proxy",
        "configuration.advanced.deadline",
    ]
    assert (
        errors[0]["message"]
        == 'must start with http:// or https://, got "***" (did you mean https://***?)'
    )
    assert CANARY not in response.text and "pw-3" not in response.text
    # A check across options names its option; a bad URL does not hide it.
    crossed = client.post(
        "/api/v1/connector_definitions/check_connection",
        json={"configuration": make_config("ftp://h/v1", advanced={"auth": "header"})},
    )
    assert crossed.status_code == 422
    fields = [e["field"] for e in crossed.json()["error"]["errors"]]
    assert fields == ["configuration.url", "configuration.advanced.auth_header"]


@pytest.mark.parametrize(
    ("extra", "field", "why"),
    [
        (
            {"api_key": CANARY[:5] + "\u2013" + CANARY[5:]},
            "api_key",
            "U+2013 EN DASH at position 6",
        ),
        (
            {"url": "http://127.0.0.1:9/v1/chat/completions\r\nX-Injected: 1"},
            "url",
            "U+000D CARRIAGE RETURN (a line break) at position 39",
        ),
        (
            {"advanced": {"headers": {"X-Team": "data\ud800"}}},
            "advanced.headers.X-Team",
            "U+D800 (a lone surrogate) at position 5",
        ),
    ],
)
def test_a_value_that_cannot_be_sent_is_422_and_nothing_is_written(
    client: httpx.Client, extra: dict[str, Any], field: str, why: str
) -> None:
    name = f"hostile-{field}"
    config = {**make_config("http://127.0.0.1:9/v1/chat/completions"), **extra}
    # As JSON text with ASCII escapes: a lone surrogate travels as \\ud800, as a browser sends it.
    body = json.dumps({"name": name, "configuration": config})
    response = client.post(
        "/api/v1/connectors", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["error"]["errors"]
    assert error["field"] == f"configuration.{field}" and why in error["message"]
    assert CANARY[5:] not in response.text
    listed = client.get("/api/v1/connectors")
    assert listed.status_code == 200
    assert name not in listed.text


def test_check_saved_and_discover(client: httpx.Client, keyed: MockServer) -> None:
    cid = _create(client, keyed.url)["id"]
    assert (
        client.post(f"/api/v1/connectors/{cid}/check").json()["connection_status"]["status"]
        == "succeeded"
    )
    catalog = client.get(f"/api/v1/connectors/{cid}/discover").json()["catalog"]
    assert catalog["request_rate_limit"] == 600 and catalog["request_rate_concurrency"] == 10


def test_execute_model_json(client: httpx.Client, keyed: MockServer) -> None:
    cid = _create(client, keyed.url)["id"]
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "ping"}]}
    body = client.post(f"/api/v1/connectors/{cid}/execute_model", json={"payload": payload}).json()
    assert body["data"][0]["choices"][0]["message"]["content"] == "You said: ping"
    assert body["answer"] == body["data"][0] and body["warnings"] == []
    # A string holding the JSON object is accepted too, as the original platform does.
    text = client.post(
        f"/api/v1/connectors/{cid}/execute_model", json={"payload": json.dumps(payload)}
    )
    assert text.json()["answer"]["choices"][0]["message"]["content"] == "You said: ping"


def test_execute_model_uses_the_configuration_as_updated(
    client: httpx.Client, keyed: MockServer
) -> None:
    cid = _create(client, keyed.url)["id"]
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "ping"}]}
    path = f"/api/v1/connectors/{cid}/execute_model"
    assert client.post(path, json={"payload": payload}).status_code == 200
    wrong_key = make_config(keyed.url, api_key="sk-wrong")
    wrong = client.put(f"/api/v1/connectors/{cid}", json={"configuration": wrong_key})
    assert wrong.status_code == 200, wrong.text
    refused = client.post(path, json={"payload": payload})
    assert refused.status_code == 502 and refused.json()["error"]["provider_status"] == 401, (
        refused.text
    )
    right = client.put(f"/api/v1/connectors/{cid}", json={"configuration": make_config(keyed.url)})
    assert right.status_code == 200, right.text
    assert client.post(path, json={"payload": payload}).status_code == 200
    assert client.delete(f"/api/v1/connectors/{cid}").status_code == 204
    assert client.post(path, json={"payload": payload}).status_code == 404


def test_a_change_written_by_another_process_is_used_at_once(
    app: AppProcess, client: httpx.Client, keyed: MockServer, server: MockServer
) -> None:
    cid = _create(client, keyed.url)["id"]
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "ping"}]}
    path = f"/api/v1/connectors/{cid}/execute_model"
    assert client.post(path, json={"payload": payload}).status_code == 200
    # Another instance sharing the database saves a new URL (and, as the store does, a new
    # updated_at): this instance must send the next request there, not to the old URL.
    stored = {k: v for k, v in make_config(server.url).items() if k != "api_key"}
    configuration = json.dumps(stored)
    app.query(
        f"update connectors set configuration = '{configuration}', "
        f"updated_at = '2030-01-01 00:00:00.000000' where id = {cid}"
    )
    server.clear()
    assert client.post(path, json={"payload": payload}).status_code == 200
    assert len(server.requests) == 1


def test_execute_model_streams_server_sent_events(client: httpx.Client, keyed: MockServer) -> None:
    cid = _create(client, keyed.url, is_stream=True)["id"]
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "stream me"}]}
    with client.stream(
        "POST",
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": payload},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse(response.read().decode())
    names = [name for name, _ in events]
    assert names[-2:] == ["answer", "done"] and set(names[:-2]) == {"record"}
    text = "".join(
        d["choices"][0]["delta"].get("content") or ""
        for n, d in events
        if n == "record" and d["choices"]
    )
    assert text == "You said: stream me"
    assert events[-2][1]["choices"][0]["message"]["content"] == "You said: stream me"
    assert events[-1][1] == {"ok": True, "records": names.count("record")}
    # Without the Accept header: the same records as JSON, with the assembled answer.
    body = client.post(f"/api/v1/connectors/{cid}/execute_model", json={"payload": payload}).json()
    assert len(body["data"]) == names.count("record")
    assert body["answer"]["choices"][0]["message"]["content"] == "You said: stream me"


def test_records_reach_the_client_as_they_arrive(client: httpx.Client, keyed: MockServer) -> None:
    # The server sends two chunks, then stalls: both must reach the client during the stall
    # (not one record behind), well before the read timeout below.
    cid = _create(client, keyed.url + "?scenario=stall&stall_s=6", is_stream=True)["id"]
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "hold on"}]}
    records = 0
    with client.stream(
        "POST",
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": payload},
        headers={"Accept": "text/event-stream"},
        timeout=httpx.Timeout(10, read=4),
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            records += line == "event: record"
            assert line != "event: answer"
            if records == 2:
                break
    assert records == 2


def test_endpoint_failure_is_clear_json(client: httpx.Client, keyed: MockServer) -> None:
    cid = _create(client, keyed.url, api_key="sk-wrong", is_stream=True)["id"]
    for accept in ("application/json", "text/event-stream"):
        response = client.post(
            f"/api/v1/connectors/{cid}/execute_model",
            json={"payload": {"model": "mock-model", "messages": []}},
            headers={"Accept": accept},
        )
        assert response.status_code == 502
        error = response.json()["error"]
        assert error["provider_status"] == 401 and error["kind"] == "EndpointError"
        assert error["provider_message"] and "Traceback" not in response.text
        assert "sk-wrong" not in response.text


def test_error_inside_a_stream_ends_with_error_and_done(
    client: httpx.Client, server: MockServer
) -> None:
    cid = _create(client, server.url + "?scenario=error-in-stream", is_stream=True)["id"]
    response = client.post(
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": {"model": "mock-model", "messages": []}},
        headers={"Accept": "text/event-stream"},
    )
    names = [name for name, _ in _sse(response.text)]
    assert names == ["record", "record", "error", "done"]
    assert _sse(response.text)[-1][1]["ok"] is False


def test_provider_errors_keep_status_and_message(client: httpx.Client, server: MockServer) -> None:
    cid = _create(client, server.url)["id"]
    server.enqueue(error_reply(400, "you must provide a model parameter", param="model"))
    response = client.post(
        f"/api/v1/connectors/{cid}/execute_model", json={"payload": {"messages": []}}
    )
    error = response.json()["error"]
    assert response.status_code == 502 and error["provider_status"] == 400
    assert error["provider_message"] == "you must provide a model parameter"


def test_bad_payload_is_422(client: httpx.Client, server: MockServer) -> None:
    cid = _create(client, server.url)["id"]
    server.enqueue(json_reply({"never": "sent"}))
    for payload in ("[1, 2]", "{not json", 5):
        response = client.post(f"/api/v1/connectors/{cid}/execute_model", json={"payload": payload})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["errors"][0]["field"].startswith("payload")
    assert server.requests == []


def test_env_reference_is_resolved_when_used(client: httpx.Client, keyed: MockServer) -> None:
    created = _create(client, keyed.url, api_key=f'ENV["{KEY_ENV}"]')
    assert created["configuration"]["api_key"] == f'ENV["{KEY_ENV}"]'
    check = client.post(f"/api/v1/connectors/{created['id']}/check").json()
    assert check["connection_status"] == {"status": "succeeded"}
    missing = _create(client, keyed.url, api_key='ENV["OC_TEST_NOT_SET"]')
    response = client.post(f"/api/v1/connectors/{missing['id']}/check")
    assert response.status_code == 422
    assert "OC_TEST_NOT_SET" in response.json()["error"]["errors"][0]["message"]


def test_unknown_connector_is_404(client: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/v1/connectors/999999"),
        ("POST", "/api/v1/connectors/999999/check"),
        ("GET", "/api/v1/connectors/999999/discover"),
    ]:
        assert client.request(method, path).status_code == 404


def test_schema_is_migrated_at_start(app: AppProcess) -> None:
    versions = Path(openai_compat.app.__file__).parent / "db" / "migrations" / "versions"
    newest = max(path.name.split("_", 1)[0] for path in versions.glob("[0-9]*_*.py"))
    assert app.query("select version_num from alembic_version") == [(newest,)]
    assert app.query("select count(*) from connectors")[0][0] >= 0
