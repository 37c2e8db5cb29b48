"""`GovernedTransport`: every attempt of a run (retries too) through its `Governor`.

Before each POST it waits out the run's pause; after, it hands the governor the answer's
status, headers and time to its headers (the adaptive limit's latency). It sits at the
transport so that it sees what the client's retry loop does not show its caller: each
attempt, and the headers of every answer, successful or not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..._transports import (
    AsyncTransport,
    ClientFactory,
    FailureKind,
    TransportFailure,
    TransportResponse,
    as_transport,
)
from ._governor import Governor

__all__ = ["GovernedTransport", "governed_factory"]

_TIMEOUTS = frozenset({FailureKind.READ_TIMEOUT, FailureKind.CONNECT_TIMEOUT, FailureKind.DEADLINE})


class GovernedTransport:
    """An `AsyncTransport` sending through ``inner`` under ``governor``; closes ``inner``
    only when it ``owns`` it (a run's shared pool is closed by the run)."""

    def __init__(self, inner: AsyncTransport, governor: Governor, *, owns: bool = False) -> None:
        self._inner = inner
        self._governor = governor
        self._owns = owns

    async def send(
        self, url: str, content: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        governor = self._governor
        await governor.attempt()
        marks = governor.marks()
        started = time.monotonic()
        try:
            response = await self._inner.send(url, content, headers, timeout)
        except TransportFailure as failure:
            if failure.kind in _TIMEOUTS:
                governor.overloaded()
            governor.heard_first()
            raise
        governor.heard_first()
        governor.answered(response.status_code, response.headers, marks, time.monotonic() - started)
        return response

    async def aclose(self) -> None:
        """Close the inner transport if this one owns it."""
        if self._owns:
            await self._inner.aclose()


def governed_factory(factory: ClientFactory, governor: Governor) -> ClientFactory:
    """``factory``'s clients, each sending under ``governor`` (and closed with it): how a
    configuration with TLS or proxy options, which gets a client of its own, stays governed.
    """

    def make(**options: Any) -> Any:  # the factory's own keywords (TLS, proxy, limits)
        return GovernedTransport(as_transport(factory(**options)), governor, owns=True)

    return make
