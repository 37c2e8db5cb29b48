"""``Endpoint``: a configuration bound to an HTTP client, the core every door uses.

It sends one payload and yields what came back as plain dicts: the response JSON for a
JSON answer, or one dict per chunk of a streamed (SSE) answer. The connector wraps these
in protocol messages; batch runs use ``complete`` for the assembled answer.

>>> async def demo(url: str) -> None:
...     async with Endpoint({"url": url, "api_key": ""}) as endpoint:
...         answer = await endpoint.complete({"model": "m", "messages": []})
...         print(answer.response["choices"][0]["message"]["content"])
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from .config import SourceConfig
from .errors import EndpointError, OpenAICompatError, StreamError, redact, redact_data
from .response_errors import describe_body, error_from_body
from .retries import RetryPolicy
from .sse import SSEDecoder
from .stream import DONE, ChunkAssembler, chunks_from_event, error_from_chunk
from .transport import ClientFactory, Opened, Transport
from .wire import Wire, WireResponse

__all__ = ["Completion", "Endpoint", "Exchange"]

_EXCERPT_BYTES = 512


def _is_json_type(content_type: str) -> bool:
    media_type = content_type.split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class Exchange:
    """One request's answer, iterated as dicts. Use via ``Endpoint.request``.

    After iteration: ``streamed`` tells whether the answer was SSE, ``finished`` whether
    a ``[DONE]`` or a ``finish_reason`` was seen, and ``truncated`` whether a stream ended
    with neither (it may have been cut off).
    """

    def __init__(self, transport: Transport, opened: Opened, streamed: bool) -> None:
        self._transport = transport
        self._response: WireResponse = opened.response
        self._body: bytes | None = opened.body
        self.attempts: int = opened.attempts
        self.streamed = streamed
        self.status = self._response.status_code
        self.request_id: str | None = self._response.headers.get("x-request-id")
        self.chunks = 0
        self.done = False
        self.finished = False

    @property
    def truncated(self) -> bool:
        """True when a stream ended with neither ``[DONE]`` nor any ``finish_reason``."""
        return self.streamed and not (self.done or self.finished)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if self._body is not None:
            return _WholeBody(self, self._body)
        return self._decode(self._from_stream())

    def _whole_body(self, body: bytes) -> dict[str, Any] | None:
        """The JSON answer of a body read whole, or None when the body is SSE or JSON
        lines sent without the stream content type (``streamed`` is then set)."""
        try:
            data = json.loads(body)
        except ValueError:
            text = body.lstrip()
            if text.startswith((b"data:", b"{", b":", b"event:")):
                self.streamed = True
                return None
            raise self._not_json(body) from None
        if isinstance(data, dict):
            err = data.get("error")
            if err is not None and err is not False:
                raise error_from_body(
                    self.status,
                    self._response.headers,
                    data,
                    secrets=self._transport.config.secrets,
                    parsed=True,
                )
        else:
            raise EndpointError(
                redact(
                    f"HTTP {self.status}: the endpoint answered with a JSON "
                    f"{type(data).__name__}, not an object: {describe_body(body)}",
                    self._transport.config.secrets,
                ),
                status=self.status,
                request_id=self.request_id,
            )
        self.chunks = 1
        self.finished = True
        return data

    def _not_json(self, body: bytes) -> EndpointError:
        what = describe_body(body, self._response.headers.get("content-type", ""))
        return EndpointError(
            redact(
                f"HTTP {self.status}: the endpoint answered with {what}, not JSON. This is "
                "usually a wrong route or a gateway/login page: check that the URL is the full "
                "chat-completions URL" + _hint_suffix(self._transport.config),
                self._transport.config.secrets,
            ),
            status=self.status,
            request_id=self.request_id,
        )

    async def _from_stream(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._response.aiter_bytes():
                yield piece
        except httpx.HTTPError as exc:
            raise self._transport.error(
                exc, f"during the stream, after {self.chunks} chunk(s)"
            ) from None

    async def _decode(self, source: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
        # The hot path of streaming: chunks are yielded from here straight to the caller
        # (no generator in between), and a plain chunk is parsed and checked inline;
        # anything unusual goes through ``_chunks``.
        decoder = SSEDecoder()
        head = bytearray()
        loads = json.loads
        try:
            async for piece in source:
                if len(head) < _EXCERPT_BYTES:
                    head += piece[: _EXCERPT_BYTES - len(head)]
                for event in decoder.feed(piece):
                    data = event.data
                    if data == DONE:
                        self.done = True
                        return
                    try:
                        chunk = loads(data)
                    except ValueError:
                        chunk = None
                    if type(chunk) is dict:
                        err = chunk.get("error")
                        if err is None or err is False:
                            self.chunks += 1
                            if not self.finished:
                                self._note_finish(chunk)
                            yield chunk
                            continue
                    for chunk in self._chunks(data):
                        yield chunk
            for event in decoder.close():
                if event.data == DONE:
                    self.done = True
                    return
                for chunk in self._chunks(event.data):
                    yield chunk
        finally:
            # Release the connection as soon as the stream ends ([DONE], error, or the
            # caller stopping early), not only when the request context exits.
            await self._response.aclose()
        if self.chunks == 0 and head.strip():
            # Bytes came, but no event: not a stream at all (an HTML page, plain text).
            raise self._not_json(bytes(head))

    def _note_finish(self, chunk: dict[str, Any]) -> None:
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    self.finished = True

    def _chunks(self, data: str) -> list[dict[str, Any]]:
        out = []
        for chunk in chunks_from_event(data):
            err = error_from_chunk(chunk)
            if err is not None:
                secrets = self._transport.config.secrets
                raise StreamError(
                    redact(err.message, secrets), body=redact_data(err.body, secrets), code=err.code
                )
            self.chunks += 1
            if not self.finished:
                self._note_finish(chunk)
            out.append(chunk)
        return out


class _Request(AbstractAsyncContextManager[Exchange]):
    """What ``Endpoint.request`` returns: sends on enter, releases the response on exit.

    A small class rather than an ``@asynccontextmanager`` generator, because it runs once
    per request and batch runs send many: the per-request cost is measured by
    ``bench/request_overhead.py``.
    """

    __slots__ = ("_body", "_opened", "_transport", "_wants_stream")

    def __init__(self, transport: Transport, body: dict[str, Any]) -> None:
        self._transport = transport
        self._body = body
        self._wants_stream = body.get("stream") is True
        self._opened: Opened | None = None

    async def __aenter__(self) -> Exchange:
        opened = await self._transport.open(self._body, read_whole=self._read_whole)
        self._opened = opened
        return Exchange(self._transport, opened, streamed=opened.body is None)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._opened is not None:
            await self._opened.response.aclose()

    def _read_whole(self, response: WireResponse) -> bool:
        """Whether the answer is read whole (inside the retry loop) or streamed."""
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" in content_type:
            return False
        if "html" in content_type:
            return True
        # A streaming request answered without the SSE type is still read incrementally,
        # so chunks that arrive before a failure are not lost.
        return _is_json_type(content_type) or not self._wants_stream


class _WholeBody:
    """Iterates an answer read whole: its one JSON object, or the chunks of an SSE body
    sent without the stream content type.

    A plain iterator rather than an async generator: every non-streamed request makes
    one, and an async generator costs noticeably more to create and finalise.
    """

    __slots__ = ("_body", "_exchange", "_inner", "_started")

    def __init__(self, exchange: Exchange, body: bytes) -> None:
        self._exchange = exchange
        self._body = body
        self._inner: AsyncIterator[dict[str, Any]] | None = None
        self._started = False

    def __aiter__(self) -> _WholeBody:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._inner is not None:
            return await anext(self._inner)
        if self._started:
            raise StopAsyncIteration
        self._started = True
        data = self._exchange._whole_body(self._body)
        if data is None:
            self._inner = self._exchange._decode(_one(self._body))
            return await anext(self._inner)
        return data


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _hint_suffix(config: SourceConfig) -> str:
    problem = config.url_problem()
    return f" ({problem})" if problem else ""


@dataclass(slots=True)
class Completion:
    """A finished request: the answer as one ``chat.completion``-shaped dict.

    For a streamed answer, ``response`` is the assembled message and ``chunks`` holds the
    raw chunks when they were kept.
    """

    response: dict[str, Any]
    streamed: bool
    attempts: int
    latency_s: float
    truncated: bool = False
    request_id: str | None = None
    chunks: list[dict[str, Any]] | None = None

    @property
    def usage(self) -> dict[str, Any] | None:
        """The token usage the server reported, if any."""
        usage = self.response.get("usage")
        return usage if isinstance(usage, dict) else None


class Endpoint:
    """A configured endpoint: send payloads, get dicts back.

    ``config`` is a ``SourceConfig`` or anything ``SourceConfig.parse`` accepts. Share an
    ``httpx.AsyncClient`` (or any `Wire`) across endpoints with ``client=``; the endpoint
    closes only a client it created. ``client_factory`` makes the client of a configuration
    whose TLS or proxy options cannot use a shared one.
    """

    def __init__(
        self,
        config: SourceConfig | dict[str, Any] | str,
        *,
        client: httpx.AsyncClient | Wire | None = None,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.config = SourceConfig.parse(config)
        self.transport = Transport(
            self.config,
            client=client,
            retry=retry,
            on_retry=on_retry,
            client_factory=client_factory,
        )

    def __repr__(self) -> str:
        return f"Endpoint(url={self.config.url!r}, is_stream={self.config.is_stream})"

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the HTTP client (if this endpoint made it)."""
        await self.transport.aclose()

    def prepare(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The body actually sent: ``"stream": true`` is set when streaming is on."""
        if self.config.is_stream and payload.get("stream") is not True:
            return {**payload, "stream": True}
        return payload

    def request(
        self, payload: dict[str, Any], *, as_is: bool = False
    ) -> AbstractAsyncContextManager[Exchange]:
        """Send ``payload`` (retrying per the policy) and yield the ``Exchange`` to iterate.

        Use as ``async with endpoint.request(payload) as exchange``; leaving the block
        releases the connection. ``as_is`` sends the payload unchanged (the connection
        check does).
        """
        return _Request(self.transport, payload if as_is else self.prepare(payload))

    async def complete(self, payload: dict[str, Any], *, keep_chunks: bool = False) -> Completion:
        """Send ``payload`` and return the whole answer (streamed answers are assembled)."""
        started = time.perf_counter()
        async with self.request(payload) as exchange:
            assembler: ChunkAssembler | None = None
            kept: list[dict[str, Any]] | None = [] if keep_chunks else None
            response: dict[str, Any] | None = None
            try:
                async for data in exchange:
                    if exchange.streamed:
                        if assembler is None:
                            assembler = ChunkAssembler()
                        assembler.add(data)
                        if kept is not None:
                            kept.append(data)
                    else:
                        response = data
            except OpenAICompatError as exc:
                # The answer failed after the request went out: say how many were made.
                exc.attempts = exchange.attempts
                raise
            if assembler is not None:
                response = assembler.result()
            if response is None:
                raise StreamError("the endpoint sent no answer")
            return Completion(
                response=response,
                streamed=exchange.streamed,
                attempts=exchange.attempts,
                latency_s=time.perf_counter() - started,
                truncated=exchange.truncated,
                request_id=exchange.request_id,
                chunks=kept,
            )
