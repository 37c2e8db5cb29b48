"""Run a payload through a configuration's ``Endpoint`` and shape what comes back for HTTP.

Built on the core's public pieces: ``connector.endpoint(config)``, ``endpoint.request``
(failures raise typed ``OpenAICompatError``s carrying the provider's status and message),
``ChunkAssembler`` for the answer of a streamed reply, and ``exchange.truncated``.

Answers
-------
JSON: ``{"data": [record data...], "answer": {...}, "warnings": [...]}``; ``answer`` is
the assembled ``chat.completion`` of a streamed reply, or the reply itself.

Server-sent events (``Accept: text/event-stream``, streaming connector): ``record`` events
(one per chunk, sent as it arrives), then ``answer`` (the assembled reply), any ``warning``,
an ``error`` event if the stream broke after it started, and always a final ``done``. A
failure before the first record is a plain JSON error with the provider's status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..config import SourceConfig
from ..connector import OpenAICompatibleConnector
from ..endpoint import Exchange
from ..errors import OpenAICompatError
from ..stream import ChunkAssembler
from .problems import ApiError, endpoint_error_body

__all__ = ["run_json", "start_event_stream"]


@dataclass
class _Run:
    """One request in flight: its data as it arrives, and the exchange once it is open."""

    connector: OpenAICompatibleConnector
    config: SourceConfig
    payload: dict[str, Any]
    exchange: Exchange | None = None

    async def data(self) -> AsyncGenerator[dict[str, Any]]:
        async with (
            self.connector.endpoint(self.config) as endpoint,
            endpoint.request(self.payload) as exchange,
        ):
            self.exchange = exchange
            async for item in exchange:
                yield item

    def answer(self, records: list[dict[str, Any]], assembler: ChunkAssembler) -> Any:
        """The assembled reply when it was streamed, else the reply itself."""
        if not records:
            return None
        if self.exchange is not None and self.exchange.streamed:
            return assembler.result()
        return records[-1]

    def warnings(self) -> list[str]:
        exchange = self.exchange
        if exchange is None or not exchange.truncated:
            return []
        return [
            f"the stream ended after {exchange.chunks} chunk(s) with neither [DONE] nor a "
            "finish_reason: it may have been cut off"
        ]


def _api_error(exc: OpenAICompatError, partial: list[dict[str, Any]]) -> ApiError:
    status, body = endpoint_error_body(exc)
    if partial:
        body["partial_data"] = partial
    return ApiError(status, **body)


async def run_json(
    connector: OpenAICompatibleConnector, config: SourceConfig, payload: dict[str, Any]
) -> dict[str, Any]:
    """Run to completion; the ``{"data", "answer", "warnings"}`` body, or ``ApiError``."""
    run = _Run(connector, config, payload)
    records: list[dict[str, Any]] = []
    try:
        async for item in run.data():
            records.append(item)
    except OpenAICompatError as exc:
        raise _api_error(exc, records) from None
    # Assembled only when streamed (a JSON answer is its own answer), once all is here.
    assembler = ChunkAssembler()
    if run.exchange is not None and run.exchange.streamed:
        for item in records:
            assembler.add(item)
    return {"data": records, "answer": run.answer(records, assembler), "warnings": run.warnings()}


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def start_event_stream(
    connector: OpenAICompatibleConnector, config: SourceConfig, payload: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The SSE body. A failure before the first record raises ``ApiError`` before any byte.

    The first record is awaited here, so the caller can answer with a proper JSON error
    instead of a stream when nothing was received.
    """
    run = _Run(connector, config, payload)
    data = run.data()
    try:
        first = await anext(data, None)
    except OpenAICompatError as exc:
        await data.aclose()
        raise _api_error(exc, []) from None
    return _events(run, first, data)


async def _events(
    run: _Run, first: dict[str, Any] | None, data: AsyncGenerator[dict[str, Any]]
) -> AsyncIterator[bytes]:
    records: list[dict[str, Any]] = []
    assembler = ChunkAssembler()
    error: OpenAICompatError | None = None
    item = first
    try:
        while item is not None:
            records.append(item)
            assembler.add(item)
            yield _event("record", item)
            item = await anext(data, None)
    except OpenAICompatError as exc:
        error = exc
    finally:
        await data.aclose()
    if error is None:
        if records:
            yield _event("answer", run.answer(records, assembler))
        for warning in run.warnings():
            yield _event("warning", {"message": warning})
    else:
        yield _event("error", {"error": endpoint_error_body(error)[1]})
    yield _event("done", {"ok": error is None, "records": len(records)})
