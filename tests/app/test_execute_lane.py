"""``ExecuteLane``: the fast lane of ``execute_model`` answers exactly as FastAPI's route does.

Every body is sent twice to the running app: as ``application/json`` (the lane takes it, or
hands it on) and as ``application/x-lane-test+json``, a type FastAPI reads as JSON but the
lane never takes (so the route answers). Status, body and what reached the endpoint must
be the same.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from openai_compat.app.http.problems import ApiError
from openai_compat.app.middleware.execute_lane import ExecuteLane
from openai_compat.testing import MockServer
from tests.conftest import make_config

ROUTE_ONLY = "application/x-lane-test+json"

BODIES = [
    b'{"payload": {"model": "m", "messages": [{"role": "user", "content": "hi \\u00e9"}]}}',
    b'{"payload": "{\\"model\\": \\"m\\", \\"messages\\": []}"}',
    b'{"payload": {"model": "m"}, "other": [1, 2]}',
    b'{"payload": {"model": "m"}, "payload": {"model": "n"}}',
    b'{"payload": 5}',
    b'{"payload": null}',
    b'{"payload": ["m"]}',
    b"{}",
    b"[1]",
    b'"text"',
    b'{"payload": "[1, 2]"}',
    b'{"payload": "{not json"}',
    b'{"payload": {"model": "m", "t": NaN}}',
    b'{"payload": {"model": "m", "t": 1e400}}',
    b'{"payload": {"model": "m", "t": "\\ud800"}}',
    b'{"payload": {"model": "m", "big": 123456789012345678901234567890}}',
    b'{"payload": ' + b'{"x": ' * 70 + b"1" + b"}" * 71,
    b"[" * 3_000,
    b"{not json",
    b"",
    b'\xef\xbb\xbf{"payload": {"model": "m"}}',
    b'{"payload": {"model": "\xff"}}',
]


def _without_ids(value: Any) -> Any:
    """``value`` without the scripted server's per-answer ``id`` and ``created``."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "created")}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


def _answer(
    client: httpx.Client, server: MockServer, path: str, body: bytes, content_type: str
) -> tuple[int, Any, list[bytes]]:
    server.clear()
    response = client.post(path, content=body, headers={"Content-Type": content_type})
    sent = [request.body for request in server.requests]
    try:
        answer = _without_ids(response.json())
    except ValueError:
        answer = response.text
    return response.status_code, answer, sent


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_the_lane_answers_as_the_route(
    client: httpx.Client, server: MockServer, body: bytes
) -> None:
    created = client.post(
        "/api/v1/connectors", json={"name": "lane", "configuration": make_config(server.url)}
    )
    path = f"/api/v1/connectors/{created.json()['id']}/execute_model"
    lane = _answer(client, server, path, body, "application/json")
    route = _answer(client, server, path, body, ROUTE_ONLY)
    assert lane == route
    assert lane[0] != 500, lane


def test_unknown_ids_and_streams_answer_as_the_route(
    client: httpx.Client, server: MockServer
) -> None:
    created = client.post(
        "/api/v1/connectors",
        json={"name": "lane", "configuration": make_config(server.url, is_stream=True)},
    )
    body = b'{"payload": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}'
    for path in (
        "/api/v1/connectors/999999/execute_model",
        "/api/v1/connectors/99999999999999999999/execute_model",
    ):
        lane = _answer(client, server, path, body, "application/json; charset=utf-8")
        assert lane == _answer(client, server, path, body, ROUTE_ONLY)
        assert lane[0] in (404, 422), lane
    path = f"/api/v1/connectors/{created.json()['id']}/execute_model"
    streams = []
    for content_type in ("application/json", ROUTE_ONLY):
        headers = {"Content-Type": content_type, "Accept": "text/event-stream"}
        response = client.post(path, content=body, headers=headers)
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.text.splitlines() if line.startswith("event: ")]
        streams.append(events)
    assert streams[0] == streams[1] and streams[0][-1] == "event: done"


# -- the lane on its own: what it takes, what it hands on -----------------------------------


class _Refusing:
    """Services whose every saved connector is missing: the lane's own 404."""

    async def usable_saved(self, connector_id: int) -> Any:
        raise ApiError(404, f"there is no connector with id {connector_id}")


def _scope(path: str, content_type: bytes = b"application/json") -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", content_type)],
    }


async def _through(lane: ExecuteLane, scope: Scope, chunks: list[bytes]) -> list[Message]:
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await lane(scope, receive, send)
    return sent


async def test_a_well_formed_request_is_answered_without_the_app() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("handed on")

    lane = ExecuteLane(app, services=_Refusing())  # type: ignore[arg-type]
    sent = await _through(
        lane, _scope("/api/v1/connectors/7/execute_model"), [b'{"payload"', b': {"m": 1}}']
    )
    assert sent[0]["status"] == 404
    assert json.loads(sent[1]["body"])["error"]["message"] == "there is no connector with id 7"


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/api/v1/connectors/7/execute_model", b"application/json", b'{"payload": 5}'),
        ("/api/v1/connectors/7/execute_model", b"application/json", b"[1] x"),
        ("/api/v1/connectors/7/execute_model", b"text/plain", b'{"payload": {}}'),
        ("/api/v1/connectors/07/execute_model", b"application/json", b'{"payload": {}}'),
        ("/api/v1/connectors/7/check", b"application/json", b'{"payload": {}}'),
    ],
)
async def test_anything_else_is_handed_on_with_its_body(
    path: str, content_type: bytes, body: bytes
) -> None:
    seen: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        seen.append(b"".join(chunks))

    lane = ExecuteLane(app, services=_Refusing())  # type: ignore[arg-type]
    half = len(body) // 2
    assert await _through(lane, _scope(path, content_type), [body[:half], body[half:]]) == []
    assert seen == [body]
