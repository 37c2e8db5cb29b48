"""The batch run's shared HTTP client: httpx's API over aiohttp's connection pool.

httpcore's pool (httpx's default transport) scans every pooled connection for every
request, so at 64 connections a request costs several milliseconds of CPU, and a batch
run tops out at about a hundred requests a second (the official SDK, on the same pool,
too). ``httpx-aiohttp`` keeps httpx's API, which the core's `Transport` uses, and sends
through aiohttp's pool instead.

Its own exception mapping turns every ``aiohttp.ClientConnectionError`` (a refused
connection, a server that hung up) into ``httpx.ConnectTimeout``, which would make the
core report a timeout that did not happen; `_remapped` maps the aiohttp cause to the httpx
exception that says what happened, so errors read the same as with httpx's own transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["make_batch_client"]

# Most specific first: the first match wins.
_REMAP: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (asyncio.TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    # The body ended before its length / last chunk: the server hung up mid-answer.
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientError, httpx.NetworkError),
    (OSError, httpx.NetworkError),
)


def _remapped(exc: BaseException) -> BaseException:
    """The httpx exception for an aiohttp failure (``exc`` itself if there is no better one)."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) else exc
    if cause is None:
        return exc
    for source, target in _REMAP:
        if isinstance(cause, source):
            mapped = target(str(cause) or type(cause).__name__)
            # The aiohttp error stays the cause: the core looks for ConnectionRefusedError in it.
            mapped.__cause__ = cause
            return mapped
    return exc


class _RemappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
            raise _remapped(exc)  # noqa: B904 - the cause is set by _remapped

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
            raise _remapped(exc)  # noqa: B904 - the cause is set by _remapped


class _BatchTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
            raise _remapped(exc)  # noqa: B904 - the cause is set by _remapped
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _RemappedStream(response.stream)
        return response


class _BatchClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` without the per-request work a batch run never needs.

    A run posts to one URL with the same headers, no cookies, no auth and no redirects, so
    ``build_request`` reuses the parsed URL and merged headers, and ``send`` goes straight to
    the transport (httpx's own ``send`` adds auth and redirect generators, cookie extraction
    through ``http.cookiejar`` and a log record to every request: a third of the client's
    CPU per row).
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, limits: httpx.Limits) -> None:
        super().__init__(transport=transport, limits=limits)
        self._batch_transport = transport
        self._urls: dict[str, httpx.URL] = {}
        self._merged: dict[tuple[tuple[str, str], ...], httpx.Headers] = {}

    def build_request(  # type: ignore[override]
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Request:
        if kwargs or not isinstance(content, bytes):
            return super().build_request(
                method, url, content=content, headers=headers, timeout=timeout, **kwargs
            )
        # The core passes the URL parsed once; a plain string is parsed once here.
        parsed = url if isinstance(url, httpx.URL) else self._urls.get(url)
        if parsed is None:
            parsed = self._urls[str(url)] = httpx.URL(url)
        key = tuple((headers or {}).items())
        merged = self._merged.get(key)
        if merged is None:
            merged = httpx.Headers(self.headers)
            merged.update(headers or {})
            self._merged[key] = merged
        request = httpx.Request(
            method,
            parsed,
            content=content,
            headers=merged,
            extensions={"timeout": (timeout or self.timeout).as_dict()},
        )
        return request

    async def send(
        self, request: httpx.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        response = await self._batch_transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response


def make_batch_client(concurrency: int) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for a run with ``concurrency`` requests in flight."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return _BatchClient(_BatchTransport(limits=limits), limits)
