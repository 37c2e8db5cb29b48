"""An ``httpx.AsyncClient`` whose every connection is vetted by a `ConnectHook`.

httpx's own transport offers no way to change how it connects, so this one is built from
public parts: httpcore's connection pool, given a network backend that asks the hook, then
connects to an address the hook returned. httpx's request goes to the pool as httpcore's,
and httpcore's answer and exceptions come back as httpx's, so `HttpxTransport` maps its
failures as it does for any client.

Loaded with the first hooked client: it imports httpcore (and anyio), which a plain
``import openai_compat`` does not.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

from ._base import ConnectHook, ConnectRefused

__all__ = ["hooked_client"]

# httpcore's exception -> httpx's; looked up along the exception's class hierarchy, so the
# most specific class that has an entry wins.
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
}


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            mapped = _HTTPX_ERRORS.get(cls)
            if mapped is not None:
                raise mapped(str(exc)) from exc
        raise


class _HookedBackend(httpcore.AsyncNetworkBackend):
    """Asks the hook where ``host`` may be reached, and connects there (and nowhere else)."""

    def __init__(self, hook: ConnectHook) -> None:
        self._hook = hook
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._hook(host, port)
        except ConnectRefused as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        except (OSError, UnicodeError) as exc:
            # The cause stays: it is how the client knows this was a DNS failure.
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"no address of {host} may be connected to")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # A socket path has no address for the hook to judge.
        raise httpcore.ConnectError("unix sockets are not connected to when a hook vets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Body(httpx.AsyncByteStream):
    """httpcore's streamed body, read as httpx's, with httpx's exceptions."""

    def __init__(self, answer: httpcore.Response) -> None:
        self._answer = answer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for piece in self._answer.aiter_stream():
                yield piece

    async def aclose(self) -> None:
        with _as_httpx_errors():
            await self._answer.aclose()


class _PoolTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over an httpcore connection pool."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,  # the timeouts travel here
        )
        with _as_httpx_errors():
            answer = await self._pool.handle_async_request(sent)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        with _as_httpx_errors():
            await self._pool.aclose()


def _proxy(url: str) -> httpcore.Proxy:
    # httpx's Proxy checks the scheme and takes any credentials out of the URL.
    given = httpx.Proxy(url)
    return httpcore.Proxy(
        url=httpcore.URL(
            scheme=given.url.raw_scheme,
            host=given.url.raw_host,
            port=given.url.port,
            target=given.url.raw_path,
        ),
        auth=given.raw_auth,
        headers=given.headers.raw,
        ssl_context=given.ssl_context,
    )


def hooked_client(
    hook: ConnectHook,
    *,
    verify: ssl.SSLContext | bool,
    proxy: str | None,
    limits: httpx.Limits,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that connects only to addresses ``hook`` returns.

    With ``proxy``, the connection the hook is asked about is the one to the proxy. The
    environment's proxies are not used (a proxy would be a way around the hook);
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` apply when ``verify`` is True, as in httpx.
    """
    pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=True),
        proxy=None if proxy is None else _proxy(proxy),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_HookedBackend(hook),
    )
    # With a transport given, httpx mounts no proxy from the environment.
    return httpx.AsyncClient(transport=_PoolTransport(pool))
