"""The one place that sends HTTP to the model endpoint.

It owns the headers, the timeouts, the retry loop and the mapping of failures to our
errors. It hands back a 2xx response whose body is either already read (JSON answers,
so a slow body is retried too) or left for the caller to stream (SSE), because once a
streamed record is out, a retry would duplicate it.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from .config import SourceConfig
from .errors import ConnectError, EndpointError, OpenAICompatError, TimeoutError, redact
from .response_errors import error_from_body, error_from_exception
from .retries import RetryPolicy, is_retryable
from .wire import HttpxWire, Wire, WireResponse

__all__ = ["ClientFactory", "Opened", "Transport", "default_client_factory", "default_limits"]

_MAX_ERROR_BODY = 64 * 1024
_USER_AGENT = "openai-compat/0.1"
_log = logging.getLogger(__name__)
_warned_unverified: set[str] = set()


class _DeadlineExceeded(httpx.ReadTimeout):
    """The total deadline (``advanced.deadline``) passed while a stream was being read."""


class _DeadlineResponse:
    """A streamed response that stops with ``_DeadlineExceeded`` once ``deadline_at`` passes.

    The per-read timeout bounds each wait for the next bytes; this bounds the whole answer.
    """

    __slots__ = ("_deadline_at", "_inner")

    def __init__(self, inner: WireResponse, deadline_at: float) -> None:
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
                raise _DeadlineExceeded("deadline passed")
            try:
                async with asyncio.timeout(remaining):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except builtins.TimeoutError:
                raise _DeadlineExceeded("deadline passed") from None
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


def default_limits() -> httpx.Limits:
    """Connection pool limits sized for batch runs (many rows, one host)."""
    return httpx.Limits(max_connections=256, max_keepalive_connections=64)


class ClientFactory(Protocol):
    """Makes the HTTP client of a configuration whose TLS or proxy options need its own.

    A server that must vet every connection (the application's address guard) passes one,
    so that such configurations are guarded too.
    """

    def __call__(
        self, *, verify: ssl.SSLContext | bool, proxy: str | None, limits: httpx.Limits
    ) -> httpx.AsyncClient: ...


def default_client_factory(
    *, verify: ssl.SSLContext | bool, proxy: str | None, limits: httpx.Limits
) -> httpx.AsyncClient:
    """A plain client; ``trust_env`` honours the proxy variables and ``SSL_CERT_FILE``."""
    return httpx.AsyncClient(limits=limits, verify=verify, proxy=proxy, trust_env=True)


@dataclass(slots=True)
class Opened:
    """A successful (2xx) response; ``body`` is set when it was read whole."""

    response: WireResponse
    attempts: int
    body: bytes | None


class Transport:
    """Sends chat-completion requests for one configuration.

    Pass ``client`` (an ``httpx.AsyncClient`` or any `Wire`) to share one connection pool
    between many transports; otherwise the transport makes and owns one.
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        client: httpx.AsyncClient | Wire | None = None,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.config = config
        self._client_factory = client_factory or default_client_factory
        options = config.advanced
        self.retry = retry or RetryPolicy()
        if options.max_retries is not None:
            self.retry = dataclasses.replace(self.retry, max_retries=options.max_retries)
        self.on_retry = on_retry
        # TLS and proxy settings belong to the httpx client, so a configuration that has
        # them gets its own client even when a shared one is offered.
        if client is None or options.needs_own_client:
            client, self._owns_client = self._make_client(), True
        else:
            self._owns_client = False
        self._wire: Wire = HttpxWire(client) if isinstance(client, httpx.AsyncClient) else client
        self._timeout = config.timeout
        self._headers = self._build_headers()
        self._url = config.url

    def _make_client(self) -> httpx.AsyncClient:
        options = self.config.advanced
        host = urlsplit(self.config.url).netloc
        if not options.verify_tls and host not in _warned_unverified:
            # Once per host and process: a batch makes one transport per run, not per row,
            # but a server may make many.
            _warned_unverified.add(host)
            _log.warning(
                "TLS certificate verification is OFF for %s (advanced.verify_tls is false): "
                "anyone on the network path can read and change the traffic, API key included. "
                "Give the server's CA certificate in advanced.ca_bundle instead.",
                host,
            )
        # An explicit advanced.proxy wins over the proxy environment variables.
        return self._client_factory(
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
        return f"Transport(url={self.config.url!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this transport made it."""
        if self._owns_client:
            await self._wire.aclose()

    def error(self, exc: httpx.HTTPError, during: str = "") -> Exception:
        """Our error for an httpx exception raised while talking to the endpoint."""
        if isinstance(exc, _DeadlineExceeded):
            return self._deadline_error(during)
        err = error_from_exception(
            exc,
            url=self.config.url,
            timeout=self.config.timeout,
            secrets=self.config.secrets,
            during=during,
        )
        proxy = self.config.advanced.proxy_url
        if proxy is not None and isinstance(err, ConnectError):
            shown = redact(proxy, self.config.secrets)
            err.message = f"{err.message} (through the proxy {shown}: check advanced.proxy)"
            err.args = (err.message,)
        return err

    async def open(
        self, body: dict[str, Any], *, read_whole: Callable[[WireResponse], bool]
    ) -> Opened:
        """POST ``body``; retry per the policy; return the first 2xx response.

        ``read_whole(response)`` decides whether the body is read inside the retry loop.
        Raises ``EndpointError`` for a non-2xx answer, ``TransportError`` when there was none.
        """
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        deadline = self.config.advanced.deadline
        if deadline is None:
            return await self._open(content, "model" in body, read_whole)
        deadline_at = asyncio.get_running_loop().time() + deadline
        tries = [0]
        try:
            async with asyncio.timeout_at(deadline_at):
                opened = await self._open(content, "model" in body, read_whole, tries)
        except builtins.TimeoutError:
            err = self._deadline_error(f"after {tries[0]} attempt(s)")
            err.attempts = tries[0]
            raise err from None
        if opened.body is None:
            opened.response = _DeadlineResponse(opened.response, deadline_at)
        return opened

    def _deadline_error(self, during: str) -> TimeoutError:
        deadline = self.config.advanced.deadline
        where = urlsplit(self.config.url).netloc
        suffix = f" {during}" if during else ""
        return TimeoutError(
            f"the request to {where} did not finish within its deadline of {deadline:g} s"
            f"{suffix}; raise advanced.deadline for long generations "
            f"(config.timeout, {self.config.timeout:g} s, bounds each wait for data)"
        )

    async def _open(
        self,
        content: bytes,
        has_model: bool,
        read_whole: Callable[[WireResponse], bool],
        tries: list[int] | None = None,
    ) -> Opened:
        attempts = 1
        if tries is not None:
            tries[0] = attempts
        try:
            # The first attempt runs outside tenacity: most requests succeed at once, and the
            # retry controller would cost as much CPU as the rest of our request path.
            try:
                return await self._send_once(content, has_model, read_whole, attempts)
            except OpenAICompatError as exc:
                if self.retry.max_retries == 0 or not is_retryable(exc):
                    raise
                wait = self.retry.delay(1, exc)
                if self.on_retry is not None:
                    self.on_retry(1, exc, wait)
                await asyncio.sleep(wait)
            async for attempt in self.retry.retrying(self.on_retry, offset=1):
                with attempt:
                    attempts += 1
                    if tries is not None:
                        tries[0] = attempts
                    return await self._send_once(content, has_model, read_whole, attempts)
        except OpenAICompatError as exc:
            exc.attempts = attempts
            raise
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send_once(
        self,
        content: bytes,
        has_model: bool,
        read_whole: Callable[[WireResponse], bool],
        attempts: int,
    ) -> Opened:
        try:
            response = await self._wire.post(self._url, content, self._headers, self._timeout)
        except httpx.HTTPError as exc:
            raise self.error(exc) from None
        try:
            if not 200 <= response.status_code < 300:
                raise await self._error_response(response, has_model)
            body = None
            if read_whole(response):
                try:
                    body = await response.aread()
                except httpx.HTTPError as exc:
                    raise self.error(exc, "while reading the answer") from None
                await response.aclose()
            return Opened(response, attempts, body)
        except BaseException:
            await response.aclose()
            raise

    async def _error_response(self, response: WireResponse, has_model: bool) -> EndpointError:
        chunks: list[bytes] = []
        size = 0
        try:
            async for piece in response.aiter_bytes():
                chunks.append(piece)
                size += len(piece)
                if size >= _MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass  # The status alone is still worth reporting.
        finally:
            await response.aclose()
        status = response.status_code
        hint = None
        if status in (404, 405):
            hint = self.config.url_problem()
        elif status in (400, 422) and not has_model:
            hint = 'the request has no "model"; add one to the request body (request_format)'
        return error_from_body(
            status, response.headers, b"".join(chunks), secrets=self.config.secrets, hint=hint
        )
