"""Execute runs in the application process: a bounded pool on a thread of its own.

The runs go on their own event loop (uvloop, as the CLI's), in a thread apart from the
API's loop, so a busy run never holds up ``/health`` or a request. At most ``max_runs``
execute at once. Each run goes through the batch core itself (`BatchRun`: mapping,
outputs, retries, rate limit, the aiohttp pool) into the run store as its sink
(`RunResults`, by `batch.run.drive` as every run with an output): results are written in
batches, each in one transaction with the run's progress and lease renewal
(`RunStore.write_results`), so a row is stored exactly once.

Leases: the executor claims runs no live instance holds, renews their leases with every
write and a heartbeat, and stops a run whose lease it lost (taken over after a stall, or
the run was cancelled or deleted). At a graceful stop the runs in flight are let go as
``interrupted``; at the next start (or on another instance) they continue after the rows
already stored. A killed instance's leases expire, then another instance takes them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from ..._sync import loop_factory
from ...batch import BatchRun
from ...batch.budget import usd
from ...batch.openai_batch_format import is_batch_input
from ...batch.run import Notices, drive
from ...batch.sources import read_in_thread
from ...errors import OpenAICompatError, redact
from ..connectors import ConnectorServices
from ..egress import DatabaseGuard, guarded_client_factory, guarded_pool
from ..http import ApiError
from ._inputs import RunInputError, open_input
from .placeholders import alias_row
from .sink import RunResults
from .store import Claimed, RunStore
from .stored import BudgetFrom

if TYPE_CHECKING:
    from ..metrics import AppMetrics

__all__ = ["RunExecutor", "instance_id"]

_log = logging.getLogger("openai_compat.app.runs")
# How long a thread holds the GIL while another waits for it. The API's thread waits while a
# run's thread computes; at Python's default 5 ms a /health answer (several hand-overs)
# could wait tens of milliseconds behind a busy run.
_SWITCH_INTERVAL_S = 0.001
# Rows read at a time when the run reads them itself (to fill placeholders).
_READ_CHUNK = 256


@dataclass(eq=False)  # kept in a set: each execution is itself
class _Active:
    claimed: Claimed
    batch: BatchRun | None = None
    sink: RunResults | None = None
    lost: bool = False
    task: asyncio.Task[None] | None = None

    def supersede(self) -> None:
        """Stop it for a newer execution of the same run id here: the results it keeps
        are written nowhere, since this instance holds that id again already (the run
        resumed, or on SQLite a new run given a deleted run's id: not their results)."""
        if self.sink is not None:
            self.sink.lost = True
        self.stop()

    def stop(self) -> None:
        self.lost = True
        if self.batch is not None:
            self.batch.abort()
        elif self.task is not None:
            self.task.cancel()


def _budget_left(claimed: Claimed) -> tuple[float | None, int | None, str | None]:
    """What is left of the run's budget: ``(max_cost, max_tokens, None)``, or a reason when
    it is spent. It counts from the last resume (``budget_from``), across restarts and
    take-overs, so an instance that continues a run never gets a fresh budget."""
    stored = claimed.stored
    base = stored.budget_from or BudgetFrom()
    # Money in exact decimals: a budget of $1.00 is spent by ten $0.10 rows.
    cost = usd(claimed.cost) - usd(base.cost)
    tokens = claimed.tokens - base.tokens
    max_cost, max_tokens = stored.max_cost, stored.max_tokens
    if max_cost is not None and cost >= usd(max_cost):
        return None, None, f"spent ${cost:.4f} of the max_cost budget of ${max_cost:.2f}"
    if max_tokens is not None and tokens >= max_tokens:
        return None, None, f"spent {tokens} tokens of the max_tokens budget of {max_tokens}"
    left_cost = float(usd(max_cost) - cost) if max_cost is not None else None
    left_tokens = max_tokens - tokens if max_tokens is not None else None
    return left_cost, left_tokens, None


def _budget_error(spent: str) -> str:
    return (
        f"the budget was spent ({spent}); the rows left were not started: resume continues "
        "them with a fresh budget"
    )


def instance_id() -> str:
    """This instance's lease owner name: host, process, and a random part."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunExecutor:
    """Claims runs and executes them on its own thread and event loop."""

    def __init__(
        self,
        store: RunStore,
        services: ConnectorServices,
        metrics: AppMetrics,
        data_dir: Path,
        *,
        max_runs: int,
        lease_s: float,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.services = services
        self.metrics = metrics
        self.data_dir = data_dir
        self.max_runs = max_runs
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = instance_id()
        # The execution that holds each run now; and every execution not finished yet,
        # which is what ``max_runs`` bounds (one stopped but still finishing its rows in
        # flight counts until it has).
        self._active: dict[int, _Active] = {}
        self._executions: set[_Active] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._chores: list[Callable[[], Awaitable[bool]]] = []
        self._chores_due: asyncio.Event | None = None

    def add_chore(self, chore: Callable[[], Awaitable[bool]]) -> None:
        """Run ``chore`` on the executor's loop at each poll, each wake and each run's end
        (before `start`). It returns True when it queued runs (they are claimed at once);
        its errors are logged, never raised. The chores go on a task of their own, so a
        long one never holds up the claiming of runs."""
        self._chores.append(chore)

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the executor thread (returns once its loop runs)."""
        if self.store.engine.dialect.name == "sqlite":
            # One instance per SQLite file: a run still marked running was this file's
            # previous process's, which is gone.
            self.store.release_all()
        sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL_S))
        self._thread = threading.Thread(target=self._thread_main, name="runs", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _thread_main(self) -> None:
        factory = loop_factory()
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(self._main())

    def wake(self) -> None:
        """Look for runs to claim now (a run was created or queued again)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)
                if self._chores_due is not None:
                    loop.call_soon_threadsafe(self._chores_due.set)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the runs in flight (stored rows stay; they continue at the next start)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def executing(self) -> list[int]:
        """The ids of the runs this instance executes now."""
        return list(self._active)

    # -- the loop --------------------------------------------------------------------------
    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._chores_due = asyncio.Event()
        self._ready.set()
        heartbeat = asyncio.create_task(self._heartbeat())
        chores = asyncio.create_task(self._do_chores()) if self._chores else None
        try:
            while not self._stopping.is_set():
                await self._claim_what_fits()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
        finally:
            heartbeat.cancel()
            if chores is not None:
                chores.cancel()
                await asyncio.gather(chores, return_exceptions=True)
            for active in list(self._executions):
                active.stop()
            tasks = [a.task for a in self._executions if a.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                released = await asyncio.to_thread(self.store.release, self.owner)
            except Exception as exc:
                _log.error("could not let go of the runs: %s", type(exc).__name__)
            else:
                if released:
                    _log.info("%d runs interrupted; they continue at the next start", released)

    async def _claim_what_fits(self) -> None:
        assert self._stopping is not None
        while len(self._executions) < self.max_runs and not self._stopping.is_set():
            try:
                claimed = await asyncio.to_thread(self.store.claim, self.owner, self.lease_s)
            except Exception as exc:
                _log.error("could not claim a run: %s", type(exc).__name__)
                return
            if claimed is None:
                return
            # A run cancelled and resumed at once may be claimed again while its previous
            # execution here still finishes: that one is stopped (it holds the run no
            # more), and the new one starts once it has ended, after the rows it stored.
            previous = self._active.get(claimed.id)
            if previous is not None:
                previous.supersede()
            active = _Active(claimed)
            self._active[claimed.id] = active
            self._executions.add(active)
            self.metrics.runs_executing.set(len(self._active))
            active.task = asyncio.create_task(
                self._execute(active, None if previous is None else previous.task)
            )

    async def _do_chores(self) -> None:
        assert self._chores_due is not None and self._wake is not None
        while True:
            self._chores_due.clear()
            queued = False
            for chore in self._chores:
                try:
                    queued = await chore() or queued
                except Exception as exc:  # a chore's failure never stops the executor
                    _log.error("a background chore failed: %s", type(exc).__name__)
            if queued:
                self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._chores_due.wait(), self.poll_s)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(max(0.2, self.lease_s / 3))
            ids = list(self._active)
            if not ids:
                continue
            try:
                held = await asyncio.to_thread(self.store.heartbeat, self.owner, ids, self.lease_s)
            except Exception as exc:
                _log.error("could not renew the run leases: %s", type(exc).__name__)
                continue
            for run_id in ids:
                active = self._active.get(run_id)
                if run_id not in held and active is not None:
                    # Cancelled, deleted, or taken over: stop sending its rows.
                    active.stop()

    async def _execute(self, active: _Active, after: asyncio.Task[None] | None = None) -> None:
        claimed = active.claimed
        try:
            if after is not None:
                await asyncio.gather(after, return_exceptions=True)
            try:
                status, error = await self._run(active)
            except asyncio.CancelledError:
                status, error = None, None
            except SQLAlchemyError as exc:
                # The database failed, not the run: it is let go as it is (its lease runs
                # out, then it continues here or on another instance).
                _log.error("run %d: the database failed: %s", claimed.id, type(exc).__name__)
                status, error = None, None
            except Exception as exc:  # a bug fails the run, never the executor
                _log.error("run %d failed: %s", claimed.id, type(exc).__name__)
                status, error = "failed", f"internal error ({type(exc).__name__})"
            if status is not None and not active.lost:
                await asyncio.to_thread(
                    self.store.finish,
                    claimed.id,
                    self.owner,
                    status,
                    error,
                    exact_total=status == "succeeded",
                )
        except Exception as exc:
            _log.error("run %d: could not record its end: %s", claimed.id, type(exc).__name__)
        finally:
            self._executions.discard(active)
            # Only its own entry: the run may be held by a newer execution already.
            if self._active.get(claimed.id) is active:
                del self._active[claimed.id]
            self.metrics.runs_executing.set(len(self._active))
            if self._wake is not None:
                self._wake.set()
            if self._chores_due is not None:
                self._chores_due.set()

    async def _run(self, active: _Active) -> tuple[str | None, str | None]:
        """Run it; ``(final status, error)``, or ``(None, None)`` when it was let go."""
        claimed = active.claimed
        stored = claimed.stored
        connector = await asyncio.to_thread(self.services.store.get, claimed.connector_id)
        if connector is None:
            return "failed", (
                f"the connector {claimed.connector_id} was deleted; runs need their connector"
            )
        try:
            config = await self.services.usable(self.services.raw_config(connector))
        except ApiError as exc:
            return "failed", f"the connector cannot be used: {exc.body['message']}"
        secrets = config.secrets
        max_cost, max_tokens, spent = _budget_left(claimed)
        if spent is not None:
            return "cancelled", _budget_error(spent)
        try:
            # Checked when the run was created; the connector may have changed since.
            spec = stored.run_spec(config, max_cost=max_cost, max_tokens=max_tokens)
        except OpenAICompatError as exc:
            return "failed", f"the run no longer fits its connector: {redact(str(exc), secrets)}"
        try:
            # Every connection to a database input is judged by today's policy.
            guard = DatabaseGuard(self.services.policy)
            rows = await asyncio.to_thread(
                open_input, stored, self.data_dir, self.store, self.services.cipher, guard
            )
        except RunInputError as exc:
            return "failed", redact(str(exc), secrets)
        if stored.placeholders and not is_batch_input(rows, None):
            rows = _aliased(rows, stored.placeholders)
        sink = RunResults(
            self.store,
            claimed,
            self.owner,
            self.lease_s,
            done=await asyncio.to_thread(self.store.done_keys, claimed.id),
            secrets=secrets,
            on_lost=active.stop,
            live=lambda figures: self.metrics.rows_per_s.set(figures["rows_per_s"]),
        )
        active.sink = sink
        try:
            batch = BatchRun(
                spec,
                rows,
                client=guarded_pool(self.services.policy, spec.concurrency),
                # A configuration with TLS or proxy options gets a client of its own:
                # guarded too, the proxy's address judged like the endpoint's.
                client_factory=guarded_client_factory(self.services.policy),
                on_notice=lambda message: _log.info("run %d: %s", claimed.id, message),
            )
        except OpenAICompatError as exc:
            return "failed", redact(str(exc), secrets)
        active.batch = batch
        if active.lost:
            return None, None
        return await self._consume(active, batch, sink, secrets)

    async def _consume(
        self, active: _Active, batch: BatchRun, sink: RunResults, secrets: tuple[str, ...]
    ) -> tuple[str | None, str | None]:
        connector_id = active.claimed.connector_id
        observe = self.metrics.observe_row
        error: str | None = None
        try:
            await drive(
                batch,
                sink,
                {"mode": "resume"},
                Notices(),
                shown=f"run {active.claimed.id}",
                on_result=lambda result: observe(
                    connector_id,
                    result.ok,
                    result.latency_ms,
                    result.attempts,
                    result.usage,
                    result.schema,
                ),
            )
        except OpenAICompatError as exc:
            # The input as a whole cannot be run (a key column the rows lack, ...), or the
            # database refused its results (`ResultsRefused`): let go, the run would be
            # claimed again and its rows sent again, forever; so it fails.
            error = redact(str(exc), secrets)
        if sink.lost:
            return None, None
        if error is not None:
            return "failed", error
        spent = batch.summary.budget_spent
        if spent is not None and not active.lost:
            for flag in ("max_cost", "max_tokens"):
                spent = spent.replace("--" + flag.replace("_", "-"), flag)
            return "cancelled", _budget_error(spent)
        if active.lost or batch.summary.interrupted:
            return None, None
        uncounted = batch.accounting.uncounted if batch.accounting is not None else []
        if uncounted:
            # Said in the run, not only in the log: its cost and budget missed some answers.
            return "succeeded", redact(
                "the run succeeded, but its cost could not be counted for every answer (a "
                f"budget cannot count them): {'; '.join(uncounted)}",
                secrets,
            )
        return "succeeded", None


async def _aliased(rows: Any, placeholders: dict[str, str]) -> AsyncIterator[Any]:
    """The rows (read in a worker thread, as the batch core reads a file or a query), each
    with its placeholders filled from the columns chosen for them."""
    async for chunk in read_in_thread(rows, _READ_CHUNK):
        for row in chunk:
            yield alias_row(row, placeholders) if isinstance(row, Mapping) else row
