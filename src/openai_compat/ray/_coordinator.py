"""One rate limit and one 429 pause for a whole Ray job: a small actor and its clients.

`Coordinator` is a Ray actor (no CPU of its own) holding the job's token bucket, the pause a
429 asked for, the keys each run has claimed (`_Claims`: keys unique across the dataset),
the counts of finished rows and the PIDs of the UDF actors. Each UDF actor's
`ClusterScheduler` takes tokens from it in small leases (about 50 ms of the job's rate, so
an actor never sits on much of the budget) and asks again at least every quarter second,
which is also how it learns of a pause that another actor met. The bucket holds one
second's worth, as the local run's limiter does.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from array import array
from bisect import bisect_left
from typing import Any

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import ray

from ..batch.engines import EngineJobError
from ..batch.results import BatchSummary
from ..batch.scheduler import Rate, Scheduler
from ._schema_mode import ModeDecisions

__all__ = [
    "ClusterScheduler",
    "Coordinator",
    "CoordinatorLost",
    "coordinator_for",
    "kept_coordinator",
]

_CHECK_EVERY_S = 0.25
_LEASE_S = 0.05
# A call to the coordinator not answered in this long is asked again (its node may be gone,
# the actor restarting on another one); one unanswered this long in all fails the rows left.
_CALL_TIMEOUT_S = 10.0
_RETRY_S = 0.5
_GIVE_UP_S = 120.0
# The keys of a run are kept until no batch of it has come for this long.
_FORGET_RUN_S = 3600.0


class CoordinatorLost(EngineJobError):
    """The job's coordinator gave no lease for too long: rows are no longer sent."""


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


class _Claims:
    """Which row claimed each key of the job, in about 12 bytes a key (a Python dict of the
    key strings: about 100).

    A key is held as a 64-bit digest, in one of 16,384 buckets (its low bits), each a sorted
    ``array('Q')``, beside a 32-bit digest of the row that claimed it (``array('I')``). A
    key claimed again by the same row (its task retried after a worker died) is that row's;
    by another row, a duplicate. Two keys sharing a 64-bit digest (about one chance in 10**5
    for ten million keys) would make the later one a duplicate; a duplicate whose row shares
    the 32-bit digest of the first one would pass as a retry (and its answer be written once).
    """

    _BITS = 14

    def __init__(self) -> None:
        self._keys: list[array[int] | None] = [None] * (1 << self._BITS)
        self._rows: list[array[int] | None] = [None] * (1 << self._BITS)
        self.count = 0

    def claim(self, keys: bytes, rows: bytes) -> list[int]:
        """The positions of ``keys`` (64-bit digests) claimed before by another row."""
        key_digests, row_digests = array("Q", keys), array("I", rows)
        mask = (1 << self._BITS) - 1
        taken: list[int] = []
        for position, (key, row) in enumerate(zip(key_digests, row_digests, strict=True)):
            bucket = key & mask
            held, by = self._keys[bucket], self._rows[bucket]
            if held is None or by is None:
                held = self._keys[bucket] = array("Q")
                by = self._rows[bucket] = array("I")
            at = bisect_left(held, key)
            if at < len(held) and held[at] == key:
                if by[at] != row:
                    taken.append(position)
                continue
            held.insert(at, key)
            by.insert(at, row)
            self.count += 1
        return taken


class _CoordinatorImpl:
    def __init__(self, per_second: float | None, tokens_per_second: float | None = None) -> None:
        self._bucket = _Bucket(per_second)
        # The job's token bucket (``token_rate``): actors lease tokens from it as requests.
        self._tokens = _Bucket(tokens_per_second)
        self._claims: dict[str, tuple[_Claims, float]] = {}
        self._counts: dict[str, int] = {"ok": 0, "failed": 0, "requests": 0, "tokens": 0}
        self._pids: set[int] = set()
        self._pauses = 0
        # The schema mode ``auto`` chose for each run, decided once per job.
        self._modes = ModeDecisions()

    def lease(self, wanted: int) -> tuple[int, float, float]:
        return self._bucket.lease(wanted)

    def lease_tokens(self, wanted: int) -> tuple[int, float, float]:
        """Tokens of the job's token rate, as `lease` gives requests."""
        granted, wait, _ = self._tokens.lease(wanted)
        return granted, wait, 0.0

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

    def claim(self, run: str, keys: bytes, rows: bytes) -> list[int]:
        now = time.monotonic()
        for old in [r for r, (_, used) in self._claims.items() if now - used > _FORGET_RUN_S]:
            del self._claims[old]  # a run of this driver that has long been over
        claims = self._claims[run][0] if run in self._claims else _Claims()
        self._claims[run] = (claims, now)
        return claims.claim(keys, rows)

    def ask_schema_mode(self, run: str, who: str) -> tuple[str, str | None]:
        """`ModeDecisions.ask`: the run's ``auto`` mode, or whether ``who`` decides it."""
        return self._modes.ask(run, who)

    def report_schema_mode(self, run: str, who: str, mode: str | None) -> None:
        """`ModeDecisions.report`: the mode ``who`` chose (None: it gives the turn back)."""
        self._modes.report(run, who, mode)

    def register(self, pid: int) -> None:
        self._pids.add(pid)

    def state(self) -> dict[str, Any]:
        return {**self._counts, "pids": sorted(self._pids), "pauses": self._pauses}


