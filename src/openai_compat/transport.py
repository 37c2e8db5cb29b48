"""The one place that sends HTTP to the model endpoint.

It owns the headers, the timeouts, the retry loop and the mapping of failures to our
errors. It hands back a 2xx response whose body is either already read (JSON answers,
so a slow body is retried too) or left for the caller to stream (SSE), because once a
streamed record is out, a retry would duplicate it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .config import SourceConfig
from .errors import EndpointError, OpenAICompatError
from .response_errors import error_from_body, error_from_exception
from .retries import RetryPolicy

__all__ = ["Opened", "Transport", "default_limits"]

_MAX_ERROR_BODY = 64 * 1024
_USER_AGENT = "openai-compat/0.1"


def default_limits() -> httpx.Limits:
    """Connection pool limits sized for batch runs (many rows, one host)."""
    return httpx.Limits(max_connections=256, max_keepalive_connections=64)


@dataclass(slots=True)
class Opened:
    """A successful (2xx) response; ``body`` is set when it was read whole."""

    response: httpx.Response
    attempts: int
    body: bytes | None


class Transport:
    """Sends chat-completion requests for one configuration.

    Pass ``client`` to share one ``httpx.AsyncClient`` (and its connection pool) between
    many transports; otherwise the transport makes and owns one.
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
    ) -> None:
        self.config = config
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(limits=default_limits())
        self._timeout = httpx.Timeout(config.timeout)
        self._headers = self._build_headers()

    def _build_headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        key = self.config.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def __repr__(self) -> str:
        return f"Transport(url={self.config.url!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this transport made it."""
        if self._owns_client:
            await self._client.aclose()

    def error(self, exc: httpx.HTTPError, during: str = "") -> Exception:
        """Our error for an httpx exception raised while talking to the endpoint."""
        return error_from_exception(
            exc,
            url=self.config.url,
            timeout=self.config.timeout,
            secrets=self.config.secrets,
            during=during,
        )

    async def open(
        self, body: dict[str, Any], *, read_whole: Callable[[httpx.Response], bool]
    ) -> Opened:
        """POST ``body``; retry per the policy; return the first 2xx response.

        ``read_whole(response)`` decides whether the body is read inside the retry loop.
        Raises ``EndpointError`` for a non-2xx answer, ``TransportError`` when there was none.
        """
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempts = 0
        try:
            async for attempt in self.retry.retrying(self.on_retry):
                with attempt:
                    attempts += 1
                    return await self._send_once(content, "model" in body, read_whole, attempts)
        except OpenAICompatError as exc:
            exc.attempts = attempts
            raise
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send_once(
        self,
        content: bytes,
        has_model: bool,
        read_whole: Callable[[httpx.Response], bool],
        attempts: int,
    ) -> Opened:
        request = self._client.build_request(
            "POST", self.config.url, content=content, headers=self._headers, timeout=self._timeout
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.error(exc) from None
        try:
            if not response.is_success:
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

    async def _error_response(self, response: httpx.Response, has_model: bool) -> EndpointError:
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
