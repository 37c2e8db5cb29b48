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

import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ._client import Client, OnRetry, Opened
from ._consume import Consumer
from ._exchange import Exchange
from ._transports import ClientFactory, Sendable, TransportResponse
from .config import SourceConfig
from .errors import ConfigurationError, StreamError
from .observability import RequestSpan
from .retries import RetryPolicy
from .structured import DEFAULT_REASKS, Structured

__all__ = ["Completion", "Endpoint", "Exchange"]


def _is_json_type(content_type: str) -> bool:
    media_type = content_type.split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _read_whole(response: TransportResponse, wants_stream: bool) -> bool:
    """Whether the answer is read whole (inside the retry loop) or streamed."""
    content_type = response.headers.get("content-type", "")
    if "text/event-stream" in content_type:
        return False
    if "html" in content_type:
        return True
    # A streaming request answered without the SSE type is still read incrementally,
    # so chunks that arrive before a failure are not lost.
    return not wants_stream or _is_json_type(content_type)


def _read_whole_answer(response: TransportResponse) -> bool:
    return _read_whole(response, False)


def _read_whole_stream(response: TransportResponse) -> bool:
    return _read_whole(response, True)


def _with_stream(encoded: bytes | None, payload: dict[str, Any]) -> bytes | None:
    """The body of ``{**payload, "stream": True}`` from ``payload``'s body, when the key is
    new (it then goes last, as in the dict); None (encode it again) otherwise."""
    if encoded is None or not payload or "stream" in payload:
        return None
    return encoded[:-1] + b', "stream": true}'


class _Request(AbstractAsyncContextManager[Exchange]):
    """What ``Endpoint.request`` returns: sends on enter, releases the response on exit.

    A small class rather than an ``@asynccontextmanager`` generator, because it runs once
    per request and batch runs send many: the per-request cost is measured by
    ``bench/request_overhead.py``.
    """

    __slots__ = ("_body", "_client", "_encoded", "_exchange")

    def __init__(self, client: Client, body: dict[str, Any], encoded: bytes | None) -> None:
        self._client = client
        self._body = body
        self._encoded = encoded
        self._exchange: Exchange | None = None

    async def __aenter__(self) -> Exchange:
        self._exchange = await _open(self._client, self._body, self._encoded)
        return self._exchange

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exchange = self._exchange
        if exchange is not None:
            await exchange.aclose()
            trace = exchange.trace
            if trace is not None:
                if exc is None:
                    trace.finish(exchange.answer)
                else:
                    trace.fail(exc)


async def _open(client: Client, body: dict[str, Any], encoded: bytes | None) -> Exchange:
    """Send ``body``: the exchange of its first 2xx answer (`_Request` and `complete`)."""
    read_whole = _read_whole_stream if body.get("stream") is True else _read_whole_answer
    opened: Opened = await client.open(body, read_whole=read_whole, encoded=encoded)
    return Exchange(opened, client.errors, client.dialect)


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
    warnings: list[str] = field(default_factory=list)

    @property
    def usage(self) -> dict[str, Any] | None:
        """The token usage the server reported, if any."""
        usage = self.response.get("usage")
        return usage if isinstance(usage, dict) else None


