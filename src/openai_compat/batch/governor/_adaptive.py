"""Concurrency that finds itself: a gradient limiter in the manner of Envoy's adaptive
concurrency filter (and Netflix's concurrency-limits ``Gradient``).

The limit is how many requests may be in flight. Answers are measured in windows of at
least ``max(limit, 4)`` answers; at the end of each:

- **slow start** (until the first sign of a queue): the limit doubles while the window's
  mean latency stays within ``tolerance`` of the floor, as TCP's does;
- then **gradient**: ``limit = limit * min(1, tolerance * floor / mean) + headroom``, where
  the headroom is ``log10(limit)`` (at least 1) so the limit keeps probing upward by a
  little. A server at its capacity answers in ``floor * in_flight / capacity`` (its queue
  grows, Little's law), so the limit settles a request or two above the capacity, where
  throughput stops growing and latency starts to;
- **latency that bought throughput is not a queue**: two windows in a row whose throughput
  (answers over the window's duration) beats that of the floor's own window by more than
  ``gain`` raise the floor with their latency, by no more than the throughput rose (two,
  since one window's count of answers is noisy). A server that
  batches its slots on one compute (continuous batching) answers each request more
  slowly the more run at once while answering more of them a second, and keeps its slots
  busy between one answer and the client's next request only with a few requests waiting in
  its queue: its latency rises well before its throughput stops growing, and a floor taken
  at one request in flight would hold the limit below its slots. A window right after a cut
  is not judged (it drains the queue the higher limit built, faster than the new limit
  would answer);
- a 429, a 503 or a timeout in the window cuts the limit by ``backoff`` (once a window);
- a window that never had half the limit in flight does not grow it (the rows, the rate
  limit or the input were the bottleneck, not the server).

The **floor** is the lowest window mean seen, lowered only when two windows in a row are
faster (to the slower of the two: one window of a few answers can be fast by luck on a
loaded machine, and a floor too low pins the limit) or raised by throughput (above), measured
again every ``reprobe_s`` in one window at a quarter of the limit (a floor that only falls
would miss a server that became slower; one that rises whenever latency does would let a
queue pass for the norm).

Why a gradient and not AIMD: AIMD only learns from errors, so against a self-hosted server
that queues instead of refusing (llama.cpp, vLLM, TGI) it grows until requests time out;
the gradient reads the queue in the latency long before that.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

__all__ = ["AdaptiveLimit"]


class AdaptiveLimit:
    """A concurrency limit moved by measured latency and overload; an async semaphore.

    >>> limit = AdaptiveLimit(64, initial=2)
    >>> for _ in range(4):
    ...     limit.in_flight_peak = 2
    ...     limit.record(0.1)
    >>> limit.limit  # slow start: the latency held, the limit doubled
    4
    """

    def __init__(
        self,
        max_limit: int,
        *,
        initial: int = 1,
        tolerance: float = 1.1,
        gain: float = 0.1,
        backoff: float = 0.75,
        reprobe_s: float = 30.0,
    ) -> None:
        self.max_limit = max(1, max_limit)
        self._limit = float(min(max(1, initial), self.max_limit))
        self.initial = int(self._limit)
        self.tolerance = tolerance
        self.gain = gain
        self.backoff = backoff
        self.reprobe_s = reprobe_s
        self.floor: float | None = None
        # The throughput (answers a second) of the window whose latency is the floor.
        self.floor_throughput: float | None = None
        self.in_flight = 0
        self.in_flight_peak = 0
        self._slow_start = True
        self._fell = False
        self._gained: tuple[float, float] | None = None  # (mean, throughput) of a gain
        self._lower: float | None = None  # the mean of a window below the floor
        self._samples = 0
        self._total = 0.0
        self._overloaded = False
        self._probing: float | None = None  # the limit to return to after a probe window
        self._probed_at = time.monotonic()
        self._window_at = self._probed_at  # when the window began (the last one ended)
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        """Requests that may be in flight now."""
        return max(1, int(self._limit))

    # -- the semaphore --------------------------------------------------------------------
    async def acquire(self) -> None:
        """Wait for a place under the limit, then take it."""
        while self.in_flight >= self.limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._wake()
                raise
            if self.in_flight < self.limit:
                break
        self.in_flight += 1
        self.in_flight_peak = max(self.in_flight_peak, self.in_flight)

    def release(self) -> None:
        """Give a place back (after the request's answer, or its failure)."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        room = self.limit - self.in_flight
        while room > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    # -- the measurements -----------------------------------------------------------------
    def record(self, latency_s: float) -> None:
        """One answer's latency (a 2xx answer: errors tell of the request, not the load)."""
        self._samples += 1
        self._total += latency_s
        if self._samples >= max(self.limit, 4):
            self._end_window()

    def overloaded(self) -> None:
        """A 429, 503 or timeout: the limit is cut at once (once a window)."""
        if self._overloaded:
            return
        self._overloaded = True
        self._slow_start = False
        self._fell = True
        self._limit = max(1.0, self._limit * self.backoff)
        self._wake()

    def _end_window(self) -> None:
        mean = self._total / self._samples
        now = time.monotonic()
        elapsed, self._window_at = now - self._window_at, now
        throughput = self._samples / elapsed if elapsed > 0 else None
        busy = self.in_flight_peak * 2 >= self.limit
        overloaded = self._overloaded
        self._samples, self._total, self._overloaded = 0, 0.0, False
        self.in_flight_peak = self.in_flight
        if self._probing is not None:  # a probe window: its mean is the new floor
            self.floor, self.floor_throughput = mean, throughput
            self._limit, self._probing = self._probing, None
            self._wake()
            return
        lower, self._lower = self._lower, None
        if self.floor is None:
            self.floor, self.floor_throughput = mean, throughput
        elif mean < self.floor and lower is None:
            self._lower = mean  # one fast window may be its noise: wait for the next
        elif mean < self.floor and lower is not None:
            # A faster floor stands for no less throughput than the one it replaces (a noisy
            # low one would let the next window's noise pass for a gain).
            self.floor = max(lower, mean)
            self.floor_throughput = max(self.floor_throughput or 0.0, throughput or 0.0) or None
        if overloaded:
            return  # the cut is made (`overloaded`); the next window drains
        before, then, gained = self.limit, self.floor_throughput, self._gained
        self._gained = None
        if busy and not self._fell and throughput and then and throughput > then * (1 + self.gain):
            if gained is None:  # one window's gain may be its noise: wait for the next
                self._gained = (mean, throughput)
            else:
                # Latency that bought throughput is the server's service, not a queue: the
                # floor rises with it, by no more than the throughput did.
                latency, rate = min(gained[0], mean), min(gained[1], throughput)
                self.floor = max(self.floor, min(latency, self.floor * rate / then))
                self.floor_throughput = rate
        ratio = min(1.0, self.tolerance * self.floor / mean) if mean > 0 else 1.0
        if self._slow_start and ratio >= 1.0:
            grown = self._limit * 2 if busy else self._limit
        else:
            self._slow_start = False
            headroom = max(1.0, math.log10(self._limit)) if busy else 0.0
            grown = self._limit * ratio + headroom
            if not busy:
                grown = min(grown, self._limit)
        self._limit = min(float(self.max_limit), max(1.0, grown))
        # The window after a cut drains the queue the higher limit built: its throughput is
        # the old limit's, not the new one's.
        self._fell = self.limit < before
        if now - self._probed_at >= self.reprobe_s and self.limit >= 4 * self.initial:
            self._probed_at = now
            self._probing = self._limit
            self._limit = max(float(self.initial), self._limit / 4)
        self._wake()
