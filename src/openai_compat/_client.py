"""The client layer: one configuration's requests, from a payload to a 2xx response.

It owns the headers and auth, the retry loop, ``Retry-After`` and the deadline, and builds
every error once, complete (through `ErrorBuilder`). It hands back a 2xx response whose body
is either already read (JSON answers, so a slow body is retried too) or left to be streamed
(SSE), because once a streamed record is out, a retry would duplicate it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._error_builder import ErrorBuilder
from ._strict_json import encode_body, json_problem
from ._transports import (
    AsyncTransport,
    ClientFactory,
    FailureKind,
    GetTransport,
    Sendable,
    TransportFailure,
    TransportResponse,
    as_transport,
    default_client_factory,
    default_limits,
)
from .config import SourceConfig
from .errors import ConfigurationError, EndpointError, OpenAICompatError
from .observability import RequestObserver, RequestSpan
from .retries import RetryPolicy, is_retryable

__all__ = ["Client", "OnRetry", "Opened"]

OnRetry = Callable[[int, BaseException, float], None]
"""``on_retry(retry_number, error, wait_seconds)``, called before each wait."""

_MAX_ERROR_BODY = 64 * 1024
_USER_AGENT = "openai-compat/0.1"
_log = logging.getLogger("openai_compat.client")
_warned_unverified: set[str] = set()


class _DeadlineResponse:
    """A streamed response whose body fails with a DEADLINE failure once ``deadline_at``
    passes: the per-read timeout bounds each wait for data, this bounds the whole answer."""

    __slots__ = ("_deadline_at", "_inner")

    def __init__(self, inner: TransportResponse, deadline_at: float) -> None:
        self._inner = inner
        self._deadline_at = deadline_at

    @property
    def status_code(self) -> int:
        return self._inner.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._inner.headers

    async def aread(self) -> bytes:
        return b"".join([piece async for piece in self.aiter_bytes()])

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        pieces = self._inner.aiter_bytes().__aiter__()
        while True:
            remaining = self._deadline_at - loop.time()
            if remaining <= 0:
                raise TransportFailure(FailureKind.DEADLINE, "deadline passed")
            try:
                async with asyncio.timeout(remaining):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise TransportFailure(FailureKind.DEADLINE, "deadline passed") from None
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(slots=True)
class Opened:
    """A successful (2xx) response; ``body`` is set when it was read whole."""

    response: TransportResponse
    attempts: int
    body: bytes | None
    #: The request's span, ended by whoever reads the answer to its end (None: not traced).
    trace: RequestSpan | None = None


ReadWhole = Callable[[TransportResponse], bool]


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as strict JSON (RFC 8259) in UTF-8, or a ``ConfigurationError``.

    The doors check what they parse, but a payload handed over as a dict (Python callers)
    reaches this point unchecked: nothing that cannot be sent is sent.
    """
    try:
        return encode_body(body)
    except (ValueError, TypeError, RecursionError):  # NaN, a lone surrogate, a date, a cycle
        problem = json_problem(body) or "refers to itself (a circular reference)"
    raise ConfigurationError(f"cannot be sent as JSON: {problem}", field="payload")


