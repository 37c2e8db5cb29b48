"""The I/O port of the request path: what the client needs of an HTTP library.

One POST, its status and headers, then the body read whole or as it arrives. A transport
reports every failure as a `TransportFailure` of one `FailureKind`, mapped from its own
library's exceptions at its edge: nothing above the transports knows which library sent
the request, and nothing reads an exception's message to learn what happened.

A `ConnectHook` decides which addresses a transport may connect to: a server that must
vet every connection (the application's address policy) gives one to the transports.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from typing import Protocol, runtime_checkable

__all__ = [
    "AsyncTransport",
    "ConnectHook",
    "ConnectRefused",
    "FailureKind",
    "GetTransport",
    "TransportFailure",
    "TransportResponse",
]


class FailureKind(enum.Enum):
    """What went wrong below HTTP; the client words the error for each."""

    REFUSED = "refused"  # the peer refused the connection (nothing listens there)
    NAME_RESOLUTION = "name resolution"  # DNS failed
    TLS = "tls"  # the TLS handshake failed (an untrusted certificate, ...)
    CONNECT = "connect"  # any other failure to connect (including an address policy's refusal)
    CONNECT_TIMEOUT = "connect timeout"
    READ_TIMEOUT = "read timeout"  # no data within the timeout, once connected
    WRITE_TIMEOUT = "write timeout"
    POOL_TIMEOUT = "pool timeout"
    DEADLINE = "deadline"  # the whole answer did not finish within advanced.deadline
    PEER_CLOSED = "peer closed"  # the server hung up before the answer was complete
    NETWORK = "network"  # any other failure of the exchange
    INVALID_URL = "invalid url"  # the URL cannot be used by this transport


class TransportFailure(Exception):
    """A transport's report that no usable answer came: ``kind`` and the library's ``detail``.

    It does not leave the request path: the client turns it into the error its caller sees
    (a ``TransportError`` or, for an unusable URL, a ``ConfigurationError``), worded once with
    what only the client knows (the host, the timeout, the proxy, how far the answer got).
    A signal between two layers, not an error of the package: it is outside the
    `OpenAICompatError` tree, so no caller's ``except`` can mistake it for a finished error.
    """

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


class ConnectRefused(Exception):
    """A `ConnectHook`'s answer that no address of the host may be connected to.

    Its message is the whole reason, shown to the caller as it is. Like `TransportFailure`
    it is a signal between layers, outside the `OpenAICompatError` tree: a transport turns
    it into a `TransportFailure` of kind CONNECT.
    """


class ConnectHook(Protocol):
    """Asked before every new connection: the IP addresses ``host`` may be reached at.

    The hook resolves a name itself, and the transport connects only to an address it
    returned: a DNS answer that changes after an earlier check (DNS rebinding) is judged
    again at connection time. With a proxy, the connection asked about is the one to the
    proxy. An IP literal is asked about too, as written (without brackets).

    Raises `ConnectRefused` when no address is allowed; an ``OSError`` (a failed lookup)
    goes on as it is, and the transport reports it as a failure to resolve the name.
    """

    async def __call__(self, host: str, port: int, /) -> list[str]: ...


class TransportResponse(Protocol):
    """A response whose status and headers are in and whose body is not read yet.

    ``headers.get`` ignores the case of the name. Reading the body raises only
    `TransportFailure`.
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


class AsyncTransport(Protocol):
    """Sends a POST and returns once the status line and headers are in."""

    async def send(
        self, url: str, content: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        """POST ``content``; ``timeout`` bounds connecting and each wait for data.

        Raises only `TransportFailure`.
        """
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


@runtime_checkable
class GetTransport(Protocol):
    """A transport that can also send a GET (``/v1/models`` beside the request URL).

    Apart from `AsyncTransport`, so that a transport wrapping another for the request path
    need not grow it: the clients made by a `ClientFactory` have it.
    """

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> TransportResponse:
        """GET ``url``; as `AsyncTransport.send` otherwise. Raises only `TransportFailure`."""
        ...
