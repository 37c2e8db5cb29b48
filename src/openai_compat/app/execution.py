"""Run a payload through a configuration's ``Endpoint`` and shape what comes back for HTTP.

Built on the core's pieces: ``connector.endpoint(config)``, ``endpoint.request`` (failures
raise typed ``OpenAICompatError``s carrying the provider's status and message), and the one
``Consumer`` every door reads an answer with (the assembled reply, the cut-off warning).

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

from .._consume import Consumer, Outcome
from ..config import SourceConfig
from ..connector import OpenAICompatibleConnector
from ..errors import OpenAICompatError
from .problems import ApiError, endpoint_error_body

__all__ = ["run_json", "start_event_stream"]


@dataclass
class _Run:
    """One request in flight: its records as they arrive, and what they came to."""

    connector: OpenAICompatibleConnector
    config: SourceConfig
    payload: dict[str, Any]
    outcome: Outcome | None = None

    async def data(self) -> AsyncGenerator[dict[str, Any]]:
        async with (
            self.connector.endpoint(self.config) as endpoint,
            endpoint.request(self.payload) as exchange,
        ):
            consumer = Consumer(exchange)
            async for item in consumer:
                yield item
            self.outcome = consumer.outcome()


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
    assert run.outcome is not None
    return {"data": records, "answer": run.outcome.answer, "warnings": run.outcome.warnings}


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
    count = 0
    error: OpenAICompatError | None = None
    item = first
    try:
        while item is not None:
            count += 1
            yield _event("record", item)
            item = await anext(data, None)
    except OpenAICompatError as exc:
        error = exc
    finally:
        await data.aclose()
    if error is None:
        outcome = run.outcome
        assert outcome is not None
        if outcome.answer is not None:
            yield _event("answer", outcome.answer)
        for warning in outcome.warnings:
            yield _event("warning", {"message": warning})
    else:
        yield _event("error", {"error": endpoint_error_body(error)[1]})
    yield _event("done", {"ok": error is None, "records": count})
