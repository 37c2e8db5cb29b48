"""`Governor`: the one place a run asks before each request goes, and tells what came back.

It holds, for the whole run: the run's `Scheduler` (the request rate and the pause every
worker keeps after a 429 or 503), the token bucket of ``token_rate``, the server's own
account of what is left (`ServerView`, from the ``x-ratelimit-*`` headers of every answer)
and, with ``concurrency="auto"``, the `AdaptiveLimit`. A request is admitted when all of
them have room: a place under the concurrency limit, then the pause and the request rate,
then its estimated tokens (`estimate_tokens`) in the bucket and, while the server has said
what is left, in the server's account. Its answer settles the reservation against the usage
it reports (the unused part given back, an overrun charged).

Cached input tokens count in full, as OpenAI counts them ("cached prompts contribute to TPM
rate limits", OpenAI's prompt caching guide): the usage's total, which includes them.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Mapping
from typing import Any

from ...retries import parse_retry_after
from ..scheduler import Rate, Scheduler
from ._adaptive import AdaptiveLimit
from ._bucket import Bucket, TokenSource
from ._estimate import DEFAULT_OUTPUT_TOKENS, estimate_tokens
from ._headers import RateLimitHeaders
from ._server_view import ServerView

__all__ = ["OVERLOAD_STATUSES", "Governor", "Ticket"]

OVERLOAD_STATUSES = frozenset({429, 503})
"""Answers that say the server is over its limit or capacity: they pause the run for their
``Retry-After`` and cut an adaptive concurrency limit."""


class Ticket:
    """A request's admission: the tokens reserved for it (settled by `Governor.settle`)."""

    __slots__ = ("attempts", "holds_slot", "settled", "tokens")

    def __init__(self, tokens: int, *, holds_slot: bool = True) -> None:
        self.tokens = tokens
        self.settled = False
        self.attempts = 0
        # False for a request of a row that already holds its place in flight (a re-ask).
        self.holds_slot = holds_slot


# The row's ticket, for its attempts: the transport runs in the task that admitted it, and
# a retry must find room in the server's account again (its first try was refused).
_TICKET: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar(
    "openai_compat_ticket", default=None
)


