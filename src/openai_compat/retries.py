"""The retry policy: what is retried, how long to wait, and how often.

It follows the official OpenAI SDK, which users already know: connection errors,
timeouts, 408, 409, 429 and 5xx are retried (2 retries by default) before any record
is emitted; the server's ``retry-after-ms`` / ``Retry-After`` is honoured when it asks
for 0-60 s, otherwise the wait is ``min(initial * 2**n, max) * (1 - 0.25 * random())``.
The loop that applies it is the client's (``_client.Client``), written once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .errors import EndpointError, TransportError

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "is_retryable", "parse_retry_after"]

RETRYABLE_STATUSES = frozenset({408, 409, 429})


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date. Returns None when absent or unreadable.

    >>> parse_retry_after({"retry-after-ms": "250"})
    0.25
    >>> parse_retry_after({"retry-after": "2"})
    2.0
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - (time.time() if now is None else now)


def is_retryable(exc: BaseException) -> bool:
    """True for errors worth another attempt: transport failures, 408/409/429 and 5xx."""
    if isinstance(exc, EndpointError):
        status = exc.status or 0
        return status in RETRYABLE_STATUSES or status >= 500
    return isinstance(exc, TransportError)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry, and how to wait between attempts.

    >>> RetryPolicy(max_retries=0).attempts
    1
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    @property
    def attempts(self) -> int:
        """The number of attempts in all (first try plus retries)."""
        return self.max_retries + 1

    def delay(self, retry_number: int, exc: BaseException | None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        retry_after: float | None = getattr(exc, "retry_after", None)
        if retry_after is not None and 0 < retry_after <= self.max_retry_after:
            return float(retry_after)
        backoff = min(self.initial_delay * 2.0 ** (retry_number - 1), self.max_delay)
        return backoff * (1 - 0.25 * random.random())
