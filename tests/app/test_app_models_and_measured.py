"""A saved connector's capabilities stored on it, and its server's models listed, in the
application: every request through its guarded client (the models GET too), the address
policy holding before any connection, and the key in no answer."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from openai_compat import ConnectError
from openai_compat._transports import hooked_client_factory
from openai_compat.app import AddressPolicy
from openai_compat.capabilities import list_models
from openai_compat.testing import MockServer, json_reply
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config


def _connector(client: httpx.Client, url: str, name: str = "probe") -> int:
    created = client.post(
        "/api/v1/connectors", json={"name": name, "configuration": make_config(url)}
    )
    assert created.status_code == 201, created.text
    connector_id: int = created.json()["id"]
    return connector_id


def test_measured_capabilities_are_stored_with_when_and_the_models(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, f"{keyed.url}?scenario=structured")
    path = f"/api/v1/connectors/{connector_id}/capabilities"
    assert client.get(path).json() == {"capabilities": None, "measured_at": None}
    before = len(keyed.requests)
    measured = client.post(path)
    assert measured.status_code == 200, measured.text
    body = measured.json()
    assert body["capabilities"]["json_schema"] == "enforced"
    assert body["capabilities"]["models"] == ["mock-model"]
    assert body["measured_at"].endswith("+00:00")
    sent = keyed.requests[before:]
    assert [r.path for r in sent if r.method == "GET"] == ["/v1/models"]
    assert all(r.headers.get("authorization") == f"Bearer {CANARY}" for r in sent)
    # Read back as stored, without a request.
    before = len(keyed.requests)
    stored = client.get(path)
    assert stored.json() == body and len(keyed.requests) == before
    assert CANARY not in measured.text + stored.text


def test_a_rename_keeps_them_a_new_configuration_drops_them(
    client: httpx.Client, keyed: MockServer
) -> None:
    url = f"{keyed.url}?scenario=structured"
    connector_id = _connector(client, url, "before")
    path = f"/api/v1/connectors/{connector_id}/capabilities"
    assert client.post(path).status_code == 200
    renamed = client.put(
        f"/api/v1/connectors/{connector_id}",
        json={"name": "after", "configuration": make_config(url)},
    )
    assert renamed.status_code == 200, renamed.text
    assert client.get(path).json()["capabilities"]["json_schema"] == "enforced"
    moved = client.put(
        f"/api/v1/connectors/{connector_id}",
        json={"name": "after", "configuration": make_config(keyed.url)},
    )
    assert moved.status_code == 200, moved.text
    assert client.get(path).json() == {"capabilities": None, "measured_at": None}


def test_the_models_route_lists_through_the_guarded_client(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    before = len(keyed.requests)
    answer = client.get(f"/api/v1/connectors/{connector_id}/models")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"models": ["mock-model"]}
    [sent] = keyed.requests[before:]
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers.get("authorization") == f"Bearer {CANARY}"
    assert CANARY not in answer.text
    assert client.get("/api/v1/connectors/999999/models").status_code == 404


def test_a_server_that_lists_no_models_is_a_clear_502(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    keyed.enqueue(json_reply({"object": "error", "message": "no such route"}))
    answer = client.get(f"/api/v1/connectors/{connector_id}/models")
    assert answer.status_code == 502, answer.text
    assert "did not answer a model list" in answer.json()["error"]["message"]
    assert "Traceback" not in answer.text and CANARY not in answer.text


def test_a_refused_address_is_refused_before_any_connection(
    tmp_path: Path, server: MockServer
) -> None:
    data = tmp_path / "data"
    allowing = AppProcess(data)
    try:
        with allowing.client() as client:
            connector_id = _connector(client, server.url)
    finally:
        allowing.stop()
    # The same saved connector, served by an application that refuses private addresses.
    refusing = AppProcess(data, extra_args=("--refuse-private",))
    try:
        with refusing.client() as client:
            for method, suffix in (("GET", "models"), ("POST", "capabilities")):
                answer = client.request(method, f"/api/v1/connectors/{connector_id}/{suffix}")
                assert answer.status_code == 422, answer.text
                assert "--refuse-private" in json.dumps(answer.json())
    finally:
        refusing.stop()
    assert server.requests == []


async def test_the_models_get_is_vetted_at_connection_time(server: MockServer) -> None:
    """DNS rebinding: a name that passed a check and then resolves to the metadata address
    is refused by the guard at the connection, and nothing reaches the server."""

    async def resolver(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]

    factory = hooked_client_factory(AddressPolicy(resolver=resolver).allowed_addresses)
    config = make_config(f"http://rebind.test:{server.port}/v1/chat/completions")
    with pytest.raises(ConnectError, match="link-local") as caught:
        await list_models(config, client_factory=factory)
    assert CANARY not in str(caught.value)
    assert server.requests == []
    # The same guard lets an allowed address through.
    allowed = hooked_client_factory(AddressPolicy().allowed_addresses)
    assert await list_models(make_config(server.url), client_factory=allowed) == ["mock-model"]
