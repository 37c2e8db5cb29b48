"""The scripted server as a rate-limited provider and as a capacity-limited server.

`ProviderLimits` (``mock-server --limit-rpm N --limit-tpm M``) counts each chat request's
tokens as it arrives (its usage: the prompt's UTF-8 bytes / 4 rounded up plus 3 a message,
and half its ``max_tokens``, else a quarter of the prompt, as completion) in a token bucket
per dimension that refills at the limit a minute and holds ``burst_s`` seconds' worth
(providers enforce a minute's limit over shorter periods too). A request over either limit
is answered 429 with ``Retry-After`` / ``retry-after-ms``; every answer carries OpenAI's
``x-ratelimit-limit|remaining|reset-requests|tokens`` headers, resets as Go durations.

`Slots` (``--slots K``) serves K requests at a time, each for ``service_s``, and queues the
rest, so latency grows with the queue as a real server's does. With ``share`` (``--share``)
its slots share one compute, as a continuously batching server's do: each other slot busy
when a request starts adds ``share`` of ``service_s`` to it, so a request is answered more
slowly the more run at once while more are answered a second (K slots answer
``K / (service_s * (1 + share * (K - 1)))`` a second).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Charge", "ProviderLimits", "Slots", "format_duration", "request_usage"]


def format_duration(seconds: float) -> str:
    """A reset as OpenAI writes it.

    >>> format_duration(0.12), format_duration(1.0), format_duration(360.0)
    ('120ms', '1s', '6m0s')
    """
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


def _text_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, Mapping):
        return _text_bytes(value.get("content"))
    if isinstance(value, list):
        return sum(_text_bytes(item) for item in value)
    return 0


def request_usage(body: Any) -> tuple[int, int]:
    """(prompt, completion) tokens the server counts for a chat request ``body``.

    >>> request_usage({"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 10})
    (13, 5)
    """
    if not isinstance(body, Mapping):
        return 1, 1
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 0
    prompt = -(-_text_bytes(messages) // 4) + 3 * count
    most = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(most, int) and not isinstance(most, bool) and most > 0:
        completion = max(1, most // 2)
    else:
        completion = max(1, prompt // 4)
    return prompt, completion


def embeddings_usage(body: Any) -> int:
    """The tokens the server counts for an embeddings request ``body``: what its answer's
    ``usage`` reports (a word a token; a token array, its length).

    >>> embeddings_usage({"input": ["three words here", "two words"]})
    5
    """
    text = body.get("input") if isinstance(body, Mapping) else None
    items = text if isinstance(text, list) and not _is_tokens(text) else [text]
    count = 0
    for item in items:
        if isinstance(item, str):
            count += max(len(item.split()), 1)
        elif isinstance(item, list):
            count += len(item)
    return max(count, 1)


def _is_tokens(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(v, int) for v in value)


@dataclass
class Charge:
    """One request counted (or refused) by `ProviderLimits`."""

    at: float
    tokens: int
    refused: bool


class _Bucket:
    def __init__(self, per_minute: float, burst_s: float) -> None:
        self.per_minute = per_minute
        self.per_second = per_minute / 60.0
        self.capacity = max(1.0, self.per_second * burst_s)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_second)
        self.stamp = now

    def short_by(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0.0: it fits now)."""
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.per_second

    def headers(self, kind: bytes) -> list[tuple[bytes, bytes]]:
        reset = (self.capacity - self.level) / self.per_second
        return [
            (b"x-ratelimit-limit-" + kind, b"%d" % self.per_minute),
            (b"x-ratelimit-remaining-" + kind, b"%d" % max(0, int(self.level))),
            (b"x-ratelimit-reset-" + kind, format_duration(reset).encode()),
        ]


@dataclass
class ProviderLimits:
    """Requests and tokens a minute, enforced as a provider does (see the module)."""

    rpm: float | None = None
    tpm: float | None = None
    burst_s: float = 1.0
    charges: list[Charge] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._requests = _Bucket(self.rpm, self.burst_s) if self.rpm else None
        self._tokens = _Bucket(self.tpm, self.burst_s) if self.tpm else None
        self._lock = threading.Lock()

    def admit(self, tokens: int) -> tuple[float, list[tuple[bytes, bytes]]]:
        """Count a request of ``tokens``: (seconds to retry after, 0.0 when admitted; the
        ``x-ratelimit-*`` headers of its answer)."""
        with self._lock:
            now = time.monotonic()
            wait = 0.0
            for bucket, amount in ((self._requests, 1), (self._tokens, tokens)):
                if bucket is not None:
                    bucket.refill(now)
                    wait = max(wait, bucket.short_by(amount))
            if wait == 0.0:
                if self._requests is not None:
                    self._requests.level -= 1
                if self._tokens is not None:
                    self._tokens.level -= tokens
            self.charges.append(Charge(now, tokens, wait > 0))
            headers: list[tuple[bytes, bytes]] = []
            if self._requests is not None:
                headers += self._requests.headers(b"requests")
            if self._tokens is not None:
                headers += self._tokens.headers(b"tokens")
        return wait, headers


class Slots:
    """K requests served at a time, each for ``service_s`` (longer by ``share`` of it for
    each other slot busy); the rest wait their turn.

    >>> Slots(4, 0.05, share=0.5).capacity  # answers a second, all four slots busy
    32.0
    """

    def __init__(self, slots: int, service_s: float, *, share: float = 0.0) -> None:
        self.slots = slots
        self.service_s = service_s
        self.share = share
        self.busy = 0  # requests in a slot now
        self.in_flight = 0  # requests at the server now (served or queued)
        self.peak = 0
        self.samples: list[tuple[float, int]] = []  # (when, in flight) at each arrival
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def capacity(self) -> float:
        """Answers a second with every slot busy."""
        return self.slots / (self.service_s * (1 + self.share * (self.slots - 1)))

    async def serve(self) -> None:
        """Wait for a slot, then the service time."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.slots)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.samples.append((time.monotonic(), self.in_flight))
        try:
            async with self._semaphore:
                self.busy += 1
                try:
                    await asyncio.sleep(self.service_s * (1 + self.share * (self.busy - 1)))
                finally:
                    self.busy -= 1
        finally:
            self.in_flight -= 1