class Client:
    """Sends chat-completion requests for one configuration.

    ``transport`` (an `AsyncTransport`, or an ``httpx.AsyncClient`` to send through) shares
    one connection pool between many clients; without one, the client makes and owns one.
    A configuration with TLS or proxy options always gets its own, from ``client_factory``.
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        transport: Sendable | None = None,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.config = config
        self.dialect = config.dialect
        self.errors = ErrorBuilder(config)
        options = config.advanced
        self.retry = retry or RetryPolicy()
        if options.max_retries is not None:
            self.retry = dataclasses.replace(self.retry, max_retries=options.max_retries)
        self.on_retry = on_retry
        # TLS and proxy settings belong to the HTTP client, so a configuration that has them
        # gets its own client even when a shared one is offered.
        self._owns_transport = transport is None or options.needs_own_client
        if self._owns_transport:
            transport = self._own_client(client_factory or default_client_factory)
        assert transport is not None
        self._transport: AsyncTransport = as_transport(transport)
        self._url = config.url
        self._timeout = config.timeout
        self._headers = self._build_headers()
        self._observer = RequestObserver(self._url, self.dialect)

    def _own_client(self, factory: ClientFactory) -> Sendable:
        options = self.config.advanced
        host = urlsplit(self.config.url).netloc
        if not options.verify_tls and host not in _warned_unverified:
            # Once per host and process: a batch makes one client per run, not per row, but
            # a server may make many.
            _warned_unverified.add(host)
            _log.warning(
                "TLS certificate verification is OFF for %s (advanced.verify_tls is false): "
                "anyone on the network path can read and change the traffic, API key included. "
                "Give the server's CA certificate in advanced.ca_bundle instead.",
                host,
            )
        # An explicit advanced.proxy wins over the proxy environment variables.
        return factory(
            verify=options.ssl_context(), proxy=options.proxy_url, limits=default_limits()
        )

    def _build_headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        headers.update(self.config.advanced.request_headers())
        key_header = self.config.advanced.key_header(self.config.api_key.get_secret_value())
        if key_header is not None:
            headers[key_header[0]] = key_header[1]
        return headers

    def __repr__(self) -> str:
        return f"Client(url={self.config.url!r})"

    async def aclose(self) -> None:
        """Close the transport if this client made it."""
        if self._owns_transport:
            await self._transport.aclose()

    async def get(self, url: str) -> bytes:
        """GET ``url`` once (no retry) with this configuration's headers (its key, its extra
        headers), through this client's transport: the body of a 2xx answer.

        Raises ``EndpointError`` for a non-2xx answer, ``TransportError`` when there was
        none, ``ConfigurationError`` when the transport sends POSTs only (a shared pool:
        make the client with a ``client_factory`` instead).
        """
        transport = self._transport
        if not isinstance(transport, GetTransport):
            raise ConfigurationError(
                "this client's transport sends POSTs only: make it with a client_factory "
                "(or none) to send a GET"
            )
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        try:
            response = await transport.get(url, headers, self._timeout)
        except TransportFailure as failure:
            raise self.errors.failure(failure, attempts=1) from None
        try:
            if not 200 <= response.status_code < 300:
                raise await self._error_answer(response, False, 1)
            try:
                return await response.aread()
            except TransportFailure as failure:
                raise self.errors.failure(failure, "while reading the answer", attempts=1) from None
        finally:
            await response.aclose()

    async def open(
        self, body: dict[str, Any], *, read_whole: ReadWhole, encoded: bytes | None = None
    ) -> Opened:
        """POST ``body``; retry per the policy; return the first 2xx response.

        ``read_whole(response)`` decides whether the body is read inside the retry loop.
        ``encoded`` is ``body`` already encoded (`_strict_json.encode_body`), sent as is.
        Raises ``EndpointError`` for a non-2xx answer, ``TransportError`` when there was none.
        """
        content = _encode(body) if encoded is None else encoded
        trace = self._observer.start(body, self._headers)
        has_model = "model" in body
        deadline = self.config.advanced.deadline
        deadline_at = None if deadline is None else asyncio.get_running_loop().time() + deadline
        # The retry loop: attempt; on a retryable error, wait and attempt again. (A try
        # block costs nothing until something is raised: the untraced path pays nothing.)
        attempt = 1
        try:
            while True:
                try:
                    if deadline_at is None:
                        # No timeout context at all: even an empty one costs two coroutines
                        # per attempt, and batch runs send every row through here.
                        opened = await self._attempt(content, has_model, read_whole, attempt, trace)
                    else:
                        async with asyncio.timeout_at(deadline_at):
                            opened = await self._attempt(
                                content, has_model, read_whole, attempt, trace
                            )
                except TimeoutError:  # the deadline passed, while sending or waiting to retry
                    raise self.errors.deadline(
                        f"after {attempt} attempt(s)", attempts=attempt
                    ) from None
                if opened is not None:
                    break
                attempt += 1
        except BaseException as exc:
            if trace is not None:
                trace.fail(exc)
            raise
        if deadline_at is not None and opened.body is None:
            opened.response = _DeadlineResponse(opened.response, deadline_at)
        opened.trace = trace
        return opened

    async def _attempt(
        self,
        content: bytes,
        has_model: bool,
        read_whole: ReadWhole,
        attempt: int,
        trace: RequestSpan | None,
    ) -> Opened | None:
        """One attempt; None once it failed in a way worth retrying and the wait is over."""
        try:
            headers = self._headers if trace is None else trace.headers
            return await self._send(content, has_model, read_whole, attempt, headers)
        except OpenAICompatError as exc:
            if attempt > self.retry.max_retries or not is_retryable(exc):
                raise
            wait = self.retry.delay(attempt, exc)
            if self.on_retry is not None:
                self.on_retry(attempt, exc, wait)
            if trace is not None:
                trace.retry(attempt, exc, wait)
            await asyncio.sleep(wait)
            return None

    async def _send(
        self,
        content: bytes,
        has_model: bool,
        read_whole: ReadWhole,
        attempt: int,
        headers: dict[str, str],
    ) -> Opened:
        """One attempt."""
        try:
            response = await self._transport.send(self._url, content, headers, self._timeout)
        except TransportFailure as failure:
            raise self.errors.failure(failure, attempts=attempt) from None
        try:
            if not 200 <= response.status_code < 300:
                raise await self._error_answer(response, has_model, attempt)
            body = None
            if read_whole(response):
                try:
                    body = await response.aread()
                except TransportFailure as failure:
                    raise self.errors.failure(
                        failure, "while reading the answer", attempts=attempt
                    ) from None
                await response.aclose()
            return Opened(response, attempt, body)
        except BaseException:
            await response.aclose()
            raise

    async def _error_answer(
        self, response: TransportResponse, has_model: bool, attempt: int
    ) -> EndpointError:
        chunks: list[bytes] = []
        size = 0
        try:
            async for piece in response.aiter_bytes():
                chunks.append(piece)
                size += len(piece)
                if size >= _MAX_ERROR_BODY:
                    break
        except TransportFailure:
            pass  # The status alone is still worth reporting.
        finally:
            await response.aclose()
        return self.errors.answer(
            response.status_code,
            response.headers,
            b"".join(chunks),
            has_model=has_model,
            attempts=attempt,
        )
