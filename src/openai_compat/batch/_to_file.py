"""A batch run into an output file: the file is the checkpoint; signals stop it; progress.

`arun_batch_to_file` wraps the row engine (`BatchRun`) with what a run into a file needs:
the output prepared per ``mode`` (its results are the rows to skip), the writer, the
progress meter (with the row count, counted alongside), and Ctrl-C / SIGTERM handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Callable
from typing import Any, Unpack

from ..config import SourceConfig
from ..errors import ConfigurationError
from . import openai_batch_format
from ._options import BatchFileOptions, split_file_options
from .checkpoint import prepare_output
from .engine import BatchRun, Rows
from .progress import Progress
from .results import BatchResult, BatchSummary
from .sources import RowSource, count_rows
from .writers import JsonlWriter, ResultWriter, csv_columns, detect_output_format, open_writer

__all__ = ["arun_batch_to_file"]


async def arun_batch_to_file(
    config: SourceConfig | dict[str, Any] | str,
    rows: Rows,
    output: str | os.PathLike[str],
    *,
    on_result: Callable[[BatchResult], None] | None = None,
    **options: Unpack[BatchFileOptions],
) -> BatchSummary:
    """Run a batch into an output file (the checkpoint) and return the summary.

    ``mode``: ``new`` (refuse an output with results), ``overwrite``, ``resume`` (skip the
    rows already written, repair a torn last line) or ``retry-failed`` (also run the failed
    rows again). ``progress``: ``auto``, ``bar``, ``lines`` or ``off`` (on stderr).
    ``handle_signals``: the first Ctrl-C / SIGTERM stops reading rows and lets the rows in
    flight finish; a second one abandons them (a resumed run does them again). The other
    options are `run_batch`'s.
    """
    file_options, row_options = split_file_options(options)
    path = os.fspath(output)
    fmt = detect_output_format(path, file_options.get("output_format"))
    meter: Progress | None = None

    def notice(message: str) -> None:
        if meter is not None:
            meter.note(f"batch: {message}")

    run = BatchRun(config, rows, on_notice=notice, **row_options)
    if isinstance(run.rows, RowSource):
        _refuse_output_over_input(run.rows.path, path)
    extra = {
        "include_cached": run.accounting is not None and run.accounting.cache is not None,
        "include_cost": run.accounting is not None and run.accounting.prices is not None,
    }
    columns = csv_columns(
        run.output_names,
        include_input=run.include_input,
        include_response=run.include_response,
        **extra,
    )
    error_file = file_options.get("error_file")
    error_path = os.fspath(error_file) if error_file is not None else None
    if error_path is not None and fmt != openai_batch_format.FORMAT:
        raise ConfigurationError(
            "--error-file goes with --output-format openai-batch (other formats write "
            "failed rows inline)",
            field="error_file",
        )
    if fmt == openai_batch_format.FORMAT:
        if isinstance(run.rows, RowSource) and error_path is not None:
            _refuse_output_over_input(run.rows.path, error_path)
        run.include_response = True  # the answer is the line's response.body
        checkpoint = openai_batch_format.prepare_output(
            path, file_options.get("mode", "new"), error_path
        )
    else:
        checkpoint = prepare_output(path, fmt, file_options.get("mode", "new"), csv_columns=columns)
    run.skip = checkpoint.done
    meter = Progress(
        run.summary,
        mode=file_options.get("progress", "off"),
        interval_s=file_options.get("progress_interval_s", 10.0),
    )
    if checkpoint.torn_bytes:
        notice(f"repaired a torn last line of {path} ({checkpoint.torn_bytes} bytes cut off)")
    if checkpoint.removed_failed:
        notice(f"running {checkpoint.removed_failed} failed rows again")
    writer: ResultWriter = (
        openai_batch_format.OpenAIBatchWriter(path, error_path)
        if fmt == openai_batch_format.FORMAT
        else open_writer(
            path,
            fmt,
            run.output_names,
            include_input=run.include_input,
            include_response=run.include_response,
            **extra,
        )
    )
    loop = asyncio.get_running_loop()
    signals = (
        _stop_on_signals(loop, run, meter) if file_options.get("handle_signals", False) else []
    )
    counter: asyncio.Future[int | None] | None = None
    try:
        meter.start()
        if isinstance(run.rows, RowSource) and meter.mode != "off":
            counter = _count_in_background(run.rows, meter)
        async with run:
            while True:
                try:
                    ready = await run.next_ready()
                except StopAsyncIteration:
                    break
                # The results ready at once go to the OS in one write (JSON Lines): one
                # system call for all, and still each line whole before it is reported.
                if isinstance(writer, JsonlWriter):
                    writer.write_many(ready)
                else:
                    for result in ready:
                        writer.write(result)
                meter.update()
                if on_result is not None:
                    for result in ready:
                        on_result(result)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if counter is not None:
            counter.cancel()
        writer.close()
        checkpoint.close()
        await meter.aclose()
    return run.summary


def _file_stat(path: str, fd: int) -> os.stat_result | None:
    """What ``path`` is (``-``: the file behind ``fd``), or None when there is none."""
    try:
        return os.fstat(fd) if path == "-" else os.stat(path)
    except (OSError, ValueError):
        return None


def _refuse_output_over_input(source: str, output: str) -> None:
    """Refuse an output that is the input file itself (the same path, a symlink or a hard
    link to it, or stdin/stdout redirected to it): writing there would destroy the rows.

    Checked before the output is touched; only regular files can be the same file (a
    terminal is both stdin and stdout, and that is fine).
    """
    read = _file_stat(source, 0)
    written = _file_stat(output, 1)
    if read is None or written is None or not stat.S_ISREG(read.st_mode):
        return
    if os.path.samestat(read, written):
        shown_in = "stdin" if source == "-" else source
        shown_out = "stdout" if output == "-" else output
        raise ConfigurationError(
            f"{shown_out} is the input file ({shown_in}): writing results there would destroy "
            "the rows; choose another --output",
            field="output",
        )


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


def _count_in_background(source: RowSource, meter: Progress) -> asyncio.Future[int | None]:
    """Count the rows of ``source`` in a thread; the meter gets the total when it is known."""
    counter = asyncio.ensure_future(asyncio.to_thread(count_rows, source))
    counter.add_done_callback(lambda f: meter.set_total(f.result()) if not f.cancelled() else None)
    return counter
