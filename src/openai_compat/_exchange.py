"""``Exchange``: one request's answer, decoded into the dicts it holds.

A JSON answer holds one dict; a streamed (SSE) answer one dict per chunk. The exchange also
tracks how the answer ended (``[DONE]``, the end its dialect names, neither), the one place
that does: each chunk is shown to the dialect with its SSE event type. What the dicts come to
(an assembled answer, warnings) is `_consume`'s job.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from ._client import Opened
from ._error_builder import ErrorBuilder
from ._transports import TransportFailure, TransportResponse
from .apis import Dialect
from .errors import StreamError
from .sse import SSEDecoder
from .stream import DONE, chunks_from_event, error_from_chunk

__all__ = ["Exchange"]

_EXCERPT_BYTES = 512
# How an event stream's lines start (a comment, or a field): a body that starts so but held
# no chunk is an empty stream, not some other kind of answer.
_SSE_FIELDS = (b":", b"data:", b"event:", b"id:", b"retry:")
_DONE = DONE.encode()
# msgspec parses a chunk's bytes into the same dicts as ``json.loads`` (integers of any size
# included) in a third of the time; what it refuses (NaN, lone surrogates, invalid UTF-8)
# goes the careful way, through ``json.loads``, so every answer decodes as it always did.
_fast_loads = msgspec.json.Decoder().decode
_NOT_FAST: Any = object()


class Exchange:
    """One request's answer, iterated as dicts. Use via ``Endpoint.request``.

    After iteration: ``streamed`` tells whether the answer was SSE, ``chunks`` how many dicts
    it held, ``done`` whether ``[DONE]`` came, ``finished`` whether a chunk the dialect calls
    final (or a whole JSON answer) came, and ``truncated`` whether a stream ended with neither
    (it may have been cut off). ``answer`` is the JSON answer of an answer that was not streamed.
    """

    __slots__ = (
        "_body",
        "_errors",
        "_response",
        "answer",
        "attempts",
        "chunks",
        "dialect",
        "done",
        "finished",
        "request_id",
        "status",
        "streamed",
        "trace",
    )

    def __init__(self, opened: Opened, errors: ErrorBuilder, dialect: Dialect) -> None:
        self._errors = errors
        self.dialect = dialect
        self._response: TransportResponse = opened.response
        self._body: bytes | None = opened.body
        self.attempts: int = opened.attempts
        #: The request's span (None: not traced); ended by ``Endpoint`` once the answer is read.
        self.trace = opened.trace
        self.streamed = opened.body is None
        self.status = self._response.status_code
        self.request_id: str | None = errors.request_id(self._response.headers)
        self.answer: dict[str, Any] | None = None
        self.chunks = 0
        self.done = False
        self.finished = False

    def whole_answer(self) -> dict[str, Any] | None:
        """The JSON answer of a body read whole, as iterating would give it; None when
        the body is to be iterated (SSE, or JSON lines, sent without the stream type)."""
        body = self._body
        return None if body is None else self._whole(body)

    @property
    def truncated(self) -> bool:
        """True when a stream ended with neither ``[DONE]`` nor a final chunk."""
        return self.streamed and not (self.done or self.finished)

    async def aclose(self) -> None:
        """Release the connection (``Endpoint.request`` does it on leaving its block)."""
        await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        body = self._body
        if body is None:
            return self._decode(self._stream())
        # Already found to be no JSON answer (`whole_answer`): not decoded again.
        answer = None if self.streamed else self._whole(body)
        if answer is None:
            return self._decode(_one(body))
        return _Single(answer)

    def _whole(self, body: bytes) -> dict[str, Any] | None:
        """The JSON answer of a body read whole, or None when the body is SSE or JSON
        lines sent without the stream content type (``streamed`` is then set)."""
        headers = self._response.headers
        try:
            # Most answers: msgspec, as chunks are; what it refuses goes through json.loads.
            data = _fast_loads(body)
        except (ValueError, RecursionError):
            data = _NOT_FAST
        try:
            if data is _NOT_FAST:
                data = json.loads(body)
        except ValueError:
            text = body.lstrip()
            if text.startswith((b"data:", b"{", b":", b"event:")):
                self.streamed = True
                return None
            raise self._errors.not_json(
                self.status, headers, body, attempts=self.attempts
            ) from None
        if not isinstance(data, dict):
            raise self._errors.not_object(self.status, headers, data, body, attempts=self.attempts)
        err = data.get("error")
        if err is not None and err is not False:
            raise self._errors.error_in_answer(self.status, headers, data, attempts=self.attempts)
        self.chunks = 1
        self.finished = True
        self.answer = data
        return data

    async def _stream(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._response.aiter_bytes():
                yield piece
        except TransportFailure as failure:
            raise self._errors.failure(
                failure, f"during the stream, after {self.chunks} chunk(s)", attempts=self.attempts
            ) from None

    async def _decode(self, source: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
        # The hot path of streaming: chunks are yielded from here straight to the caller
        # (no generator in between), and a plain chunk is parsed and checked inline;
        # anything unusual goes through ``_chunks``.
        decoder = SSEDecoder()
        feed = decoder.feed_raw
        head = bytearray()
        loads = _fast_loads
        finishes = self.dialect.finishes
        # Only a dialect with errors of its own shape (Responses' "error" and
        # "response.failed" events) looks at each chunk for one.
        own_errors = type(self.dialect).stream_error is not Dialect.stream_error
        stream_error = self.dialect.stream_error
        try:
            async for piece in source:
                if len(head) < _EXCERPT_BYTES:
                    head += piece[: _EXCERPT_BYTES - len(head)]
                for data, event, _ in feed(piece):
                    if data == _DONE:
                        self.done = True
                        break
                    try:
                        chunk = loads(data)
                    except (ValueError, RecursionError):
                        chunk = None
                    if type(chunk) is dict:
                        err = chunk.get("error")
                        if own_errors and (err is None or err is False):
                            err = stream_error(chunk, event)
                            if err is not None:
                                raise self._errors.in_stream(
                                    _as_error(err, chunk), attempts=self.attempts
                                )
                        if err is None or err is False:
                            self.chunks += 1
                            if not self.finished:
                                self.finished = finishes(chunk, event)
                            yield chunk
                            continue
                    for chunk in self._chunks(data.decode("utf-8", "replace"), event):
                        yield chunk
                if self.done:
                    break
            else:
                for data, event, _ in decoder.close_raw():
                    if data == _DONE:
                        self.done = True
                        break
                    for chunk in self._chunks(data.decode("utf-8", "replace"), event):
                        yield chunk
        finally:
            # Release the connection as soon as the stream ends ([DONE], error, or the
            # caller stopping early), not only when the request context exits.
            await self._response.aclose()
        if self.chunks == 0:
            text = bytes(head).lstrip()
            if text and not self.done and not text.startswith(_SSE_FIELDS):
                # Bytes came, but no event: not a stream at all (an HTML page, plain text).
                raise self._errors.not_json(
                    self.status, self._response.headers, bytes(head), attempts=self.attempts
                )
            raise self._errors.empty_stream(attempts=self.attempts)

    def _chunks(self, data: str, event: str) -> list[dict[str, Any]]:
        out = []
        try:
            for chunk in chunks_from_event(data):
                err = error_from_chunk(chunk)
                if err is not None:
                    raise err
                own = self.dialect.stream_error(chunk, event)
                if own is not None:
                    raise _as_error(own, chunk)
                self.chunks += 1
                if not self.finished:
                    self.finished = self.dialect.finishes(chunk, event)
                out.append(chunk)
        except StreamError as err:
            # The pure decoder says what is wrong; the error raised is redacted and counted.
            raise self._errors.in_stream(err, attempts=self.attempts) from None
        return out


def _as_error(error: dict[str, Any], chunk: dict[str, Any]) -> StreamError:
    """The error of a dialect's own error event, worded as an ``{"error": ...}`` chunk's."""
    found = error_from_chunk({"error": error})
    assert found is not None
    found.body = chunk
    return found


class _Single:
    """Iterates one dict. A plain iterator rather than an async generator: every
    non-streamed request makes one, and an async generator costs more to create and end."""

    __slots__ = ("_item",)

    def __init__(self, item: dict[str, Any]) -> None:
        self._item: dict[str, Any] | None = item

    def __aiter__(self) -> _Single:
        return self

    async def __anext__(self) -> dict[str, Any]:
        item = self._item
        if item is None:
            raise StopAsyncIteration
        self._item = None
        return item


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body
