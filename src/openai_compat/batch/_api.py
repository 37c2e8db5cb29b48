"""The entry points: `run_batch` (an async iterator of results) and `run_batch_sync`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Unpack, overload

from .._sync import run_sync
from ..config import SourceConfig
from ._options import BatchFileOptions, BatchOptions
from ._to_file import arun_batch_to_file
from ._to_table import arun_batch_to_table
from .engine import BatchRun, Rows
from .results import BatchResult, BatchSummary
from .sql_url import is_database_url

__all__ = ["run_batch", "run_batch_sync"]


def run_batch(
    config: SourceConfig | dict[str, Any] | str,
    rows: Rows,
    **options: Unpack[BatchOptions],
) -> BatchRun:
    """Run ``rows`` through the endpoint; an async iterator of `BatchResult`.

    ``rows``: dicts (any iterable or async iterable), or a path (``.jsonl``, ``.csv``,
    ``.parquet``; ``-`` = JSON Lines on stdin), or a database URL with ``query`` (and
    ``params``) or ``table`` (or `database_rows`: the rows of a query, streamed).
    Options: ``mapping`` (the platform's mapping list), ``outputs``
    (``[{"name": path, "as": name}]``; default: the string leaves of ``response_format``),
    ``key`` (column), ``concurrency`` (default 10), ``rate``
    (``"600/minute"`` default, None = no limit), ``shard`` (``"k/n"``), ``skip`` (key
    texts to leave out), ``include_input``, ``include_response``, ``retry``, ``client``,
    ``cache`` (a SQLite file's path or a `ResponseCache`: a request answered before is not
    sent again), ``cache_mode``, ``prices`` (``"input=0.15,output=0.60"`` or per model),
    ``max_cost`` / ``max_tokens`` (stop starting rows once spent), ``rows_per_request``
    (embeddings: rows whose inputs share one request, default 64) (all of `BatchOptions`,
    in ``openai_compat.batch._options``).

    >>> async def main(config, rows):
    ...     async with run_batch(config, rows, outputs=["choices.0.message.content"]) as run:
    ...         async for result in run:
    ...             print(result.to_dict())
    ...     print(run.summary)
    """
    return BatchRun(config, rows, **options)


@overload
def run_batch_sync(
    config: SourceConfig | dict[str, Any] | str,
    rows: Rows,
    output: None = None,
    *,
    on_result: Callable[[BatchResult], None] | None = None,
    **options: Unpack[BatchOptions],
) -> BatchSummary: ...


@overload
def run_batch_sync(
    config: SourceConfig | dict[str, Any] | str,
    rows: Rows,
    output: str | os.PathLike[str],
    *,
    on_result: Callable[[BatchResult], None] | None = None,
    **options: Unpack[BatchFileOptions],
) -> BatchSummary: ...


def run_batch_sync(
    config: SourceConfig | dict[str, Any] | str,
    rows: Rows,
    output: str | os.PathLike[str] | None = None,
    *,
    on_result: Callable[[BatchResult], None] | None = None,
    **options: Any,
) -> BatchSummary:
    """The sync wrapper: run the batch, write results to ``output`` (if given), return the summary.

    Takes the options of `run_batch` and, with ``output``, those of `arun_batch_to_file`
    (``mode``, ``output_format``, ``progress``). Without ``output`` each result goes to
    ``on_result`` only. An ``output`` that is a database URL takes ``output_table``: the
    results go into that table, exactly once (`arun_batch_to_table`).
    """
    if output is not None:
        if options.get("output_table") or is_database_url(output):
            return run_sync(
                arun_batch_to_table(config, rows, output, on_result=on_result, **options)
            )
        return run_sync(arun_batch_to_file(config, rows, output, on_result=on_result, **options))

    async def consume() -> BatchSummary:
        async with BatchRun(config, rows, **options) as run:
            async for result in run:
                if on_result is not None:
                    on_result(result)
        return run.summary

    return run_sync(consume())
