"""``auto`` schema mode decided once per Ray job, not once per batch.

A local run's `Structured` chooses the mode with its first row and every other row waits
for it. A Ray job's batches each build a run of their own, so each would probe the refused
or ignored modes again. Instead the job's coordinator keeps the decision (`ModeDecisions`):
the first batch to ask becomes the decider and runs under ``auto`` (its first row probes,
as a local run's does); the others wait for the mode it reports (`job_mode`), then run in
that mode without a probe. A decider that ends without a mode (every row failed before the
server answered) gives the turn back; one that is gone (its actor died) loses it after
`DECIDER_LEASE_S`, so a job never waits on a dead actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

__all__ = ["DECIDER_LEASE_S", "BatchMode", "ModeDecisions", "job_mode"]

DECIDER_LEASE_S = 120.0
_POLL_S = 0.25
_FORGET_S = 3600.0


class ModeDecisions:
    """The mode of each run (by run id), or who is deciding it; plain Python, so it is
    tested without Ray.

    >>> d = ModeDecisions()
    >>> d.ask("run", "a"), d.ask("run", "b")
    (('decide', None), ('wait', None))
    >>> d.report("run", "a", "tools"); d.ask("run", "b")
    ('mode', 'tools')
    """

    def __init__(self) -> None:
        self._modes: dict[str, tuple[str, float]] = {}
        self._deciders: dict[str, tuple[str, float]] = {}

    def ask(self, run: str, who: str) -> tuple[str, str | None]:
        """``("mode", mode)`` once decided; ``("decide", None)``: ``who`` decides (no one
        else is, or the one who was has been silent too long); else ``("wait", None)``."""
        now = time.monotonic()
        for old in [r for r, (_, at) in self._modes.items() if now - at > _FORGET_S]:
            del self._modes[old]  # a run of this driver that has long been over
        decided = self._modes.get(run)
        if decided is not None:
            return "mode", decided[0]
        holder = self._deciders.get(run)
        if holder is None or holder[0] == who or now - holder[1] > DECIDER_LEASE_S:
            self._deciders[run] = (who, now)
            return "decide", None
        return "wait", None

    def report(self, run: str, who: str, mode: str | None) -> None:
        """``who``'s decision: the run's mode, or None to give the turn back."""
        holder = self._deciders.get(run)
        if mode is not None:
            self._modes.setdefault(run, (mode, time.monotonic()))
            self._deciders.pop(run, None)
        elif holder is not None and holder[0] == who:
            del self._deciders[run]


async def job_mode(coordinator: Any, run: str, who: str) -> str | None:
    """The job's mode for this batch: a mode decided by another batch, or None when this
    batch decides (it runs under ``auto`` and reports what it chose). Waits while another
    batch is deciding."""
    while True:
        verdict, mode = await coordinator.ask_schema_mode.remote(run, who)
        if verdict == "mode":
            return str(mode)
        if verdict == "decide":
            return None
        await asyncio.sleep(_POLL_S)


class BatchMode:
    """One batch's part in the job's decision: `start` gives the mode to run in (None:
    this batch decides under ``auto``); `seen` reports the mode as soon as its run chose
    it; `finish` gives the turn back if it never did. Without a coordinator (or with one
    that no longer answers) the batch decides for itself, as before."""

    def __init__(self, coordinator: Any, run: str | None) -> None:
        self._coordinator = coordinator if run is not None else None
        self._run = run or ""
        self._who = uuid.uuid4().hex
        self._deciding = False

    async def start(self) -> str | None:
        if self._coordinator is None:
            return None
        try:
            mode = await job_mode(self._coordinator, self._run, self._who)
        except Exception:  # the coordinator is gone for good: this batch decides alone
            self._coordinator = None
            return None
        self._deciding = mode is None
        return mode

    async def seen(self, mode: str | None) -> None:
        if self._deciding and mode is not None:
            await self._report(mode)

    async def finish(self, mode: str | None) -> None:
        if self._deciding:
            await self._report(mode)

    async def _report(self, mode: str | None) -> None:
        self._deciding = False
        coordinator = self._coordinator
        if coordinator is None:
            return
        with contextlib.suppress(Exception):  # lost: the decider's lease runs out instead
            await coordinator.report_schema_mode.remote(self._run, self._who, mode)
