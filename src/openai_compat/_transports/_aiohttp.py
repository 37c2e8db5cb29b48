"""The aiohttp transport: batch runs send through aiohttp's connection pool.

httpcore's pool (httpx's default transport) scans every pooled connection for every
request, so at 64 connections a request costs several milliseconds of CPU and a run tops
out at about a hundred rows a second (the official SDK, on the same pool, too). aiohttp's
pool does not, and building httpx's request and response objects for each row would cost as
much CPU as all the rest of a row's work (``bench/batch.py``).

aiohttp's exceptions are mapped to `TransportFailure` here and nowhere else.

With a `ConnectHook`, every connection goes only to an address the hook allows:

- a host name is resolved by the hook (aiohttp's resolver asks it), and only the addresses
  it returns are handed to aiohttp, so a name whose DNS answer changes after an earlier
  check (DNS rebinding) is still judged when the connection is made;
- an IP literal, which aiohttp connects to without resolving, is judged by the hook before
  the first request to its URL;
- the environment's proxies are not used: a proxy would be a way around the hook.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from ._base import ConnectHook, ConnectRefused, FailureKind, TransportFailure
from ._causes import connect_kind

__all__ = ["AiohttpTransport"]

# Most specific first: the first match wins.
_KINDS: tuple[tuple[type[BaseException], FailureKind], ...] = (
    (aiohttp.ConnectionTimeoutError, FailureKind.CONNECT_TIMEOUT),
    (aiohttp.ServerTimeoutError, FailureKind.READ_TIMEOUT),
    (asyncio.TimeoutError, FailureKind.READ_TIMEOUT),
    (aiohttp.ClientConnectorDNSError, FailureKind.NAME_RESOLUTION),
    (aiohttp.ClientSSLError, FailureKind.TLS),
    (aiohttp.ServerDisconnectedError, FailureKind.PEER_CLOSED),
    # The body ended before its length / last chunk: the server hung up mid-answer.
    (aiohttp.ClientPayloadError, FailureKind.PEER_CLOSED),
    (aiohttp.InvalidURL, FailureKind.INVALID_URL),
)
_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
_NO_USER_AGENT = ("User-Agent",)


def _skip_user_agent(headers: Mapping[str, str]) -> tuple[str, ...] | None:
    """aiohttp's own User-Agent is left out when the caller sets none.

    Asked per request rather than of the session: a session's ``skip_auto_headers`` makes
    aiohttp copy and merge the headers of every request, and the client always sets one.
    """
    if "User-Agent" in headers or any(name.lower() == "user-agent" for name in headers):
        return None
    return _NO_USER_AGENT


def _failure(exc: BaseException) -> TransportFailure:
    detail = str(exc) or type(exc).__name__
    for source, kind in _KINDS:
        if isinstance(exc, source):
            return TransportFailure(kind, detail)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportFailure(connect_kind(exc.os_error), detail)
    return TransportFailure(FailureKind.NETWORK, detail)


class _Response:
    """A `TransportResponse` over an ``aiohttp.ClientResponse``."""

    __slots__ = ("_raw", "_whole", "headers", "status_code")

    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self._raw = raw
        self._whole = False
        self.status_code: int = raw.status
        self.headers: Mapping[str, str] = raw.headers

    async def aread(self) -> bytes:
        try:
            body = await self._raw.read()
        except _FAILURES as exc:
            raise _failure(exc) from exc
        self._whole = True
        return body

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._raw.content.iter_any():
                yield piece
        except _FAILURES as exc:
            raise _failure(exc) from exc
        self._whole = True

    async def aclose(self) -> None:
        # A body read to its end leaves the connection reusable; any other is closed, so
        # the next request on it does not read the rest of this answer.
        if self._whole:
            self._raw.release()
        else:
            self._raw.close()


def _refusal(exc: ConnectRefused) -> TransportFailure:
    # Not an OSError: aiohttp would report that as a failure to resolve the name.
    return TransportFailure(FailureKind.CONNECT, str(exc))


def _nothing_allowed(host: str) -> TransportFailure:
    return TransportFailure(FailureKind.CONNECT, f"no address of {host} may be connected to")


class _HookResolver(AbstractResolver):
    """aiohttp's resolver, answered by a `ConnectHook`: only the addresses it allows."""

    def __init__(self, hook: ConnectHook) -> None:
        self._hook = hook

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # OSError (a failed lookup) goes on as it is: aiohttp reports it as a DNS failure.
        try:
            addresses = await self._hook(host, port)
        except ConnectRefused as exc:
            raise _refusal(exc) from exc
        results: list[ResolveResult] = []
        for address in addresses:
            kind = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family not in (socket.AF_UNSPEC, kind):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=kind,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            raise _nothing_allowed(host)
        return results

    async def close(self) -> None:
        return None