class Endpoint:
    """A configured endpoint: send payloads, get dicts back.

    ``config`` is a ``SourceConfig`` or anything ``SourceConfig.parse`` accepts. Share an
    ``httpx.AsyncClient`` (or any transport) across endpoints with ``client=``; the endpoint
    closes only a client it created. ``client_factory`` makes the client of a configuration
    whose TLS or proxy options cannot use a shared one.
    """

    def __init__(
        self,
        config: SourceConfig | dict[str, Any] | str,
        *,
        client: Sendable | None = None,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.config = SourceConfig.parse(config)
        self.client = Client(
            self.config,
            transport=client,
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
        await self.client.aclose()

    def prepare(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The body actually sent: ``"stream": true`` is set when streaming is on (and the
        API streams: embeddings never do)."""
        if (
            self.config.is_stream
            and payload.get("stream") is not True
            and self.client.dialect.streams
        ):
            return {**payload, "stream": True}
        return payload

    def request(
        self, payload: dict[str, Any], *, as_is: bool = False, encoded: bytes | None = None
    ) -> AbstractAsyncContextManager[Exchange]:
        """Send ``payload`` (retrying per the policy) and yield the ``Exchange`` to iterate.

        Use as ``async with endpoint.request(payload) as exchange``; leaving the block
        releases the connection. ``as_is`` sends the payload unchanged (the connection
        check does). ``encoded`` is ``payload`` already encoded as a request body
        (`PayloadBuilder.build_body` gives it), so it is not encoded again.
        """
        if as_is:
            return _Request(self.client, payload, encoded)
        body = self.prepare(payload)
        if body is not payload:
            encoded = _with_stream(encoded, payload)
        return _Request(self.client, body, encoded)

    async def complete(
        self, payload: dict[str, Any], *, keep_chunks: bool = False, encoded: bytes | None = None
    ) -> Completion:
        """Send ``payload`` and return the whole answer (streamed answers are assembled).

        ``encoded``: as `request`'s.
        """
        started = time.perf_counter()
        body = self.prepare(payload)
        if body is not payload:
            encoded = _with_stream(encoded, payload)
        # `_open`, inlined (a coroutine less per request).
        read_whole = _read_whole_stream if body.get("stream") is True else _read_whole_answer
        opened = await self.client.open(body, read_whole=read_whole, encoded=encoded)
        trace = opened.trace
        # A try block costs nothing until something is raised: the untraced path pays nothing.
        try:
            exchange = Exchange(opened, self.client.errors, self.client.dialect)
            if opened.body is not None:
                # A JSON answer (most batch rows), read and released inside the retry loop:
                # its answer is what the consumer below makes of it, without its iterators.
                try:
                    answer = exchange.whole_answer()
                except BaseException:
                    await exchange.aclose()
                    raise
                if answer is not None:
                    return _finished(
                        trace,
                        Completion(
                            response=self.client.dialect.finish_answer(answer),
                            streamed=False,
                            attempts=exchange.attempts,
                            latency_s=time.perf_counter() - started,
                            request_id=exchange.request_id,
                            chunks=[] if keep_chunks else None,
                        ),
                    )
            try:
                consumer = Consumer(exchange)
                kept: list[dict[str, Any]] | None = [] if keep_chunks else None
                async for data in consumer:
                    if kept is not None and exchange.streamed:
                        kept.append(data)
                outcome = consumer.outcome()
            finally:
                await exchange.aclose()
            if outcome.answer is None:
                raise StreamError("the endpoint sent no answer", attempts=outcome.attempts)
        except BaseException as exc:
            if trace is not None:
                trace.fail(exc)
            raise
        return _finished(
            trace,
            Completion(
                response=outcome.answer,
                streamed=outcome.streamed,
                attempts=outcome.attempts,
                latency_s=time.perf_counter() - started,
                truncated=outcome.truncated,
                request_id=outcome.request_id,
                chunks=kept,
                warnings=outcome.warnings,
            ),
        )

    async def parse(
        self,
        payload: dict[str, Any],
        *,
        schema: Any,
        mode: str = "auto",
        reasks: int = DEFAULT_REASKS,
    ) -> Any:
        """Send ``payload`` asking for an answer valid against ``schema``; return its value.

        ``schema`` is a JSON Schema object, OpenAI's ``{"name", "schema", "strict"}`` wrapper,
        a pydantic model class (its instance is returned) or a `Structured` (whose mode,
        once ``auto`` chose it, holds for its later calls). An answer that does not validate
        is asked again up to ``reasks`` times with its validation errors; then
        `StructuredOutputError` says what was wrong and keeps the last answer.
        """
        structured = _structured_for(self.config, schema, mode, reasks)
        return await structured.parse(self.complete, payload)

    def parse_sync(
        self,
        payload: dict[str, Any],
        *,
        schema: Any,
        mode: str = "auto",
        reasks: int = DEFAULT_REASKS,
    ) -> Any:
        """`parse` from sync code (on an HTTP client of its own, closed when it returns)."""
        from ._sync import run_sync

        structured = _structured_for(self.config, schema, mode, reasks)
        return run_sync(_parse_once(self.config, structured, payload))


def _structured_for(config: SourceConfig, schema: Any, mode: str, reasks: int) -> Structured:
    """``schema`` as the `Structured` of a request to ``config``'s API (a `Structured` made
    for another API would put the schema where this one does not read it: refused)."""
    api = config.dialect.name
    if not isinstance(schema, Structured):
        return Structured(schema, mode=mode, reasks=reasks, api=api)
    if schema.api != api:
        raise ConfigurationError(
            f"this Structured was made for the {schema.api} API, and the URL is a "
            f"{config.dialect.label} URL: make it with api={api!r}",
            field="schema",
        )
    return schema


async def _parse_once(config: SourceConfig, structured: Structured, payload: dict[str, Any]) -> Any:
    async with Endpoint(config) as endpoint:
        return await structured.parse(endpoint.complete, payload)


def _finished(trace: RequestSpan | None, completion: Completion) -> Completion:
    """``completion``, its request's span ended with its answer (when traced)."""
    if trace is not None:
        trace.finish(completion.response)
    return completion