# A Ray actor: needs no CPU (it only answers small calls), so it fits on a full cluster.
Coordinator = ray.remote(num_cpus=0, max_restarts=-1)(_CoordinatorImpl)


def coordinator_for(
    rate: Rate | None, name: str | None = None, token_rate: Rate | None = None
) -> Any:
    """The job's coordinator actor: a new one, or the one named ``name`` (made if missing)."""
    per_second = rate.per_second if rate is not None else None
    tokens = token_rate.per_second if token_rate is not None else None
    if name is None:
        return Coordinator.remote(per_second, tokens)
    return Coordinator.options(name=name, get_if_exists=True).remote(per_second, tokens)


# This driver's coordinators, by cluster, endpoint and rate: a later run reuses the one up
# already instead of starting a worker process for it (seconds on a busy machine).
_KEPT: dict[tuple[str, str, float | None, float | None], Any] = {}


def kept_coordinator(rate: Rate | None, url: str, token_rate: Rate | None = None) -> Any:
    """The coordinator of this driver's runs against ``url`` at ``rate`` (made on first use).

    Runs one after another share it: the bucket refills between them as it would across
    one long run, and a 429's pause holds for every run against that endpoint. It lives on
    the driver's node.
    """
    per_second = rate.per_second if rate is not None else None
    tokens = token_rate.per_second if token_rate is not None else None
    node = ray.get_runtime_context().get_node_id()
    key = (node, url, per_second, tokens)
    for stale in [k for k in _KEPT if k[0] != node]:
        del _KEPT[stale]  # of a cluster this driver left
    if key not in _KEPT:
        # On the driver's node: a worker node lost takes the run's actors there, never the
        # job's rate limit and keys with them (the driver's node lost ends the job anyway).
        here = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
        _KEPT[key] = Coordinator.options(scheduling_strategy=here).remote(per_second, tokens)
    return _KEPT[key]


