"""The server's own account of where a caller stands: OpenAI's ``x-ratelimit-*`` headers.

OpenAI (and most gateways copying it) send, on every answer, for requests and for tokens:
``x-ratelimit-limit-*`` (the per-minute limit), ``x-ratelimit-remaining-*`` (what is left
now) and ``x-ratelimit-reset-*`` (how long until the bucket is full again), the reset as a
Go duration (``6m0s``, ``1s``, ``120ms``, ``1h2m3.5s``) or plain seconds (``0.5``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RateLimitHeaders", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """Seconds in a reset header: a Go duration (``6m0s``) or plain seconds; None if neither.

    >>> parse_duration("6m0s"), parse_duration("1s"), parse_duration("120ms")
    (360.0, 1.0, 0.12)
    >>> parse_duration("1h2m3.5s"), parse_duration("0.25"), parse_duration("soon")
    (3723.5, 0.25, None)
    """
    if text is None:
        return None
    value = text.strip().lower()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    position, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    return total if position == len(value) and position else None


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 else None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What one answer's ``x-ratelimit-*`` headers say (None: not said, or unreadable).

    >>> seen = RateLimitHeaders.parse({
    ...     "x-ratelimit-limit-tokens": "300000", "x-ratelimit-remaining-tokens": "1200",
    ...     "x-ratelimit-reset-tokens": "120ms", "x-ratelimit-remaining-requests": "9"})
    >>> seen.limit_tokens, seen.remaining_tokens, seen.reset_tokens_s, seen.remaining_requests
    (300000.0, 1200.0, 0.12, 9.0)
    """

    limit_requests: float | None = None
    remaining_requests: float | None = None
    reset_requests_s: float | None = None
    limit_tokens: float | None = None
    remaining_tokens: float | None = None
    reset_tokens_s: float | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders | None:
        """The headers' account, or None when the answer has none of them."""
        if "x-ratelimit-remaining-requests" not in headers and (
            "x-ratelimit-remaining-tokens" not in headers
        ):
            return None
        return cls(
            _number(headers, "x-ratelimit-limit-requests"),
            _number(headers, "x-ratelimit-remaining-requests"),
            parse_duration(headers.get("x-ratelimit-reset-requests")),
            _number(headers, "x-ratelimit-limit-tokens"),
            _number(headers, "x-ratelimit-remaining-tokens"),
            parse_duration(headers.get("x-ratelimit-reset-tokens")),
        )
