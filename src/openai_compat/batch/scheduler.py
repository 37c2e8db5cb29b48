"""Politeness: the request rate limit, and the run-wide pause after a 429.

The rate limit is aiolimiter's leaky bucket, sized so the burst is one second's worth (a
limit of 600/minute lets 10 requests go at once, then 10 per second). A 429 with
``Retry-After`` (or without, then the retry's back-off) pauses every *new* request of the
run until that time: a server saying "slow down" to one row is saying it to all of them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from ..errors import ConfigurationError, EndpointError
from ..resources import catalog

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_RATE", "MAX_CONCURRENCY", "Rate", "Scheduler"]

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([A-Za-z]+))?\s*")
# A 429 without any hint still pauses the run a little.
_MIN_PAUSE_S = 0.05


@dataclass(frozen=True, slots=True)
class Rate:
    """A request rate: ``requests`` per ``period_s`` seconds."""

    requests: float
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """Parse ``"600/minute"``, ``"10/s"``, ``"36000/hour"``; ``"off"`` or ``"0"`` -> None."""
        value = (text or "").strip().lower()
        if value in ("off", "none", "0", "unlimited"):
            return None
        match = _RATE.fullmatch(value)
        unit = match.group(2) if match else None
        if not match or (unit is not None and unit not in _UNITS):
            raise ConfigurationError(
                f"must look like 600/minute, 10/second or 5000/hour (or off), got {text!r}",
                field="rate",
            )
        requests = float(match.group(1))
        if requests <= 0:
            return None
        return cls(requests, _UNITS[unit or "minute"])

    @property
    def per_second(self) -> float:
        """Requests per second."""
        return self.requests / self.period_s

    def __str__(self) -> str:
        unit = {1.0: "second", 60.0: "minute", 3600.0: "hour"}.get(self.period_s, "s")
        return f"{self.requests:g}/{unit}"


def _catalog_defaults() -> tuple[int, Rate]:
    data = catalog()
    unit = str(data.get("request_rate_limit_unit", "minute"))
    rate = Rate(float(data.get("request_rate_limit", 600)), _UNITS.get(unit, 60.0))
    return int(data.get("request_rate_concurrency", 10)), rate


DEFAULT_CONCURRENCY, DEFAULT_RATE = _catalog_defaults()
MAX_CONCURRENCY = 10_000
"""The most requests a run keeps in flight. Each costs a connection and a worker; far more
than any endpoint serves at once is a typo (``--concurrency 1000000``), refused up front."""


class Scheduler:
    """Decides when the next request may go: the rate limit, and any pause after a 429."""

    def __init__(
        self, rate: Rate | None, *, on_pause: Callable[[float], None] | None = None
    ) -> None:
        self.rate = rate
        self._on_pause = on_pause
        self._limiter: AsyncLimiter | None = None
        if rate is not None:
            per_second = rate.per_second
            # One second's worth of burst; slower than 1/s: one request per interval.
            if per_second >= 1:
                self._limiter = AsyncLimiter(per_second, 1.0)
            else:
                self._limiter = AsyncLimiter(1, 1.0 / per_second)
        self._resume_at = 0.0
        self.pauses = 0

    @property
    def paused_for(self) -> float:
        """Seconds left in the current pause (0 when not paused)."""
        return max(0.0, self._resume_at - time.monotonic())

    def pause(self, seconds: float) -> None:
        """Hold every new request of the run for ``seconds`` (extends, never shortens)."""
        now = time.monotonic()
        seconds = max(seconds, _MIN_PAUSE_S)
        if now + seconds > self._resume_at:
            fresh = self._resume_at <= now
            self._resume_at = now + seconds
            self.pauses += 1
            if fresh and self._on_pause is not None:
                self._on_pause(seconds)

    def on_retry(self, retry_number: int, error: BaseException, wait_s: float) -> None:
        """``Endpoint`` retry hook: a 429 pauses the whole run for the wait it asks for."""
        if isinstance(error, EndpointError) and error.status == 429:
            self.pause(wait_s)

    def on_failure(self, error: BaseException) -> None:
        """A row that finally failed with a 429 still slows the rest of the run."""
        if isinstance(error, EndpointError) and error.status == 429:
            self.pause(error.retry_after or 1.0)

    async def ready(self) -> None:
        """Wait until a request may be sent."""
        wait = self._resume_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._limiter is not None:
            await self._limiter.acquire()
        # A pause may have started while waiting for the limiter.
        while (wait := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)
