"""A batch run into a database table: the table is the checkpoint (`sinks.table.TableResults`).

`arun_batch_to_table` is `arun_batch_to_file` with a table for the file: the table is
created or checked and read back per ``mode`` (its keys are the rows to skip), results go
in by batched upsert transactions, and the run is driven as a file's is (`run.drive`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Unpack

from ..config import SourceConfig
from ..errors import ConfigurationError
from ._options import BatchFileOptions, split_file_options
from ._sql_reader import DatabaseRows
from ._sql_writer import TableOutput
from .engine import BatchRun, Rows
from .results import BatchResult, BatchSummary
from .run import Notices, drive
from .sinks.table import TableResults

__all__ = ["arun_batch_to_table"]


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
    notices = Notices()
    run = BatchRun(config, rows, on_notice=notices, **row_options)
    target = TableOutput(
        output,
        table,
        key_column=run.key,
        output_names=run.output_names,
        include_response=run.include_response,
    )
    try:
        _refuse_output_over_input(run.rows, target)
    except BaseException:
        target.close()
        raise
    sink = TableResults(target, run.output_names, include_response=run.include_response)
    return await drive(run, sink, file_options, notices, shown=target.name, on_result=on_result)


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
