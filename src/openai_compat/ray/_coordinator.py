"""One rate limit and one 429 pause for a whole Ray job: a small actor and its clients.

`Coordinator` is a Ray actor (no CPU of its own) holding the job's token bucket, the pause a
429 asked for, the counts of finished rows (for the driver's progress) and the PIDs of the
UDF actors. Each UDF actor's `ClusterScheduler` takes tokens from it in small leases (about
50 ms of the job's rate, so an actor never sits on much of the budget) and asks again at
least every quarter second, which is also how it learns of a pause that another actor met.
The bucket holds one second's worth, as the local run's limiter does.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Any

import ray

from ..batch.results import BatchSummary
from ..batch.scheduler import Rate, Scheduler

__all__ = ["ClusterScheduler", "Coordinator", "coordinator_for"]

_CHECK_EVERY_S = 0.25
_LEASE_S = 0.05


class _Bucket:
    """The job's token bucket and pause; plain Python, so it is tested without Ray."""

    def __init__(self, per_second: float | None) -> None:
        self.per_second = per_second
        self.capacity = max(1.0, per_second) if per_second else math.inf
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.resume_at = 0.0

    def lease(self, wanted: int) -> tuple[int, float, float]:
        """``(granted, wait_s, paused_s)``: tokens now, else how long until the next one."""
        now = time.monotonic()
        paused = self.resume_at - now
        if paused > 0:
            return 0, paused, paused
        if self.per_second is None:
            return wanted, 0.0, 0.0
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        wait = 0.0 if granted else (1.0 - self.tokens) / self.per_second
        return granted, wait, 0.0

    def pause(self, seconds: float) -> None:
        self.resume_at = max(self.resume_at, time.monotonic() + seconds)


class _CoordinatorImpl:
    def __init__(self, per_second: float | None) -> None:
        self._bucket = _Bucket(per_second)
        self._counts: dict[str, int] = {"ok": 0, "failed": 0, "requests": 0, "tokens": 0}
        self._pids: set[int] = set()
        self._pauses = 0

    def lease(self, wanted: int) -> tuple[int, float, float]:
        return self._bucket.lease(wanted)

    def pause(self, seconds: float) -> None:
        if self._bucket.resume_at <= time.monotonic():
            self._pauses += 1
        self._bucket.pause(seconds)

    def report(self, ok: int, failed: int, requests: int, tokens: int) -> None:
        counts = self._counts
        counts["ok"] += ok
        counts["failed"] += failed
        counts["requests"] += requests
        counts["tokens"] += tokens

    def register(self, pid: int) -> None:
        self._pids.add(pid)

    def state(self) -> dict[str, Any]:
        return {**self._counts, "pids": sorted(self._pids), "pauses": self._pauses}


# A Ray actor: needs no CPU (it only answers small calls), so it fits on a full cluster.
Coordinator = ray.remote(num_cpus=0, max_restarts=-1)(_CoordinatorImpl)


def coordinator_for(rate: Rate | None, name: str | None = None) -> Any:
    """The job's coordinator actor: a new one, or the one named ``name`` (made if missing)."""
    per_second = rate.per_second if rate is not None else None
    if name is None:
        return Coordinator.remote(per_second)
    return Coordinator.options(name=name, get_if_exists=True).remote(per_second)


class ClusterScheduler(Scheduler):
    """The `Scheduler` of one UDF actor: tokens and pauses from the job's `Coordinator`.

    The local pause logic is the base class's; a pause met here (a 429) is also sent to the
    coordinator, and one the coordinator knows of is taken on here.
    """

    def __init__(self, coordinator: Any, rate: Rate | None, concurrency: int) -> None:
        super().__init__(None)
        self.rate = rate
        self._coordinator = coordinator
        per_second = rate.per_second if rate is not None else None
        self._lease = (
            concurrency
            if per_second is None
            else max(1, min(concurrency, int(per_second * _LEASE_S)))
        )
        self._tokens = 0
        self._checked = 0.0
        self._asking: asyncio.Lock | None = None

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self._coordinator.pause.remote(seconds)

    async def ready(self) -> None:
        while True:
            await super().ready()
            if self._tokens > 0 and time.monotonic() - self._checked < _CHECK_EVERY_S:
                self._tokens -= 1
                return
            await self._ask()

    async def _ask(self) -> None:
        if self._asking is None:
            self._asking = asyncio.Lock()
        async with self._asking:
            if self._tokens > 0 and time.monotonic() - self._checked < _CHECK_EVERY_S:
                return  # another row asked meanwhile
            wanted = 0 if self._tokens > 0 else self._lease
            granted, wait, paused = await self._coordinator.lease.remote(wanted)
            self._checked = time.monotonic()
            if paused > 0:
                Scheduler.pause(self, paused)  # learnt from another actor: not sent back
            self._tokens += granted
            if not granted and not self._tokens and wait > 0:
                await asyncio.sleep(wait)

    def report(self, summary: BatchSummary) -> None:
        """Send one batch's counts to the coordinator (for the driver's progress)."""
        self._coordinator.report.remote(
            summary.ok, summary.failed, summary.requests, summary.total_tokens
        )

    def register(self) -> None:
        """Tell the coordinator this actor's PID (the tests kill one to prove retries)."""
        self._coordinator.register.remote(os.getpid())
