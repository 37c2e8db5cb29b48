"""Transports: the request path's I/O port, and one implementation per HTTP library.

- `AsyncTransport` / `TransportResponse`: the interface (one POST, status, headers, body).
- `HttpxTransport` (``_httpx``): over any ``httpx.AsyncClient``; the default.
- ``AiohttpTransport`` (``_aiohttp``, loaded by `aiohttp_transport` only): over aiohttp's pool.
- `GetTransport`: a transport that can also GET (``/v1/models``); the httpx one can.
- `ConnectHook`: what a server that vets every connection gives both, through
  `hooked_client_factory` and `aiohttp_transport`; it refuses with `ConnectRefused`.

Each maps its own library's exceptions to `TransportFailure` at its edge. httpx, httpcore and
aiohttp are imported in this package and nowhere else.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from ._base import (
    AsyncTransport,
    ConnectHook,
    ConnectRefused,
    FailureKind,
    GetTransport,
    TransportFailure,
    TransportResponse,
)
from ._httpx import (
    ClientFactory,
    HttpxTransport,
    Sendable,
    as_transport,
    default_client_factory,
    default_limits,
    hooked_client_factory,
)

if TYPE_CHECKING:
    from ._aiohttp import AiohttpTransport

# aiohttp loads only in a process that sends through it (batch runs, the application), not
# with the package; a process may load it ahead of its first request by asking for the class.
__getattr__ = lazy_attributes(__name__, {"AiohttpTransport": "._aiohttp"}, globals())

__all__ = [
    "AiohttpTransport",
    "AsyncTransport",
    "ClientFactory",
    "ConnectHook",
    "ConnectRefused",
    "FailureKind",
    "GetTransport",
    "HttpxTransport",
    "Sendable",
    "TransportFailure",
    "TransportResponse",
    "aiohttp_transport",
    "as_transport",
    "default_client_factory",
    "default_limits",
    "hooked_client_factory",
]


def aiohttp_transport(concurrency: int, connect_hook: ConnectHook | None = None) -> AsyncTransport:
    """The transport over aiohttp's pool: at most ``concurrency`` connections.

    With ``connect_hook``, connections go only to addresses the hook allows and the
    environment's proxies are not used; without, the environment's proxies apply.
    """
    from ._aiohttp import AiohttpTransport

    return AiohttpTransport(concurrency, connect_hook)
