"""``check`` on an embeddings, completions or Responses URL: a request format of the URL's
API is sent as it is; another one (the connection's default chat sample) is replaced by a
minimal request of the URL's API, and the status says what to change."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat.cli import main
from openai_compat.connector import OpenAICompatibleConnector
from openai_compat.testing import MockServer
from tests.conftest import CANARY, make_config

_CHAT = '{"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}'


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/embeddings", "input"), ("/v1/completions", "prompt"), ("/v1/responses", "input")],
)
def test_a_chat_request_format_is_replaced_by_a_minimal_request_of_the_urls_api(
    server: MockServer, path: str, field: str
) -> None:
    config = make_config(server.base_url + path, request_format=_CHAT)
    status = OpenAICompatibleConnector().check_connection(config).connection_status
    assert status.status == "succeeded", status.message
    (request,) = server.requests
    assert request.path == path
    assert "messages" not in request.json and isinstance(request.json[field], str)
    assert request.json["model"] == "mock-model"
    assert f'has no "{field}"' in (status.message or "")
    assert "request_format" in (status.message or "")


def test_a_request_format_of_the_urls_api_is_sent_as_it_is(server: MockServer) -> None:
    body = {"model": "mock-model", "input": ["a", "b"], "dimensions": 4}
    config = make_config(server.base_url + "/v1/embeddings", request_format=json.dumps(body))
    status = OpenAICompatibleConnector().check_connection(config).connection_status
    assert status.status == "succeeded" and status.message is None
    (request,) = server.requests
    assert request.json == body


def test_a_chat_url_still_sends_the_request_format(server: MockServer) -> None:
    status = OpenAICompatibleConnector().check_connection(make_config(server.url))
    assert status.connection_status.status == "succeeded"
    (request,) = server.requests
    assert request.json == json.loads(_CHAT)


def test_the_cli_check_of_an_embeddings_url_succeeds_and_says_what_to_change(
    server: MockServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = tmp_path / "conn.json"
    conn.write_text(json.dumps(make_config(server.base_url + "/v1/embeddings")))
    assert main(["check", "--config", str(conn)]) == 0
    out = capsys.readouterr().out
    status = json.loads(out)["connection_status"]
    assert status["status"] == "succeeded"
    assert "embeddings" in status["message"] and CANARY not in out