class ClusterScheduler(Scheduler):
    """The `Scheduler` of one UDF actor: tokens and pauses from the job's `Coordinator`.

    The local pause logic is the base class's; a pause met here (a 429) is also sent to the
    coordinator, and one the coordinator knows of is taken on here. A lease not answered
    (the coordinator's node lost, the actor restarting on another) is asked for again; after
    ``give_up_s`` without one, `ready` raises `CoordinatorLost` (each row then fails with it,
    rather than the run waiting forever).
    """

    def __init__(
        self,
        coordinator: Any,
        rate: Rate | None,
        concurrency: int,
        *,
        give_up_s: float = _GIVE_UP_S,
    ) -> None:
        super().__init__(None)
        self.give_up_s = give_up_s
        self.rate = rate
        self._coordinator = coordinator
        self.coordinator = coordinator  # the job's coordinator actor (its keys, its counts)
        per_second = rate.per_second if rate is not None else None
        self._lease = (
            concurrency
            if per_second is None
            else max(1, min(concurrency, int(per_second * _LEASE_S)))
        )
        self._tokens = 0
        self._checked = 0.0
        self._asking: asyncio.Lock | None = None
        self._checking: asyncio.Future[None] | None = None
        self._unanswered_since: float | None = None

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self._coordinator.pause.remote(seconds)

    async def ready(self) -> None:
        if self.rate is None:
            await self._ready_unlimited()
            return
        while True:
            await super().ready()
            if self._tokens > 0 and time.monotonic() - self._checked < _CHECK_EVERY_S:
                self._tokens -= 1
                return
            await self._ask()

    async def _ready_unlimited(self) -> None:
        """Without a rate there are no tokens to wait for, only a pause to learn of.

        The rows never wait for the coordinator (its process may still be starting, and on
        a busy machine a round trip takes a while): every quarter second one check goes in
        the background, and a pause met by another actor holds here from its answer on.
        """
        await super().ready()
        if self._checking is None and time.monotonic() - self._checked >= _CHECK_EVERY_S:
            self._checking = asyncio.ensure_future(self._check())

    async def _check(self) -> None:
        try:
            _, _, paused = await asyncio.wait_for(
                self._coordinator.lease.remote(0), _CALL_TIMEOUT_S
            )
            if paused > 0:
                Scheduler.pause(self, paused)  # learnt from another actor: not sent back
        except Exception:
            pass  # the coordinator is restarting: the next check asks again
        finally:
            self._checked = time.monotonic()
            self._checking = None

    async def _ask(self) -> None:
        if self._asking is None:
            self._asking = asyncio.Lock()
        async with self._asking:
            if self._tokens > 0 and time.monotonic() - self._checked < _CHECK_EVERY_S:
                return  # another row asked meanwhile
            wanted = 0 if self._tokens > 0 else self._lease
            try:
                granted, wait, paused = await asyncio.wait_for(
                    self._coordinator.lease.remote(wanted), _CALL_TIMEOUT_S
                )
            except Exception as exc:  # its node lost, the actor restarting elsewhere
                self._unanswered(exc)
                await asyncio.sleep(_RETRY_S)
                return
            self._unanswered_since = None
            self._checked = time.monotonic()
            if paused > 0:
                Scheduler.pause(self, paused)  # learnt from another actor: not sent back
            self._tokens += granted
            if not granted and not self._tokens and wait > 0:
                await asyncio.sleep(wait)

    def _unanswered(self, exc: Exception) -> None:
        """Note a lease the coordinator did not give; raise once it has given none for
        ``give_up_s`` (the row then fails with the reason, and so do the rows after it)."""
        now = time.monotonic()
        if self._unanswered_since is None:
            self._unanswered_since = now
        silent = now - self._unanswered_since
        if silent >= self.give_up_s:
            raise CoordinatorLost(
                f"the job's rate coordinator has not answered for {silent:.0f} s "
                f"({type(exc).__name__}): its node may be lost; the rows left are not sent "
                "(--resume sends them)"
            )

    def report(self, summary: BatchSummary) -> None:
        """Send one batch's counts to the coordinator (for the driver's progress)."""
        self._coordinator.report.remote(
            summary.ok, summary.failed, summary.requests, summary.total_tokens
        )

    def register(self) -> None:
        """Tell the coordinator this actor's PID (the tests kill one to prove retries)."""
        self._coordinator.register.remote(os.getpid())


class ClusterTokens:
    """The job's token bucket as one UDF actor sees it: tokens leased from the coordinator.

    It answers as the governor's own `Bucket` does (`wait`, `take`, `give`), from a local
    stash that a background lease refills (about 50 ms of the job's token rate at a time,
    so no actor sits on much of it). What a settled request did not use stays in the stash,
    for this actor's next requests; an overrun is taken from it (it may go below zero, and
    the next lease pays the debt first).
    """

    def __init__(self, coordinator: Any, token_rate: Rate) -> None:
        self._coordinator = coordinator
        self.per_second = token_rate.per_second
        self.capacity = max(1.0, self.per_second)
        self._lease = max(1, int(self.per_second * _LEASE_S))
        self.level = 0.0
        self._asking: asyncio.Task[None] | None = None
        self._retry_at = 0.0

    def wait(self, amount: float, *, now: float | None = None) -> float:
        """Seconds to wait before asking again (0.0: the stash holds ``amount`` now)."""
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._ask(need - self.level))
        return 0.01

    async def _ask(self, short: float) -> None:
        try:
            # Room for the request waiting and the next few (a request is often more than
            # 50 ms of the job's tokens): one round trip a few requests, not one each.
            wanted = max(self._lease, math.ceil(short) * 4)
            granted, wait, _ = await asyncio.wait_for(
                self._coordinator.lease_tokens.remote(wanted), _CALL_TIMEOUT_S
            )
            self.level += granted
            if not granted and wait > 0:
                await asyncio.sleep(min(wait, _CHECK_EVERY_S))
        except Exception:  # the coordinator is restarting: the next wait asks again
            await asyncio.sleep(_RETRY_S)
        finally:
            self._asking = None

    def take(self, amount: float, *, now: float | None = None) -> float:
        """Take ``amount`` from the stash (after `wait` said it holds it)."""
        self.level -= amount
        return 0.0

    def give(self, amount: float, *, now: float | None = None) -> None:
        """Return ``amount`` to the stash (a negative one charges more)."""
        self.level += amount
