"""Nothing that cannot be sent as strict JSON is sent: a clear error, and no request."""

from __future__ import annotations

from typing import Any

import pytest

from openai_compat import ConfigurationError, Endpoint, OpenAICompatibleConnector
from openai_compat.testing import MockServer
from tests.conftest import NO_RETRY, make_config


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return root


def _circular() -> dict[str, Any]:
    payload: dict[str, Any] = {"model": "m"}
    payload["self"] = payload
    return payload


UNSENDABLE = {
    "NaN": ({"model": "m", "temperature": float("nan")}, "temperature is nan"),
    "Infinity": ({"model": "m", "max_tokens": float("inf")}, "max_tokens is inf"),
    "lone surrogate": ({"model": "m", "messages": [{"content": "\ud800"}]}, "lone surrogate"),
    "too deep": ({"model": "m", **_deep(100_000)}, "nested more than 64 levels deep"),
    "bytes": ({"model": "m", "data": b"\x00"}, "data is a bytes, which JSON cannot hold"),
    "circular": (_circular(), "nested more than 64 levels deep"),
}


@pytest.mark.parametrize("name", sorted(UNSENDABLE))
async def test_an_unsendable_payload_is_refused_before_any_request(
    server: MockServer, name: str
) -> None:
    payload, reason = UNSENDABLE[name]
    async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
        with pytest.raises(ConfigurationError, match=reason) as info:
            await endpoint.complete(payload)
    assert info.value.field == "payload"
    assert server.requests == []


@pytest.mark.parametrize("text", ['{"model": "m", "temperature": NaN}', '{"x": -Infinity}'])
def test_payload_text_with_nan_is_refused_at_the_door(server: MockServer, text: str) -> None:
    messages = OpenAICompatibleConnector(retry=NO_RETRY).run_model(make_config(server.url), text)
    (message,) = messages
    assert message.log is not None and message.log.level == "error"
    assert "not a JSON number (RFC 8259)" in message.log.message
    assert server.requests == []
