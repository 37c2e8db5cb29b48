"""The API key never leaks: not in messages, errors, reprs, or what a hostile server echoes.

The conftest's autouse fixture already fails any test that prints or logs the canary;
these tests push it at every exit a server could use to smuggle it back out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import (
    Endpoint,
    OpenAICompatError,
    OpenAICompatibleConnector,
    SourceConfig,
)
from openai_compat.testing import (
    MockServer,
    Reply,
    error_reply,
    json_reply,
    raw_reply,
    sse_reply,
)
from tests.conftest import CANARY, NO_RETRY, make_config

ECHOES = [
    error_reply(401, f"Incorrect API key provided: {CANARY}", code="invalid_api_key"),
    json_reply({"detail": f"bad token {CANARY}"}, status=403),
    json_reply({"error": f"key {CANARY} revoked"}, status=400),
    raw_reply(f"upstream rejected Bearer {CANARY}", status=502),
    json_reply({"error": {"message": f"in-200 error for {CANARY}"}}),
    raw_reply(
        f"<html><title>{CANARY}</title><body>{CANARY}</body></html>", content_type="text/html"
    ),
    sse_reply([{"choices": [{"delta": {"content": "x"}}]}, {"error": {"message": CANARY}}]),
    json_reply([f"a JSON array echoing {CANARY}"]),
    # Every field of an error, not only its message: type, code, param, the request id.
    error_reply(400, "bad", type=f"Bearer {CANARY}", code=CANARY, param=f"key={CANARY}"),
    error_reply(500, "failed", headers={"x-request-id": f"Bearer {CANARY}"}),
    json_reply({"error": {"message": "m", "type": CANARY, "code": CANARY}}),
    sse_reply(
        [{"choices": [{"delta": {"content": "x"}}]}, {"error": {"message": "m", "code": CANARY}}]
    ),
    raw_reply("<html>login</html>", content_type="text/html", headers={"x-request-id": CANARY}),
]


def everything_about(exc: OpenAICompatError) -> str:
    parts = [str(exc), repr(exc), repr(exc.args)]
    for name in ("provider_message", "body", "code", "type", "param", "request_id"):
        parts.append(json.dumps(getattr(exc, name, None), default=str))
    return "\n".join(parts)


@pytest.mark.parametrize("reply", ECHOES)
async def test_a_server_echoing_the_key_cannot_leak_it_through_errors(
    server: MockServer, reply: Reply
) -> None:
    server.enqueue(reply)
    config = make_config(server.url, is_stream=True)
    async with Endpoint(config, retry=NO_RETRY) as endpoint:
        with pytest.raises(OpenAICompatError) as info:
            await endpoint.complete({"model": "m", "messages": []})
    text = everything_about(info.value)
    assert CANARY not in text
    assert "***" in text  # the echo was there, and was masked


async def test_the_request_id_of_a_good_answer_is_masked_too(server: MockServer) -> None:
    server.enqueue(
        json_reply(
            {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]},
            headers={"x-request-id": f"echo Bearer {CANARY}"},
        )
    )
    async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
        completion = await endpoint.complete({"model": "m", "messages": []})
    assert completion.request_id is not None
    assert (
        completion.request_id.startswith("echo Bearer ***") and CANARY not in completion.request_id
    )


@pytest.mark.parametrize("reply", ECHOES)
def test_connector_messages_never_hold_the_key(server: MockServer, reply: Reply) -> None:
    connector = OpenAICompatibleConnector(retry=NO_RETRY)
    server.enqueue(reply, reply)
    config = make_config(server.url, is_stream=True)
    out: list[Any] = [connector.check_connection(config).to_json()]
    out += [m.to_json() for m in connector.run_model(config, {"model": "m", "messages": []})]
    assert CANARY not in "\n".join(out)
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY}"


def test_reprs_and_dumps_of_every_object_hide_the_key(server: MockServer) -> None:
    config = SourceConfig.parse(make_config(server.url))
    endpoint = Endpoint(config)
    objects = [config, endpoint, endpoint.client, OpenAICompatibleConnector()]
    text = "\n".join(repr(o) + str(o) for o in objects)
    text += config.model_dump_json() + str(config.model_dump())
    assert CANARY not in text


def test_invalid_configuration_errors_do_not_echo_the_key() -> None:
    with pytest.raises(OpenAICompatError) as info:
        SourceConfig.parse({**make_config("http://h/v1/chat/completions"), "is_stream": CANARY})
    assert CANARY not in str(info.value)


def test_secret_header_values_are_not_echoed_by_config_errors() -> None:
    raw = {
        **make_config("http://h/v1/chat/completions"),
        "is_stream": "sk-secret-header-value",
        "advanced": {"secret_headers": {"X-Gateway-Key": "sk-secret-header-value"}},
    }
    with pytest.raises(OpenAICompatError) as info:
        SourceConfig.parse(raw)
    assert "sk-secret-header-value" not in str(info.value)
