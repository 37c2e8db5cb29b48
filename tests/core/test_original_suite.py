"""The original Ruby connector's own test cases, re-made against a real local server."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from openai_compat import OpenAICompatibleConnector, resources
from openai_compat.testing import MockServer, Reply, json_reply
from tests.conftest import CANARY, NO_RETRY

QUERY = '{"queries":"Hello there"}'


def connection(url: str) -> dict[str, Any]:
    return {"url": url, "api_key": CANARY, "config": {"timeout": 25}, "request_format": QUERY}


def sync_config(url: str, *, stream: bool = False) -> dict[str, Any]:
    spec = connection(url)
    spec["is_stream"] = stream
    return {
        "source": {
            "name": "OpenAI Compatible",
            "type": "source",
            "connection_specification": spec,
            "query_type": "ai_ml",
        },
        "destination": {"name": "d", "type": "destination", "connection_specification": {}},
        "model": {"name": "m", "query": QUERY, "query_type": "ai_ml", "primary_key": "id"},
        "stream": {"name": "s", "json_schema": {}},
        "sync_mode": "full_refresh",
        "destination_sync_mode": "insert",
        "sync_id": "1",
    }


@pytest.fixture
def connector() -> OpenAICompatibleConnector:
    return OpenAICompatibleConnector(retry=NO_RETRY)


def assert_original_headers(server: MockServer) -> None:
    (request,) = server.requests
    assert request.method == "POST"
    assert request.headers["accept"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {CANARY}"
    assert request.headers["content-type"] == "application/json"


def test_1_check_connection_succeeds_on_200(
    server: MockServer, connector: OpenAICompatibleConnector
) -> None:
    server.enqueue(json_reply({"message": "success"}))
    message = connector.check_connection(connection(server.url))
    assert message.to_dict() == {
        "type": "connection_status",
        "connection_status": {"status": "succeeded"},
    }
    assert_original_headers(server)
    assert server.requests[0].json == json.loads(QUERY)


def test_2_check_connection_fails_on_401_with_the_status_and_body(
    server: MockServer, connector: OpenAICompatibleConnector
) -> None:
    server.enqueue(json_reply({"message": "failed"}, status=401))
    status = connector.check_connection(connection(server.url)).to_dict()["connection_status"]
    assert status["status"] == "failed"
    assert "HTTP 401" in status["message"] and "failed" in status["message"]


def test_2b_check_connection_fails_when_no_response_comes(
    connector: OpenAICompatibleConnector,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    status = connector.check_connection(connection(url)).to_dict()["connection_status"]
    assert status["status"] == "failed"
    assert "connection refused" in status["message"]


def test_3_discover_returns_the_catalog(connector: OpenAICompatibleConnector) -> None:
    catalog = connector.discover(connection("http://127.0.0.1:1/v1/chat/completions")).to_dict()
    assert catalog["type"] == "catalog"
    assert catalog["catalog"]["request_rate_limit"] == 600
    assert catalog["catalog"]["request_rate_limit_unit"] == "minute"
    assert catalog["catalog"]["request_rate_concurrency"] == 10
    assert catalog["catalog"]["streams"] == []


def test_4_discover_when_the_catalog_cannot_be_read_logs_an_error(
    connector: OpenAICompatibleConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise OSError("catalog.json is missing")

    monkeypatch.setattr(resources, "catalog", broken)
    message = connector.discover().to_dict()
    assert message["type"] == "log"
    assert message["log"]["level"] == "error"
    assert "catalog.json is missing" in message["log"]["message"]


def test_5_read_not_streaming_gives_one_record_with_exactly_the_data(
    server: MockServer, connector: OpenAICompatibleConnector
) -> None:
    server.enqueue(json_reply({"message": "Hello! how can I help"}))
    messages = [m.to_dict() for m in connector.read(sync_config(server.url))]
    assert len(messages) == 1
    assert messages[0]["type"] == "record"
    assert messages[0]["record"]["data"] == {"message": "Hello! how can I help"}
    assert isinstance(messages[0]["record"]["emitted_at"], int)
    assert_original_headers(server)
    assert server.requests[0].json == json.loads(QUERY)


def test_6_read_when_the_request_raises_logs_an_error_with_the_read_context(
    connector: OpenAICompatibleConnector,
) -> None:
    messages = [m.to_dict() for m in connector.read(sync_config("http://127.0.0.1:1/v1/x"))]
    assert len(messages) == 1
    log = messages[0]["log"]
    assert log["level"] == "error"
    assert log["name"] == "OpenAICompatible:read"
    assert "127.0.0.1:1" in log["message"]


def test_7_read_streaming_split_in_two_network_pieces_gives_three_records(
    server: MockServer, connector: OpenAICompatibleConnector
) -> None:
    first = (
        b'data: {"choices":[{"delta":{"content":"How I "}}]}\n\n'
        b'data: {"choices":[{"delta":{"content":"can help "}}]}\n'
    )
    second = b'data: {"choices":[{"delta":{"content":"you"}}]}\n\n'
    server.enqueue(
        Reply(
            headers={"content-type": "text/event-stream"},
            pieces=(first, second),
            piece_delay_s=0.05,
        )
    )
    messages = [m.to_dict() for m in connector.read(sync_config(server.url, stream=True))]
    records = [m["record"]["data"] for m in messages if m["type"] == "record"]
    assert [r["choices"][0]["delta"]["content"] for r in records] == ["How I ", "can help ", "you"]
    assert server.requests[0].json == {"queries": "Hello there", "stream": True}
    # The stream has no [DONE] and no finish_reason: records, then a warning, not an error.
    assert [m["type"] for m in messages] == ["record", "record", "record", "log"]
    assert messages[-1]["log"]["level"] == "warn"


@pytest.mark.parametrize("content_type", ["text/event-stream", "application/json", None])
def test_8_read_streaming_error_body_without_data_prefix_is_an_error_and_no_record(
    server: MockServer, connector: OpenAICompatibleConnector, content_type: str | None
) -> None:
    body = b'{"error":{"message":"Incorrect API key provided: sk-proj"}}\n\n'
    server.enqueue(
        Reply(
            headers={"content-type": content_type} if content_type else {},
            pieces=(body,),
        )
    )
    messages = [m.to_dict() for m in connector.read(sync_config(server.url, stream=True))]
    assert [m["type"] for m in messages] == ["log"]
    assert messages[0]["log"]["level"] == "error"
    assert "Incorrect API key provided" in messages[0]["log"]["message"]


def test_9_read_streaming_chunk_then_connection_failure(
    server: MockServer, connector: OpenAICompatibleConnector
) -> None:
    server.enqueue(
        Reply(
            headers={"content-type": "text/event-stream"},
            pieces=(b'{"message":"streaming data chunk 1"}\n',),
            disconnect=True,
        )
    )
    messages = [m.to_dict() for m in connector.read(sync_config(server.url, stream=True))]
    assert [m["type"] for m in messages] == ["record", "log"]
    assert messages[0]["record"]["data"] == {"message": "streaming data chunk 1"}
    assert messages[1]["log"]["level"] == "error"
    assert "closed the connection during the stream, after 1 chunk" in messages[1]["log"]["message"]
