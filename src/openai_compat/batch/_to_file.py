"""A batch run into an output file: the file is the checkpoint (`sinks.files.FileResults`).

`arun_batch_to_file` builds the row engine (`BatchRun`) and the file's sink, refuses an
output that is the input itself, and drives one into the other (`run.drive`: progress,
notices, Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any, Unpack

from ..config import SourceConfig
from ..errors import ConfigurationError
from . import openai_batch_format
from ._options import BatchFileOptions, split_file_options
from .engine import BatchRun, Rows
from .results import BatchResult, BatchSummary
from .run import Notices, drive
from .sinks import ResultSink
from .sinks.files import FileResults
from .sinks.parquet import ParquetResults
from .sources import RowSource
from .writers import detect_output_format

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
    notices = Notices()
    run = BatchRun(config, rows, on_notice=notices, **row_options)
    error_file = file_options.get("error_file")
    error_path = os.fspath(error_file) if error_file is not None else None
    if isinstance(run.rows, RowSource):
        _refuse_output_over_input(run.rows.path, path)
        if error_path is not None and fmt == openai_batch_format.FORMAT:
            _refuse_output_over_input(run.rows.path, error_path)
    if fmt == openai_batch_format.FORMAT:
        run.include_response = True  # the answer is the line's response.body
    accounting = run.accounting
    columns = {
        "include_input": run.include_input,
        "include_response": run.include_response,
        "include_cached": accounting is not None and accounting.cache is not None,
        "include_cost": accounting is not None and accounting.prices is not None,
    }
    sink: ResultSink
    if fmt == "parquet":
        if error_path is not None:
            raise ConfigurationError(
                "--error-file goes with --output-format openai-batch (other formats write "
                "failed rows inline)",
                field="error_file",
            )
        sink = ParquetResults(path, run.output_names, types=run.spec.output_types, **columns)
    else:
        sink = FileResults(path, fmt, run.output_names, error_path=error_path, **columns)
    return await drive(run, sink, file_options, notices, shown=path, on_result=on_result)


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
