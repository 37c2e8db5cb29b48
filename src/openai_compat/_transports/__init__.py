"""Transports: the request path's I/O port, and one implementation per HTTP library.

- `AsyncTransport` / `TransportResponse`: the interface (one POST, status, headers, body).
- `HttpxTransport` (``_httpx``): over any ``httpx.AsyncClient``; the default.
- ``AiohttpTransport`` (``_aiohttp``, imported by batch runs only): over aiohttp's pool.

Each maps its own library's exceptions to `TransportFailure` at its edge.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from ._base import AsyncTransport, FailureKind, TransportFailure, TransportResponse
from ._httpx import (
    ClientFactory,
    HttpxTransport,
    Sendable,
    as_transport,
    default_client_factory,
    default_limits,
)

if TYPE_CHECKING:
    from ._aiohttp import AiohttpTransport

# aiohttp loads only for a run that sends through it (batch runs), not with the package.
__getattr__ = lazy_attributes(__name__, {"AiohttpTransport": "._aiohttp"}, globals())

__all__ = [
    "AiohttpTransport",
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
