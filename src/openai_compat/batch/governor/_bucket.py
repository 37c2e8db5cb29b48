"""A token bucket that lends: a reservation may take it below zero, and settles later.

It refills at ``per_second`` up to ``capacity``. `take` succeeds once the level holds the
amount; an amount above ``capacity`` needs only a full bucket, and takes it below zero
(the next takers wait for the debt to be refilled), so a request larger than one second's
worth is sent in its turn rather than never; `give` returns what a settled reservation did
not use (or, given a negative amount, charges what it used beyond it). Over any long window what is
taken, less what is given back, is at most the refill plus one ``capacity``.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Bucket", "TokenSource"]


class TokenSource(Protocol):
    """What the governor asks of a token bucket: `Bucket`, or one a cluster shares."""

    per_second: float

    def wait(self, amount: float, *, now: float | None = None) -> float: ...

    def take(self, amount: float, *, now: float | None = None) -> float: ...

    def give(self, amount: float, *, now: float | None = None) -> None: ...


class Bucket:
    """A lending token bucket; plain Python (no waiting), so it is tested without a loop.

    >>> bucket = Bucket(per_second=10.0, capacity=10.0, now=0.0)
    >>> bucket.take(25, now=0.0), round(bucket.level, 1)
    (0.0, -15.0)
    >>> bucket.take(1, now=0.0)  # the debt is refilled in 1.5 s, then 0.1 s for one token
    1.6
    >>> bucket.take(30, now=0.0)  # once full (2.5 s): more than it holds waits for no more
    2.5
    >>> bucket.give(20, now=0.0); round(bucket.level, 1)
    5.0
    """

    __slots__ = ("_stamp", "capacity", "level", "per_second")

    def __init__(self, per_second: float, capacity: float, *, now: float | None = None) -> None:
        self.per_second = per_second
        self.capacity = capacity
        self.level = capacity
        self._stamp = time.monotonic() if now is None else now

    def _refill(self, now: float | None) -> float:
        now = time.monotonic() if now is None else now
        if now > self._stamp:
            self.level = min(self.capacity, self.level + (now - self._stamp) * self.per_second)
            self._stamp = now
        return now

    def wait(self, amount: float, *, now: float | None = None) -> float:
        """Seconds until ``amount`` may be taken (0.0: now); takes nothing."""
        self._refill(now)
        need = min(amount, self.capacity)
        if self.level >= need or amount <= 0:
            return 0.0
        return (need - self.level) / self.per_second

    def take(self, amount: float, *, now: float | None = None) -> float:
        """Take ``amount`` when the level holds it (0.0 returned); otherwise take nothing
        and return the seconds until it does."""
        wait = self.wait(amount, now=now)
        if wait == 0.0:
            self.level -= amount
        return wait

    def give(self, amount: float, *, now: float | None = None) -> None:
        """Return ``amount`` (a negative one charges more), never above ``capacity``."""
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)

    def cap(self, level: float, *, now: float | None = None) -> None:
        """Lower the level to ``level`` if it is above it (what the server says is left)."""
        self._refill(now)
        self.level = min(self.level, level)
