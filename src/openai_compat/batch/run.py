"""One run into one sink: the checkpoint read back, progress, notices, signals, results kept.

`drive` is the one orchestration of a run with an output (a file, a table): the sink is
prepared per ``mode`` (what it holds is left out), the meter counts the input alongside, the
first Ctrl-C / SIGTERM stops reading rows (a second abandons the rows in flight), and every
result ready is written before it is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from ._options import FileOptions
from ._sql_reader import DatabaseRows
from .engine import BatchRun
from .progress import Progress
from .results import BatchResult, BatchSummary
from .sinks import ResultSink
from .sources import RowSource, count_rows

__all__ = ["Notices", "drive"]


class Notices:
    """A run's notices (a 429 pause, rows run again), shown with its progress once it has one.

    Made before the run (the run takes it as ``on_notice``); `drive` gives it the meter.
    """

    def __init__(self) -> None:
        self.meter: Progress | None = None

    def __call__(self, message: str) -> None:
        if self.meter is not None:
            self.meter.note(f"batch: {message}")


async def drive(
    run: BatchRun,
    sink: ResultSink,
    options: FileOptions,
    notices: Notices,
    *,
    shown: str,
    on_result: Callable[[BatchResult], None] | None = None,
) -> BatchSummary:
    """Run ``run`` into ``sink`` (``shown``: how notices name the output); the summary."""
    try:
        prepared = sink.prepare(options.get("mode", "new"))
    except BaseException:
        await sink.aclose()
        raise
    run.skip = prepared.done
    meter = Progress(
        run.summary,
        mode=options.get("progress", "off"),
        interval_s=options.get("progress_interval_s", 10.0),
    )
    notices.meter = meter
    if prepared.torn_bytes:
        notices(f"repaired a torn last line of {shown} ({prepared.torn_bytes} bytes cut off)")
    if prepared.removed_failed:
        notices(f"running {prepared.removed_failed} failed rows again")
    loop = asyncio.get_running_loop()
    signals = _stop_on_signals(loop, run, meter) if options.get("handle_signals", False) else []
    counter: asyncio.Future[int | None] | None = None
    try:
        meter.start()
        if meter.mode != "off":
            counter = _count_in_background(run.rows, meter)
        async with run:
            while True:
                try:
                    ready = await run.next_ready()
                except StopAsyncIteration:
                    break
                await sink.write(ready)
                meter.update()
                if on_result is not None:
                    for result in ready:
                        on_result(result)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if counter is not None:
            counter.cancel()
        try:
            await sink.aclose()
        finally:
            await meter.aclose()
    return run.summary


def _stop_on_signals(
    loop: asyncio.AbstractEventLoop, run: BatchRun, meter: Progress
) -> list[signal.Signals]:
    """Make Ctrl-C / SIGTERM stop ``run`` (a second one aborts it); the signals handled."""

    def on_signal() -> None:
        if not run.stopping:
            run.stop()
            meter.note(
                "batch: stopping: finishing the rows in flight (press Ctrl-C again to "
                "abandon them; --resume continues either way)"
            )
        else:
            run.abort()

    signals: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not the main thread, or a loop without signal support: the run just is not stoppable.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal)
            signals.append(sig)
    return signals


def _count_in_background(rows: Any, meter: Progress) -> asyncio.Future[int | None] | None:
    """Count the input's rows in a thread (a file's, or a query's); the meter gets the total
    when it is known. None when the rows cannot be counted ahead (an iterable)."""
    if isinstance(rows, RowSource):
        counter = asyncio.ensure_future(asyncio.to_thread(count_rows, rows))
    elif isinstance(rows, DatabaseRows):
        counter = asyncio.ensure_future(asyncio.to_thread(rows.count))
    else:
        return None
    counter.add_done_callback(lambda f: meter.set_total(f.result()) if not f.cancelled() else None)
    return counter
