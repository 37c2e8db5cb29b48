"""What the server says is left, kept between its answers: one per dimension (requests,
tokens).

An answer's ``remaining`` is what the server had left when it counted that request; what
this run sent after that request is taken from it (`sent`, a running total marked when
the request went). It refills at ``limit`` a minute (the limit is a rate), up to what the
headers imply the server holds: ``remaining + limit/60 * reset`` (a server that enforces
its minute over a shorter period holds less than the whole minute). Without a ``limit``
the refill is unknown: the account is forgotten once ``reset`` has passed. The run never
plans past what is left.
"""

from __future__ import annotations

import time

__all__ = ["ServerView"]

# However much others seem to spend, this run keeps a little of the refill to learn again
# from (a request now and then, whose answer says what is left).
_MOST_TO_OTHERS = 0.995


class ServerView:
    """The server's remaining requests (or tokens), as last said and spent since.

    >>> view = ServerView()
    >>> view.sent(5, now=0.0)  # a request of 5 reserved, then sent: its mark is 5
    >>> view.heard(remaining=100, limit=6000, reset_s=0.5, mark=5, now=0.0)
    >>> view.wait(1, now=0.0), view.level(now=0.0)
    (0.0, 100.0)
    >>> view.heard(remaining=0, limit=6000, reset_s=1.5, mark=5, now=0.0)
    >>> view.wait(1, now=0.0)  # 100 a second back: one in 10 ms
    0.01
    >>> view.level(now=10.0)  # the server holds 150 (1.5 s worth), no more
    150.0
    """

    __slots__ = (
        "_forget_at",
        "_heard_at",
        "_level",
        "_others",
        "_per_second",
        "_top",
        "limit",
        "total",
    )

    def __init__(self) -> None:
        self.total = 0.0  # everything this run has sent (the marks are positions in it)
        self.limit: float | None = None
        self._level: float | None = None
        self._per_second = 0.0
        self._top = 0.0
        self._heard_at = 0.0
        self._forget_at: float | None = None
        # What others spend of the same limit a second (another process on the same key),
        # learnt from how far each answer's remaining falls below this run's own account.
        self._others = 0.0

    def sent(self, amount: float, *, now: float | None = None) -> None:
        """Count ``amount`` sent now (a reservation)."""
        self.total += amount
        if self._level is not None:
            self._advance(now)
            self._level -= amount

    def _advance(self, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        if self._forget_at is not None and now >= self._forget_at:
            self._level = self._forget_at = None
        if self._level is not None and now > self._heard_at:
            gained = (now - self._heard_at) * self._per_second
            self._level = max(self._level, min(self._top, self._level + gained))
            self._heard_at = now

    def heard(
        self,
        *,
        remaining: float,
        limit: float | None,
        reset_s: float | None,
        mark: float,
        now: float | None = None,
        refused: float = 0.0,
    ) -> None:
        """An answer said ``remaining``; ``mark`` was `total` when its request went.
        ``refused``: what the run counted for this request when the server refused it (it
        did not count it, so that is no one else's spending)."""
        now = time.monotonic() if now is None else now
        if limit is not None:
            self.limit = limit
        self._forget_at = None
        level = remaining - (self.total - mark)
        if self._level is not None and self.limit is not None:
            elapsed = now - self._heard_at
            self._advance(now)
            if elapsed > 0:
                # The shortfall against the refill this account assumed is others' spending.
                # A refusal is learnt from at once (another one would follow), an answer
                # gradually (its shortfall is partly the timing of the two runs' requests).
                missing = (self._level + refused - level) / max(elapsed, 0.05)
                weight = 1.0 if refused else 0.2
                self._others = min(
                    self.limit / 60.0 * _MOST_TO_OTHERS,
                    max(0.0, self._others + weight * missing),
                )
        if self.limit is not None:
            self._per_second = self.limit / 60.0 - self._others
            self._top = self.limit
            if reset_s is not None:  # what the server holds, whoever spends it
                self._top = min(self.limit, remaining + self.limit / 60.0 * reset_s)
        else:
            self._per_second = 0.0
            self._top = remaining
            self._forget_at = now + (reset_s if reset_s is not None else 60.0)
        self._level = level
        self._heard_at = now

    def level(self, *, now: float | None = None) -> float | None:
        """What is left by the last answer's account (None: no answer said)."""
        self._advance(now)
        return self._level

    def wait(self, amount: float, *, now: float | None = None) -> float:
        """Seconds until the server has room for ``amount`` (0.0: now); more than it holds
        waits for it to be full."""
        level = self.level(now=now)
        need = min(amount, self._top)
        if level is None or level >= need or amount <= 0:
            return 0.0
        if self._per_second <= 0:  # no refill known: until the account is forgotten
            return 1.0 if self._forget_at is None else max(0.0, self._forget_at - time.monotonic())
        return (need - level) / self._per_second
