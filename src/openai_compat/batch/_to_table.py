"""A batch run into a database table: the table is the checkpoint; signals stop it; progress.

`arun_batch_to_table` is `arun_batch_to_file` with a table for the file: the table is
created or checked and read back per ``mode`` (its keys are the rows to skip), results go
in by batched upsert transactions (`TableWriter`), and Ctrl-C / SIGTERM and the progress
meter work as for a file.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, Unpack

from ..config import SourceConfig
from ..errors import ConfigurationError
from ._options import BatchFileOptions, split_file_options
from ._sql_reader import DatabaseRows
from ._sql_writer import TableOutput, TableWriter
from ._to_file import _count_in_background, _stop_on_signals
from .engine import BatchRun, Rows
from .progress import Progress
from .results import BatchResult, BatchSummary
from .sources import RowSource

__all__ = ["arun_batch_to_table"]


def _count_database_rows(source: DatabaseRows, meter: Progress) -> asyncio.Future[int | None]:
    counter = asyncio.ensure_future(asyncio.to_thread(source.count))
    counter.add_done_callback(lambda f: meter.set_total(f.result()) if not f.cancelled() else None)
    return counter


async def arun_batch_to_table(
    config: SourceConfig | dict[str, Any] | str,
    rows: Rows,
    output: str | os.PathLike[str],
    *,
    on_result: Callable[[BatchResult], None] | None = None,
    **options: Unpack[BatchFileOptions],
) -> BatchSummary:
    """Run a batch into the table ``output_table`` of the database ``output`` (a URL).

    The table is created when missing (the key as primary key, one column per output, then
    the flat result columns); ``mode`` is as for a file: ``new`` refuses a table with rows,
    ``overwrite`` empties it, ``resume`` runs the keys it lacks, ``retry-failed`` also the
    rows whose ``error_message`` is set. Results are committed in small upsert transactions,
    so after a crash at any moment a resumed run writes every key exactly once. The other
    options are `arun_batch_to_file`'s (``output_format`` does not apply).
    """
    file_options, row_options = split_file_options(options)
    table = file_options.get("output_table")
    if not table:
        raise ConfigurationError(
            "a database output needs a table: pass --output-table NAME (created when missing)",
            field="output_table",
        )
    if file_options.get("error_file"):
        raise ConfigurationError(
            "--error-file is for openai-batch output files; a table keeps failed rows with "
            "their error_message",
            field="error_file",
        )
    if file_options.get("output_format"):
        raise ConfigurationError(
            "--output-format is for files; a table holds one column per result field",
            field="output_format",
        )
    if row_options.get("include_input"):
        raise ConfigurationError(
            "--include-input is for file outputs; a table keeps the key: join it with the input",
            field="include_input",
        )
    meter: Progress | None = None

    def notice(message: str) -> None:
        if meter is not None:
            meter.note(f"batch: {message}")

    run = BatchRun(config, rows, on_notice=notice, **row_options)
    target = TableOutput(
        output,
        table,
        key_column=run.key,
        output_names=run.output_names,
        include_response=run.include_response,
    )
    writer: TableWriter | None = None
    try:
        _refuse_output_over_input(run.rows, target)
        checkpoint = target.prepare(file_options.get("mode", "new"))
        run.skip = checkpoint.done
        meter = Progress(
            run.summary,
            mode=file_options.get("progress", "off"),
            interval_s=file_options.get("progress_interval_s", 10.0),
        )
        if checkpoint.removed_failed:
            notice(f"running {checkpoint.removed_failed} failed rows again")
        writer = TableWriter(target, run.output_names, include_response=run.include_response)
    except BaseException:
        target.close()
        raise
    loop = asyncio.get_running_loop()
    signals = (
        _stop_on_signals(loop, run, meter) if file_options.get("handle_signals", False) else []
    )
    counter: asyncio.Future[int | None] | None = None
    try:
        meter.start()
        if meter.mode != "off":
            if isinstance(run.rows, RowSource):
                counter = _count_in_background(run.rows, meter)
            elif isinstance(run.rows, DatabaseRows):
                counter = _count_database_rows(run.rows, meter)
        async with run:
            async for result in run:
                await writer.write(result)
                meter.update()
                if on_result is not None:
                    on_result(result)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if counter is not None:
            counter.cancel()
        try:
            await writer.aclose()
        finally:
            await meter.aclose()
    return run.summary


def _refuse_output_over_input(rows: Any, target: TableOutput) -> None:
    """Refuse writing results into the very table the rows are read from."""
    if not isinstance(rows, DatabaseRows) or rows.table is None:
        return
    same_database = rows.url.render_as_string(hide_password=False) == target.url.render_as_string(
        hide_password=False
    )
    if same_database and rows.table.strip() == target.name.strip():
        raise ConfigurationError(
            f"--output-table {target.name!r} is the input table: writing results there would "
            "destroy the rows; choose another --output-table",
            field="output_table",
        )
