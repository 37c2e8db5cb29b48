"""Transports: the request path's I/O port, and one implementation per HTTP library.

- `AsyncTransport` / `TransportResponse`: the interface (one POST, status, headers, body).
- `HttpxTransport` (``_httpx``): over any ``httpx.AsyncClient``; the default.
- ``AiohttpTransport`` (``_aiohttp``, imported by batch runs only): over aiohttp's pool.

Each maps its own library's exceptions to `TransportFailure` at its edge.
"""

from ._base import AsyncTransport, FailureKind, TransportFailure, TransportResponse
from ._httpx import (
    ClientFactory,
    HttpxTransport,
    Sendable,
    as_transport,
    default_client_factory,
    default_limits,
)

__all__ = [
    "AsyncTransport",
    "ClientFactory",
    "FailureKind",
    "HttpxTransport",
    "Sendable",
    "TransportFailure",
    "TransportResponse",
    "as_transport",
    "default_client_factory",
    "default_limits",
]
