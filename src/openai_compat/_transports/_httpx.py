"""The httpx transport: any ``httpx.AsyncClient`` (its pool, TLS and proxy settings).

httpx's exceptions are mapped to `TransportFailure` here and nowhere else.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import httpx

from ._base import AsyncTransport, ConnectHook, FailureKind, TransportFailure
from ._causes import connect_kind

__all__ = [
    "ClientFactory",
    "HttpxTransport",
    "Sendable",
    "as_transport",
    "default_client_factory",
    "default_limits",
    "hooked_client_factory",
]

# Most specific first: the first match wins.
_KINDS: tuple[tuple[type[Exception], FailureKind], ...] = (
    (httpx.ConnectTimeout, FailureKind.CONNECT_TIMEOUT),
    (httpx.ReadTimeout, FailureKind.READ_TIMEOUT),
    (httpx.WriteTimeout, FailureKind.WRITE_TIMEOUT),
    (httpx.PoolTimeout, FailureKind.POOL_TIMEOUT),
    (httpx.RemoteProtocolError, FailureKind.PEER_CLOSED),
    (httpx.UnsupportedProtocol, FailureKind.INVALID_URL),
    (httpx.InvalidURL, FailureKind.INVALID_URL),
)
_FAILURES = (httpx.TransportError, httpx.InvalidURL)


def _failure(exc: Exception) -> TransportFailure:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return TransportFailure(connect_kind(exc), detail)
    for source, kind in _KINDS:
        if isinstance(exc, source):
            return TransportFailure(kind, detail)
    return TransportFailure(FailureKind.NETWORK, detail)


class _Response:
    """A `TransportResponse` over an ``httpx.Response`` opened with ``stream=True``."""

    __slots__ = ("_raw", "headers", "status_code")

    def __init__(self, raw: httpx.Response) -> None:
        self._raw = raw
        self.status_code: int = raw.status_code
        self.headers: Mapping[str, str] = raw.headers

    async def aread(self) -> bytes:
        try:
            return await self._raw.aread()
        except _FAILURES as exc:
            raise _failure(exc) from exc

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._raw.aiter_bytes():
                yield piece
        except _FAILURES as exc:
            raise _failure(exc) from exc

    async def aclose(self) -> None:
        await self._raw.aclose()


class HttpxTransport:
    """An `AsyncTransport` over an ``httpx.AsyncClient``.

    >>> import asyncio
    >>> transport = HttpxTransport(httpx.AsyncClient())
    >>> asyncio.run(transport.aclose())
    """

    __slots__ = ("_timeouts", "_urls", "client")

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        # Parsed once: httpx's URL and Timeout objects are not cheap to build per request.
        self._urls: dict[str, httpx.URL] = {}
        self._timeouts: dict[float, httpx.Timeout] = {}

    async def send(
        self, url: str, content: bytes, headers: Mapping[str, str], timeout: float
    ) -> _Response:
        try:
            parsed = self._urls.get(url)
            if parsed is None:
                parsed = self._urls[url] = httpx.URL(url)
            limits = self._timeouts.get(timeout)
            if limits is None:
                limits = self._timeouts[timeout] = httpx.Timeout(timeout)
            request = self.client.build_request(
                "POST", parsed, content=content, headers=headers, timeout=limits
            )
            raw = await self.client.send(request, stream=True)
        except _FAILURES as exc:
            raise _failure(exc) from exc
        return _Response(raw)

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> _Response:
        """GET ``url`` (`GetTransport`): through the same client, so the same guard."""
        try:
            request = self.client.build_request(
                "GET", url, headers=headers, timeout=httpx.Timeout(timeout)
            )
            raw = await self.client.send(request, stream=True)
        except _FAILURES as exc:
            raise _failure(exc) from exc
        return _Response(raw)

    async def aclose(self) -> None:
        await self.client.aclose()


def default_limits() -> httpx.Limits:
    """Connection pool limits sized for batch runs (many rows, one host)."""
    return httpx.Limits(max_connections=256, max_keepalive_connections=64)


class ClientFactory(Protocol):
    """Makes the client of a configuration whose TLS or proxy options need its own: an
    ``httpx.AsyncClient`` or any `AsyncTransport` (closed by the one who asked for it).

    A server that must vet every connection (the application's address guard) passes one,
    so that such configurations are guarded too; a batch run wraps it in its governor.
    """

    def __call__(
        self, *, verify: ssl.SSLContext | bool, proxy: str | None, limits: httpx.Limits
    ) -> Sendable: ...


def default_client_factory(
    *, verify: ssl.SSLContext | bool, proxy: str | None, limits: httpx.Limits
) -> httpx.AsyncClient:
    """A plain client; ``trust_env`` honours the proxy variables and ``SSL_CERT_FILE``."""
    return httpx.AsyncClient(limits=limits, verify=verify, proxy=proxy, trust_env=True)


def hooked_client_factory(hook: ConnectHook) -> ClientFactory:
    """A `ClientFactory` whose clients connect only to the addresses ``hook`` returns.

    The hook is asked before each new connection (to the proxy, when there is one); the
    environment's proxies are not used, since one would be a way around the hook.
    """

    def factory(
        *, verify: ssl.SSLContext | bool, proxy: str | None, limits: httpx.Limits
    ) -> httpx.AsyncClient:
        # Imported here: httpcore and anyio load only in a process that makes such a client.
        from ._hooked import hooked_client

        return hooked_client(hook, verify=verify, proxy=proxy, limits=limits)

    return factory


# What the doors accept to send through: a transport, or an ``httpx.AsyncClient`` (the
# client users already have), so that nothing above this package names httpx.
Sendable = AsyncTransport | httpx.AsyncClient


def as_transport(sendable: Sendable) -> AsyncTransport:
    """``sendable`` as an `AsyncTransport` (an ``httpx.AsyncClient`` wrapped in one)."""
    if isinstance(sendable, httpx.AsyncClient):
        return HttpxTransport(sendable)
    return sendable
