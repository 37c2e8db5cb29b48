"""The application with the other OpenAI APIs: a connector's ``api`` is saved and checked
(422 for an unknown one), the playground's execute_model streams Responses events and
answers embeddings with the vector."""

from __future__ import annotations

import json
from typing import Any

import httpx

from openai_compat.testing import MockServer, embedding_vector
from tests.conftest import CANARY, make_config


def _create(client: httpx.Client, url: str, name: str, **extra: Any) -> httpx.Response:
    return client.post(
        "/api/v1/connectors", json={"name": name, "configuration": make_config(url, **extra)}
    )


def test_an_unknown_api_is_422_naming_the_choices(client: httpx.Client) -> None:
    response = _create(client, "http://127.0.0.1:9/odd", "bad-api", api="embedding")
    assert response.status_code == 422, response.text
    (error,) = response.json()["error"]["errors"]
    assert error["field"] == "configuration.api"
    assert '"embeddings"' in error["message"]


def test_a_responses_connector_on_an_odd_path_streams_its_events(
    client: httpx.Client, keyed: MockServer
) -> None:
    # The scripted server answers Responses at .../responses only: "api" names the dialect,
    # the path is kept as given (here one the server knows, with a query).
    created = _create(
        client,
        keyed.base_url + "/v1/responses?scenario=normal",
        "responses",
        is_stream=True,
        api="responses",
    )
    assert created.status_code == 201, created.text
    assert created.json()["configuration"]["api"] == "responses"
    cid = created.json()["id"]
    payload = {"model": "mock-model", "input": "stream me"}
    with client.stream(
        "POST",
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": payload},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    names = [name for name, _ in events]
    assert names[-2:] == ["answer", "done"] and "warning" not in names
    deltas = [d["delta"] for n, d in events if n == "record" and d["type"].endswith("text.delta")]
    assert "".join(deltas) == "You said: stream me"
    assert events[-2][1]["output_text"] == "You said: stream me"
    assert CANARY not in text


def test_an_embeddings_connector_answers_with_the_vector(
    client: httpx.Client, keyed: MockServer
) -> None:
    created = _create(
        client,
        keyed.base_url + "/v1/embeddings",
        "embeddings",
        request_format=json.dumps({"model": "mock-model", "input": "x"}),
        is_stream=True,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    check = client.post(f"/api/v1/connectors/{cid}/check").json()
    assert check["connection_status"]["status"] == "succeeded"
    body = client.post(
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": {"model": "mock-model", "input": "hello"}},
    ).json()
    assert body["answer"]["data"][0]["embedding"] == embedding_vector("hello")
    assert body["warnings"] == []
