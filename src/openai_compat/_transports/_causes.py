"""What an OS-level failure was, read from exception types and errno values, never messages.

Libraries wrap the socket's error (httpcore in anyio's, anyio in an exception group), so the
chain of causes, and the members of any group in it, are searched.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

from ._base import FailureKind

__all__ = ["connect_kind"]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def connect_kind(exc: BaseException) -> FailureKind:
    """REFUSED, NAME_RESOLUTION or TLS when a cause says so, else CONNECT."""
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return FailureKind.REFUSED
        if isinstance(cause, socket.gaierror):
            return FailureKind.NAME_RESOLUTION
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return FailureKind.TLS
    return FailureKind.CONNECT
