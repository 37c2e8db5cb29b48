"""A saved connector's capabilities in the application: measured with tiny requests through
the application's guarded clients (the ``check --capabilities`` record)."""

from __future__ import annotations

import json

import httpx

from openai_compat.testing import MockServer
from tests.conftest import CANARY, make_config


def _connector(client: httpx.Client, url: str, name: str = "probe") -> int:
    created = client.post(
        "/api/v1/connectors", json={"name": name, "configuration": make_config(url)}
    )
    assert created.status_code == 201, created.text
    connector_id: int = created.json()["id"]
    return connector_id


def test_a_connectors_capabilities_are_measured(client: httpx.Client, keyed: MockServer) -> None:
    connector_id = _connector(client, f"{keyed.url}?scenario=structured")
    before = len(keyed.requests)
    answer = client.post(f"/api/v1/connectors/{connector_id}/capabilities")
    assert answer.status_code == 200, answer.text
    found = answer.json()["capabilities"]
    assert (found["json_schema"], found["tools"]) == ("enforced", "accepted")
    assert isinstance(found["stream_options.include_usage"], bool)
    assert set(found) >= {"json_object", "n>1", "logprobs", "reasoning_field", "models"}
    # Every probe goes through its address guard, the GET of /v1/models included.
    assert found["models"] == ["mock-model"]
    sent = keyed.requests[before:]
    assert [r.path for r in sent if r.method != "POST"] == ["/v1/models"]
    assert all(r.headers.get("authorization") == f"Bearer {CANARY}" for r in sent)
    assert CANARY not in answer.text


def test_a_refusing_server_is_seen_as_refusing(client: httpx.Client, keyed: MockServer) -> None:
    url = f"{keyed.url}?scenario=structured&refuse=response_format"
    found = client.post(f"/api/v1/connectors/{_connector(client, url)}/capabilities").json()
    assert found["capabilities"]["json_schema"] == "refused"


def test_capabilities_of_an_unknown_or_non_chat_connector(
    client: httpx.Client, keyed: MockServer
) -> None:
    assert client.post("/api/v1/connectors/999999/capabilities").status_code == 404
    embeddings = _connector(client, keyed.base_url + "/v1/embeddings", "vectors")
    before = len(keyed.requests)
    answer = client.post(f"/api/v1/connectors/{embeddings}/capabilities")
    assert answer.status_code == 422, answer.text
    assert "chat" in json.dumps(answer.json()) and len(keyed.requests) == before
