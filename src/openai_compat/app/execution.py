"""Run a payload through the core connector and shape what comes back for HTTP.

Everything goes through ``OpenAICompatibleConnector.arun_model(..., assemble=True)``. The
connector reports failures as ``log`` messages; so that the HTTP answer can carry the
provider's status and message as data, the app's connector also keeps the error object
itself (per request, in a context variable) — see ``AppConnector``.

Answers
-------
JSON: ``{"data": [record data...], "answer": {...}, "warnings": [...]}``; ``answer`` is
the assembled ``chat.completion`` of a streamed reply, or the reply itself.

Server-sent events (``Accept: text/event-stream``, streaming connector): ``record`` events
(one per chunk, as it arrives), then ``answer`` (the assembled reply), any ``warning``,
an ``error`` event if the stream broke after it started, and always a final ``done``. A
failure before the first record is a plain JSON error with the provider's status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..config import SourceConfig
from ..connector import OpenAICompatibleConnector
from ..endpoint import Endpoint, Exchange
from ..errors import OpenAICompatError, StreamError
from ..protocol import ProtocolMessage
from .problems import ApiError, endpoint_error_body

__all__ = ["AppConnector", "Outcome", "run_json", "start_event_stream"]

_errors: ContextVar[list[OpenAICompatError] | None] = ContextVar("_errors", default=None)


class _CapturingEndpoint(Endpoint):
    """An ``Endpoint`` that also hands the failure object to the running request."""

    @asynccontextmanager
    async def request(
        self, payload: dict[str, Any], *, as_is: bool = False
    ) -> AsyncIterator[Exchange]:
        try:
            async with super().request(payload, as_is=as_is) as exchange:
                yield exchange
        except OpenAICompatError as exc:
            sink = _errors.get()
            if sink is not None:
                sink.append(exc)
            raise


class AppConnector(OpenAICompatibleConnector):
    """The core connector, with endpoint failures kept as objects for the HTTP answer."""

    def endpoint(self, config: SourceConfig | dict[str, Any] | str) -> Endpoint:
        return _CapturingEndpoint(
            config, client=self.client, retry=self.retry, on_retry=self.on_retry
        )


@dataclass
class Outcome:
    """What one execution produced, message by message."""

    records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: OpenAICompatError | None = None


def _failure(message: ProtocolMessage, captured: list[OpenAICompatError]) -> OpenAICompatError:
    if captured:
        return captured[-1]
    assert message.log is not None
    return StreamError(message.log.message)


def _error_payload(exc: OpenAICompatError) -> tuple[int, dict[str, Any]]:
    return endpoint_error_body(exc)


async def run_json(
    connector: AppConnector, config: SourceConfig, payload: dict[str, Any]
) -> dict[str, Any]:
    """Run to completion; the ``{"data", "answer", "warnings"}`` body, or ``ApiError``."""
    captured: list[OpenAICompatError] = []
    token = _errors.set(captured)
    try:
        outcome = Outcome()
        async for message in connector.arun_model(config, payload, assemble=True):
            if message.record is not None:
                outcome.records.append(message.record.data)
            elif message.log is not None and message.log.level in ("error", "fatal"):
                outcome.error = _failure(message, captured)
            elif message.log is not None:
                outcome.warnings.append(message.log.message)
    finally:
        _errors.reset(token)
    if outcome.error is not None:
        status, body = _error_payload(outcome.error)
        if outcome.records:
            body["partial_data"] = outcome.records
        raise ApiError(status, **body)
    records = outcome.records
    data = records[:-1] if len(records) > 1 else records
    return {"data": data, "answer": records[-1] if records else None, "warnings": outcome.warnings}


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class _EventStream:
    """Turns connector messages into SSE bytes, one record behind (the last one is the answer)."""

    def __init__(self) -> None:
        self.held: dict[str, Any] | None = None
        self.count = 0

    def on_record(self, data: dict[str, Any]) -> Iterator[bytes]:
        if self.held is not None:
            yield _event("record", self.held)
        self.held = data
        self.count += 1

    def finish(self, error: OpenAICompatError | None) -> Iterator[bytes]:
        if self.held is not None:
            if self.count == 1 or error is not None:
                yield _event("record", self.held)
            if error is None:
                yield _event("answer", self.held)
        if error is not None:
            yield _event("error", {"error": _error_payload(error)[1]})
        records = self.count - 1 if self.count > 1 and error is None else self.count
        yield _event("done", {"ok": error is None, "records": records})


async def start_event_stream(
    connector: AppConnector, config: SourceConfig, payload: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The SSE body. A failure before the first record raises ``ApiError`` before any byte.

    The returned iterator has already received the first message, so the caller can answer
    with a proper JSON error instead of a stream when nothing was received.
    """
    captured: list[OpenAICompatError] = []
    token = _errors.set(captured)
    try:
        messages = connector.arun_model(config, payload, assemble=True)
        first = await anext(messages, None)
    finally:
        _errors.reset(token)
    if first is not None and first.log is not None and first.log.level in ("error", "fatal"):
        status, body = _error_payload(_failure(first, captured))
        raise ApiError(status, **body)
    return _events(first, messages, captured)


async def _events(
    first: ProtocolMessage | None,
    messages: AsyncIterator[ProtocolMessage],
    captured: list[OpenAICompatError],
) -> AsyncIterator[bytes]:
    stream = _EventStream()
    error: OpenAICompatError | None = None
    pending = first
    try:
        while pending is not None:
            if pending.record is not None:
                for chunk in stream.on_record(pending.record.data):
                    yield chunk
            elif pending.log is not None and pending.log.level in ("error", "fatal"):
                error = _failure(pending, captured)
            elif pending.log is not None:
                yield _event("warning", {"message": pending.log.message})
            token = _errors.set(captured)
            try:
                pending = await anext(messages, None)
            finally:
                _errors.reset(token)
        for chunk in stream.finish(error):
            yield chunk
    finally:
        await messages.aclose()  # type: ignore[attr-defined]
