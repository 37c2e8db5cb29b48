"""The run store as a run's sink: results written with the run's progress while it is held.

`RunResults` is the application's `ResultSink`: the results a run makes are kept as the
lines a command-line run writes (an echoed secret redacted), counted as every run counts
them, and written to the database every ``_FLUSH_ROWS`` results or ``_FLUSH_S`` seconds, in
one transaction with the run's progress, live figures and lease
(`RunStore.write_results`). Once a write finds the run no longer held (cancelled, deleted,
or taken over after a stall) nothing more is written and ``on_lost`` stops the run; a write
the database refuses (`ResultsRefused`) is raised, and nothing more is written either.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...batch.budget import usd
from ...batch.keys import key_token
from ...batch.results import BatchResult, BatchSummary
from ...batch.sinks import Prepared
from ...batch.writers import jsonl_line
from ...errors import redact
from .openai_lines import OPENAI_LINES, openai_output_line
from .store import Claimed, Progress, ResultRecord, ResultsRefused, RunStore

__all__ = ["RunResults"]

# Results are written this many at a time, or after this long, whichever comes first.
_FLUSH_ROWS = 500
_FLUSH_S = 0.25
# The progress window the live figures (rows/s, latency percentiles) are taken over.
_WINDOW_S = 3.0


@dataclass
class _Window:
    """The last seconds of a run: when rows finished and how long they took."""

    rows: deque[tuple[float, float, int]] = field(default_factory=deque)

    def add(self, now: float, latency_ms: float, attempts: int) -> None:
        self.rows.append((now, latency_ms, attempts))

    def figures(self, now: float, elapsed: float) -> dict[str, Any]:
        while self.rows and self.rows[0][0] < now - _WINDOW_S:
            self.rows.popleft()
        span = min(_WINDOW_S, max(elapsed, 1e-3))
        latencies = sorted(latency for _, latency, attempts in self.rows if attempts)
        requests = sum(attempts for _, _, attempts in self.rows)

        def pct(q: float) -> float | None:
            if not latencies:
                return None
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

        return {
            "rows_per_s": round(len(self.rows) / span, 2),
            "requests_per_s": round(requests / span, 2),
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
            "window_s": round(span, 2),
        }


@dataclass
class _Counts:
    """A write's counts: rows and tokens as every run counts them (`BatchSummary.add`:
    usage in either spelling, a cached answer's tokens not counted again), and the cost
    of the results that have one."""

    rows: BatchSummary = field(default_factory=BatchSummary)
    cost: Decimal | None = None

    def add(self, result: BatchResult) -> None:
        self.rows.add(result)
        cost = result.cost if result.has_cost else None
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost = usd(self.cost) + usd(cost)

    def progress(self) -> Progress:
        rows = self.rows
        return Progress(
            rows.ok,
            rows.failed,
            rows.requests,
            rows.prompt_tokens,
            rows.completion_tokens,
            rows.total_tokens,
            None if self.cost is None else float(self.cost),
            rows.schema_mode,
            rows.valid_first,
            rows.valid_reasked,
            rows.invalid,
        )


def _record(
    result: BatchResult, secrets: tuple[str, ...], openai_lines: bool = False
) -> ResultRecord:
    if openai_lines:
        line = openai_output_line(result).decode("utf-8")[:-1]
    else:
        line = jsonl_line(result).decode("utf-8")[:-1]
    if any(secret in line for secret in secrets):
        # An endpoint that echoes the key in an error: never stored.
        line = redact(line, secrets)
    return ResultRecord(key_token(result.key), result.index, result.ok, line)


class RunResults:
    """The results of one claimed run, into the run store (a `ResultSink`).

    ``done``: the keys the run has stored already (read before, off the event loop);
    ``live``: called with the live figures at each write (the application's gauges).
    """

    def __init__(
        self,
        store: RunStore,
        claimed: Claimed,
        owner: str,
        lease_s: float,
        *,
        done: Collection[str],
        secrets: tuple[str, ...],
        on_lost: Callable[[], None],
        live: Callable[[dict[str, Any]], None] = lambda _figures: None,
    ) -> None:
        self.store = store
        self.claimed = claimed
        self.owner = owner
        self.lease_s = lease_s
        self.done = done
        self.secrets = secrets
        self.on_lost = on_lost
        self.live = live
        self.lost = False
        self.refused = False
        self._started = time.perf_counter()
        self._last_write = self._started
        self._window = _Window()
        self._records: list[ResultRecord] = []
        self._counts = _Counts()
        self.openai_lines = claimed.stored.result_lines == OPENAI_LINES

    def prepare(self, mode: str) -> Prepared:
        """What the run stored already: a run in the store always continues after it."""
        return Prepared(self.done)

    async def write(self, results: Sequence[BatchResult]) -> None:
        """Keep ``results``; write them with the others kept when it is time."""
        if self.lost or self.refused:
            return
        now = time.perf_counter()
        for result in results:
            self._records.append(_record(result, self.secrets, self.openai_lines))
            self._counts.add(result)
            self._window.add(now, result.latency_ms, result.attempts)
        if len(self._records) >= _FLUSH_ROWS or now - self._last_write >= _FLUSH_S:
            await self._flush()

    async def aclose(self) -> None:
        """Write what is kept (the run's figures too, when no result is left)."""
        if not self.lost and not self.refused:
            await self._flush()

    async def _flush(self) -> None:
        now = time.perf_counter()
        figures = self._window.figures(now, now - self._started)
        self.live(figures)
        records, counts = self._records, self._counts
        self._records, self._counts, self._last_write = [], _Counts(), now
        try:
            held = await asyncio.to_thread(
                self.store.write_results,
                self.claimed.id,
                self.owner,
                self.lease_s,
                records,
                counts.progress(),
                self.claimed.active_s + (now - self._started),
                figures,
            )
        except ResultsRefused:
            # Nothing more is written: the run ends as failed, with this error.
            self.refused = True
            raise
        if not held:
            self.lost = True
            self.on_lost()
