"""`GovernedTransport`: every attempt of a run (retries too) through its `Governor`.

Before each POST it waits out the run's pause; after, it hands the governor the answer's
status, headers and time to its headers (the adaptive limit's latency). It sits at the
transport so that it sees what the client's retry loop does not show its caller: each
attempt, and the headers of every answer, successful or not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..._transports import AsyncTransport, FailureKind, TransportFailure, TransportResponse
from ._governor import Governor

__all__ = ["GovernedTransport"]

_TIMEOUTS = frozenset({FailureKind.READ_TIMEOUT, FailureKind.CONNECT_TIMEOUT, FailureKind.DEADLINE})


class GovernedTransport:
    """An `AsyncTransport` sending through ``inner`` under ``governor``; closes nothing of
    ``inner`` (its owner does)."""

    def __init__(self, inner: AsyncTransport, governor: Governor) -> None:
        self._inner = inner
        self._governor = governor

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
        """Nothing to close: the inner transport is its owner's."""
