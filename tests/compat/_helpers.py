"""Small helpers shared by the compatibility tests: configs, runs, and what came out."""

from __future__ import annotations

from typing import Any

from openai_compat import Endpoint, OpenAICompatibleConnector, RetryPolicy
from openai_compat.endpoint import Completion
from openai_compat.protocol import ProtocolMessage

from ..conftest import NO_RETRY, make_config
from ._launch import Running


def payload(model: str, text: str = "Say hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def config_for(
    server: Running, model: str, *, stream: bool = False, key: str | None = None, **advanced: Any
) -> dict[str, Any]:
    """A raw configuration for ``server``; ``key`` defaults to the server's key."""
    config = make_config(
        server.url,
        is_stream=stream,
        request_format=payload(model),
        config={"timeout": 60},
    )
    if key is not None or server.key:
        config["api_key"] = server.key if key is None else key
    if advanced:
        config["advanced"] = advanced
    return config


def check(config: dict[str, Any]) -> tuple[str, str | None]:
    """(status, message) of a connection check."""
    status = OpenAICompatibleConnector(retry=NO_RETRY).check_connection(config).connection_status
    assert status is not None
    return status.status, status.message


def run(
    config: dict[str, Any], body: dict[str, Any], retry: RetryPolicy = NO_RETRY
) -> list[ProtocolMessage]:
    return list(OpenAICompatibleConnector(retry=retry).run_model(config, body))


def records(messages: list[ProtocolMessage]) -> list[dict[str, Any]]:
    return [m.record.data for m in messages if m.record is not None]


def errors(messages: list[ProtocolMessage]) -> list[str]:
    return [m.log.message for m in messages if m.log is not None and m.log.level == "error"]


def joined_deltas(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice.get("delta", {}).get("content") or ""
        for chunk in chunks
        for choice in chunk.get("choices") or []
    )


async def complete(
    config: dict[str, Any], body: dict[str, Any], retry: RetryPolicy = NO_RETRY
) -> Completion:
    async with Endpoint(config, retry=retry) as endpoint:
        return await endpoint.complete(body, keep_chunks=True)
