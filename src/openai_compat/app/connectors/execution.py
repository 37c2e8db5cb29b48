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
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from ..._consume import Consumer, Outcome
from ..._json import MAX_DEPTH, parse_json_object
from ..._strict_json import encode_body
from ...config import SourceConfig
from ...connector import OpenAICompatibleConnector
from ...errors import ConfigurationError, OpenAICompatError
from ..http import ApiError, endpoint_error_body, surrogate_problems_of
from .services import ConnectorServices

__all__ = ["checked_payload", "execute_saved", "run_json", "start_event_stream"]

# A lone surrogate written as a JSON escape inside a string (``"\\ud800"``), as it shows
# in the encoded body: only then can a string of the payload hold one (see `http.rendering`).
_ESCAPED_SURROGATE = re.compile(rb"\\\\u[dD][89a-fA-F]")


def _encoded(payload: dict[str, Any]) -> bytes | None:
    try:
        return encode_body(payload)
    except (ValueError, TypeError, RecursionError):
        return None  # the checks say why; else the client, which refuses it in its words


def _parsed(raw: dict[str, Any] | str) -> dict[str, Any]:
    try:
        return parse_json_object(raw, field="payload")
    except ConfigurationError as exc:
        raise ApiError.from_config_error(exc, "payload") from None


def checked_payload(raw: dict[str, Any] | str) -> tuple[dict[str, Any], bytes | None]:
    """The payload of an ``execute_model`` body and the request body it encodes to, or the
    422 ``ApiError`` of a payload that cannot be sent (too deep, not a JSON object, a lone
    surrogate as is or as an escape in its text).

    Encoded once, and that encoding is the first check: the walks over the payload that
    word each problem run only when the body shows one could be there.
    """
    if isinstance(raw, dict):
        encoded = _encoded(raw)
        # Only a body with more than MAX_DEPTH brackets can nest more deeply.
        if encoded is None or encoded.count(b"[") + encoded.count(b"{") > MAX_DEPTH:
            _parsed(raw)  # the depth's own words
        payload = raw
    else:
        payload = _parsed(raw)
        encoded = _encoded(payload)
    if encoded is None or _ESCAPED_SURROGATE.search(encoded) is not None:
        unencodable = surrogate_problems_of(payload, "payload")
        if unencodable:
            raise ApiError.invalid(unencodable)
    return payload, encoded


@dataclass
class _Run:
    """One request in flight: its records as they arrive, and what they came to."""

    connector: OpenAICompatibleConnector
    config: SourceConfig
    payload: dict[str, Any]
    encoded: bytes | None = None
    outcome: Outcome | None = None

    async def data(self) -> AsyncGenerator[dict[str, Any]]:
        async with (
            self.connector.endpoint(self.config) as endpoint,
            endpoint.request(self.payload, encoded=self.encoded) as exchange,
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
    connector: OpenAICompatibleConnector,
    config: SourceConfig,
    payload: dict[str, Any],
    encoded: bytes | None = None,
) -> dict[str, Any]:
    """Run to completion; the ``{"data", "answer", "warnings"}`` body, or ``ApiError``.

    ``encoded``: ``payload`` already encoded (`checked_payload`), sent as is.
    """
    run = _Run(connector, config, payload, encoded)
    records: list[dict[str, Any]] = []
    try:
        async for item in run.data():
            records.append(item)
    except OpenAICompatError as exc:
        raise _api_error(exc, records) from None
    assert run.outcome is not None
    return {"data": records, "answer": run.outcome.answer, "warnings": run.outcome.warnings}


async def execute_saved(
    services: ConnectorServices, connector_id: int, raw: dict[str, Any] | str, accept: str
) -> Response:
    """The answer of ``execute_model``: the saved connector ``connector_id`` run on the
    payload ``raw`` (an object, or JSON text of one); server-sent events when ``accept``
    asks for them and the connector streams, else JSON. ``ApiError`` for a failure.

    The one body of the route, whichever way the request came in (`ExecuteLane` or
    FastAPI's route).
    """
    config = await services.usable_saved(connector_id)
    payload, encoded = checked_payload(raw)
    if "text/event-stream" in accept and config.is_stream:
        events = await start_event_stream(services.connector, config, payload, encoded)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return JSONResponse(await run_json(services.connector, config, payload, encoded))


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def start_event_stream(
    connector: OpenAICompatibleConnector,
    config: SourceConfig,
    payload: dict[str, Any],
    encoded: bytes | None = None,
) -> AsyncIterator[bytes]:
    """The SSE body. A failure before the first record raises ``ApiError`` before any byte.

    The first record is awaited here, so the caller can answer with a proper JSON error
    instead of a stream when nothing was received. ``encoded``: as `run_json`'s.
    """
    run = _Run(connector, config, payload, encoded)
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
