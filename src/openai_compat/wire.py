"""What the transport needs of an HTTP client: one POST, its answer read whole or streamed.

httpx is the default (`HttpxWire`, over any ``httpx.AsyncClient``). Batch runs plug in a
leaner client (``batch/http.py``): at thousands of rows a second, building httpx's request
and response objects cost as much CPU as the rest of a row's work.

A wire reports failures as ``httpx.HTTPError`` subclasses, whatever library it uses, so the
core names refused connections, timeouts and broken streams the same way for every wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import httpx

__all__ = ["HttpxWire", "Wire", "WireResponse"]


class WireResponse(Protocol):
    """A response whose status and headers are in and whose body is not read yet.

    ``httpx.Response`` is one. ``headers.get`` must ignore the case of the name.
    """

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def aread(self) -> bytes:
        """The whole body."""
        ...

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        ...

    async def aclose(self) -> None:
        """Release the connection (closed if the body was not read to its end)."""
        ...


class Wire(Protocol):
    """Sends a POST and returns once the status line and headers are in."""

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], timeout: float
    ) -> WireResponse:
        """``timeout`` bounds connecting and each wait for data (not the whole answer)."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


class HttpxWire:
    """A `Wire` over an ``httpx.AsyncClient`` (its pool, TLS and proxy settings)."""

    __slots__ = ("_timeouts", "_urls", "client")

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        # Parsed once: httpx's URL and Timeout objects are not cheap to build per request.
        self._urls: dict[str, httpx.URL] = {}
        self._timeouts: dict[float, httpx.Timeout] = {}

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], timeout: float
    ) -> httpx.Response:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        limits = self._timeouts.get(timeout)
        if limits is None:
            limits = self._timeouts[timeout] = httpx.Timeout(timeout)
        request = self.client.build_request(
            "POST", parsed, content=content, headers=headers, timeout=limits
        )
        return await self.client.send(request, stream=True)

    async def aclose(self) -> None:
        await self.client.aclose()