class AiohttpTransport:
    """An `AsyncTransport` for one run: a pool of at most ``concurrency`` connections.

    Like httpx's default client it trusts the environment: ``HTTP(S)_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY`` and ``SSL_CERT_FILE`` apply, with certifi's roots otherwise. With
    ``connect_hook``, connections go only where the hook allows, and no proxy is used.
    """

    __slots__ = ("_hook", "_limit", "_session", "_ssl", "_timeouts", "_urls")

    def __init__(self, concurrency: int, connect_hook: ConnectHook | None = None) -> None:
        self._limit = concurrency
        self._hook = connect_hook
        self._session: aiohttp.ClientSession | None = None  # made inside the running loop
        self._urls: dict[str, tuple[yarl.URL, str | None]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _connector(self) -> aiohttp.TCPConnector:
        """The session's connection pool, resolving through the hook when there is one."""
        if self._hook is None:
            return aiohttp.TCPConnector(limit=self._limit)
        return aiohttp.TCPConnector(limit=self._limit, resolver=_HookResolver(self._hook))

    def _open(self) -> aiohttp.ClientSession:
        connector = self._connector()
        # The client sets every header it means to send (User-Agent included: see
        # `_skip_user_agent`). The proxy is looked up once per URL (`_target`): aiohttp's
        # trust_env reads the environment and ~/.netrc again for every request, which
        # doubled a row's CPU.
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def send(
        self, url: str, content: bytes, headers: Mapping[str, str], timeout: float
    ) -> _Response:
        session = self._session or self._open()
        target = self._urls.get(url) or await self._target(url)
        limits = self._timeouts.get(timeout)
        if limits is None:
            # As httpx.Timeout(timeout): connecting, and each wait for data; no total.
            limits = self._timeouts[timeout] = aiohttp.ClientTimeout(
                total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
            )
        try:
            raw = await session.post(
                target[0],
                data=content,
                headers=headers,
                skip_auto_headers=_skip_user_agent(headers),
                timeout=limits,
                proxy=target[1],
                ssl=self._ssl or True,
                allow_redirects=False,
            )
        except _FAILURES as exc:
            raise _failure(exc) from exc
        return _Response(raw)

    async def _target(self, url: str) -> tuple[yarl.URL, str | None]:
        """``url`` parsed, vetted and with its proxy: once per URL, before its first request."""
        parsed = yarl.URL(url)
        if self._hook is not None:
            await self._vet(parsed, self._hook)
        if parsed.scheme == "https" and self._ssl is None:
            # httpx's trust store (certifi, or SSL_CERT_FILE), so both clients trust the same.
            self._ssl = httpx.create_ssl_context(trust_env=True)
        target = self._urls[url] = (parsed, self._proxy_for(parsed))
        return target

    @staticmethod
    async def _vet(url: yarl.URL, hook: ConnectHook) -> None:
        """Raise `TransportFailure` if ``url``'s host is an IP literal ``hook`` refuses.

        aiohttp connects to a literal without resolving it, so its resolver never asks.
        """
        host = (url.host or "").strip("[]")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return  # a name: judged by the resolver, at each connection
        try:
            allowed = await hook(host, url.port or 0)
        except ConnectRefused as exc:
            raise _refusal(exc) from exc
        except (OSError, UnicodeError) as exc:
            raise TransportFailure(connect_kind(exc), f"cannot resolve {host}: {exc}") from exc
        if not allowed:
            raise _nothing_allowed(host)

    def _proxy_for(self, url: yarl.URL) -> str | None:
        """The environment's proxy for ``url`` (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``);
        none with a hook, which a proxy would be a way around."""
        if self._hook is not None or urllib.request.proxy_bypass(url.host or ""):
            return None
        found = urllib.request.getproxies()
        return found.get(url.scheme) or found.get("all")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