class Governor:
    """Rate, tokens, the server's headers, the pause and the concurrency of one run.

    >>> governor = Governor(Scheduler(None), token_rate=Rate(6000, 60.0))
    >>> problem = governor.admit_now({"messages": [], "max_tokens": 200_000})
    >>> problem.startswith("not sent: it needs about 200000 tokens")
    True
    >>> "more than the whole token rate of 6000/minute" in problem
    True
    """

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        token_rate: Rate | None = None,
        adaptive: AdaptiveLimit | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.token_rate = token_rate
        self.adaptive = adaptive
        # ``tokens``: the bucket of ``token_rate`` when it is held elsewhere (a Ray job's
        # coordinator); by default one of the run's own.
        self.tokens: TokenSource | None = tokens
        if token_rate is not None and tokens is None:
            per_second = token_rate.per_second
            # One second's worth, as the request limiter: a burst the server absorbs.
            self.tokens = Bucket(per_second, max(per_second, 1.0))
        self.requests_view = ServerView()
        self.tokens_view = ServerView()
        self.overloads = 0
        # With a token rate, the run's first request goes alone: until an answer has told
        # what the server has left, a burst of the whole concurrency could be refused at once.
        self._first_answer: asyncio.Event | None = None

    @property
    def concurrency_limit(self) -> int | None:
        """The adaptive concurrency limit now (None: a fixed concurrency)."""
        return None if self.adaptive is None else self.adaptive.limit

    def _too_large(self, tokens: int) -> str | None:
        if self.token_rate is not None and tokens > self.token_rate.per_second * 60:
            whole = f"the whole token rate of {self.token_rate}"
        elif self.tokens_view.limit is not None and tokens > self.tokens_view.limit:
            whole = f"the server's whole limit of {self.tokens_view.limit:g} tokens a minute"
        else:
            return None
        return (
            f"not sent: it needs about {tokens} tokens (by the estimate of its text and "
            f"max_tokens), more than {whole}: raise the token rate or lower its max_tokens"
        )

    def _counts_tokens(self) -> bool:
        return self.tokens is not None or self.tokens_view.limit is not None

    def admit_now(self, payload: Mapping[str, Any]) -> str | None:
        """Why ``payload`` can never be sent under the limits (None: it can)."""
        if not self._counts_tokens():
            return None
        return self._too_large(estimate_tokens(payload))

    async def admit(
        self,
        payload: Mapping[str, Any],
        *,
        default_output: int = DEFAULT_OUTPUT_TOKENS,
        slot: bool = True,
    ) -> Ticket | str:
        """Wait until ``payload`` may go and reserve for it; or say why it never may.

        ``default_output``: the output tokens reserved when the payload names no maximum (0
        for embeddings). ``slot=False``: a further request of a row that holds its place in
        flight already (a re-ask): tokens and the request rate, not another place.
        """
        tokens = estimate_tokens(payload, default_output) if self._counts_tokens() else 0
        problem = self._too_large(tokens) if tokens else None
        if problem is not None:
            return problem
        slot = slot and self.adaptive is not None
        if slot:
            assert self.adaptive is not None
            await self.adaptive.acquire()
        try:
            if self.tokens is None:
                pass  # tokens not limited: no first request alone (it costs an answer's time)
            elif self._first_answer is None:
                self._first_answer = asyncio.Event()
            elif not self._first_answer.is_set():
                await self._first_answer.wait()
            await self._wait_for_room(tokens)
        except BaseException:
            if slot:
                assert self.adaptive is not None
                self.adaptive.release()
            raise
        ticket = Ticket(tokens, holds_slot=slot)
        _TICKET.set(ticket)
        return ticket

    async def _wait_for_room(self, tokens: int, *, again: bool = False) -> None:
        """Wait for the pause, the request rate (not for a retry: its request was taken),
        the run's token bucket (not for a retry: its reservation holds) and the server's
        account; then count the request sent."""
        scheduler = self.scheduler
        while True:
            if again:
                await self.gate()
            else:
                await scheduler.ready()  # the pause, and the request rate (one request taken)
            while True:
                now = time.monotonic()
                wait = self.requests_view.wait(1, now=now)
                if tokens:
                    wait = max(wait, self.tokens_view.wait(tokens, now=now))
                    if self.tokens is not None and not again:
                        wait = max(wait, self.tokens.wait(tokens, now=now))
                if wait <= 0 or scheduler.paused_for > 0:
                    break
                await asyncio.sleep(wait)
            if scheduler.paused_for <= 0:
                break
        now = time.monotonic()
        self.requests_view.sent(1, now=now)
        if tokens:
            self.tokens_view.sent(tokens, now=now)
            if self.tokens is not None and not again:
                self.tokens.take(tokens, now=now)

    def settle(self, ticket: Ticket, usage_tokens: int | None, status: int | None) -> None:
        """The request is over: give back its place, and settle its reserved tokens against
        ``usage_tokens`` (the answer's usage; None: not said). A request the server refused
        (an error ``status`` without usage) is given back whole; one with no answer at all
        (a timeout) stays charged, since the server may have counted it."""
        if ticket.settled:
            return
        ticket.settled = True
        if self.adaptive is not None and ticket.holds_slot:
            self.adaptive.release()
        if self.tokens is None or not ticket.tokens:
            return
        if usage_tokens is not None:
            self.tokens.give(ticket.tokens - usage_tokens)
        elif status is not None:
            self.tokens.give(ticket.tokens)

    # -- what the transport sees, attempt by attempt ------------------------------------------
    async def gate(self) -> None:
        """Before every attempt (retries too): wait out the run's pause."""
        while (wait := self.scheduler.paused_for) > 0:
            await asyncio.sleep(wait)

    async def attempt(self) -> None:
        """Before each attempt: the pause; a retry also waits for room in the server's
        account (its reservation in the run's own buckets still holds: a refused request
        is not counted by the server)."""
        ticket = _TICKET.get()
        if ticket is not None:
            ticket.attempts += 1
            if ticket.attempts > 1:
                await self._wait_for_room(ticket.tokens, again=True)
                return
        await self.gate()

    def heard_first(self) -> None:
        """An answer (or a failure) of the run came: the requests held behind the first go."""
        if self._first_answer is not None and not self._first_answer.is_set():
            self._first_answer.set()

    def marks(self) -> tuple[float, float]:
        """Where the run's sent totals stand as a request goes (for `answered`)."""
        return self.requests_view.total, self.tokens_view.total

    def answered(
        self,
        status: int,
        headers: Mapping[str, str],
        marks: tuple[float, float],
        latency_s: float,
    ) -> None:
        """One answer's status and headers, and how long it took to come."""
        said = RateLimitHeaders.parse(headers)
        if said is not None:
            now = time.monotonic()
            refused = status in OVERLOAD_STATUSES
            ticket = _TICKET.get() if refused else None
            refused_tokens = float(ticket.tokens) if ticket is not None else 0.0
            if said.remaining_requests is not None:
                self.requests_view.heard(
                    remaining=said.remaining_requests,
                    limit=said.limit_requests,
                    reset_s=said.reset_requests_s,
                    mark=marks[0],
                    now=now,
                    refused=1.0 if refused else 0.0,
                )
            if said.remaining_tokens is not None:
                self.tokens_view.heard(
                    remaining=said.remaining_tokens,
                    limit=said.limit_tokens,
                    reset_s=said.reset_tokens_s,
                    mark=marks[1],
                    now=now,
                    refused=refused_tokens,
                )
        if status in OVERLOAD_STATUSES:
            wait = parse_retry_after(headers)
            if wait is not None and wait > 0:
                self.scheduler.pause(wait)
            self.overloaded()
        elif 200 <= status < 300 and self.adaptive is not None:
            self.adaptive.record(latency_s)

    def overloaded(self) -> None:
        """A 429, a 503 or a timeout: an adaptive limit backs off."""
        self.overloads += 1
        if self.adaptive is not None:
            self.adaptive.overloaded()
