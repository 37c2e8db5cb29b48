"""The options of a batch run, typed once for every entry point (``**options: Unpack[...]``).

`BatchOptions` are the row engine's (`BatchRun`, `run_batch`); `FileOptions` those of a run
into an output file; `BatchFileOptions` both, as `arun_batch_to_file` and `run_batch_sync`
with an output take them. A key left out gets its default where the option is read (the
defaults are listed here). Keyword checking at run time is `check_keywords`: the names are
not in any signature, so a misspelt one would otherwise be ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypedDict, cast

from .._transports import ClientFactory, Sendable
from ..mapping import PayloadBuilder
from ..retries import RetryPolicy
from .governor import Governor
from .keys import Shard
from .scheduler import Rate, Scheduler

__all__ = [
    "BatchFileOptions",
    "BatchOptions",
    "FileOptions",
    "RowOptions",
    "check_keywords",
    "split_file_options",
]


class RowOptions(TypedDict, total=False):
    """What rows are sent, and how: the options every entry point takes."""

    # The platform's mapping list (rows to payloads); default none: request_format as is.
    mapping: Any
    # ``[{"name": path, "as": name}]``; default: the string leaves of ``response_format``.
    outputs: Any
    # The column identifying a row (unique: a repeated key fails that row); default: the row
    # number. A column the first row lacks is a ConfigurationError before any request.
    key: str | None
    # Requests in flight at once, 1 to `MAX_CONCURRENCY` (10,000); default
    # `DEFAULT_CONCURRENCY` (10). Workers start with the rows, never more than there are.
    concurrency: int | str | None
    # A rate limit such as ``"600/minute"``; default `DEFAULT_RATE`; None = no limit.
    rate: Rate | str | None
    # Rows whose inputs share one embeddings request, 1 to 2,048; default 64 for an
    # embeddings URL, 1 (and nothing else allowed) for the other APIs.
    rows_per_request: int | None
    # A token rate limit such as ``"200000/minute"`` (`batch.throughput`); default none.
    token_rate: Rate | str | None
    # The ceiling of ``concurrency="auto"``; default 256.
    max_concurrency: int | None
    # Run only shard ``"k/n"`` of the rows (split by key hash); default all rows.
    shard: Shard | str | None
    # Key texts to leave out; default none (a file run sets them from its checkpoint).
    skip: Collection[str]
    # The number of each row, when the rows are some of a larger input's (a Ray batch
    # without the rows already failed for their key); default 0, 1, 2, ... Results carry
    # these numbers, and rows without a key column are keyed by them.
    row_numbers: Sequence[int] | None
    # Add each row to its result as ``input``; default False.
    include_input: bool
    # A W3C ``traceparent`` naming the run's span in another process (a cluster's driver):
    # the rows' spans hang beneath it and the run makes no span of its own; default none.
    trace_parent: str | None
    # Add the whole answer to each result as ``response``; default False.
    include_response: bool
    # The format of a ``rows`` path; default: by its name.
    input_format: str | None
    # With ``rows`` a database URL: the query to read (``:name`` parameters bound from
    # ``params``), or the ``table`` to read whole; one of them. See `database_rows`.
    query: str | None
    table: str | None
    params: Mapping[str, Any] | None
    # The retry policy; default the endpoint's.
    retry: RetryPolicy | None
    # The HTTP client to send with; default: one the run makes (and closes) for itself.
    client: Sendable | None
    # What makes the HTTP client of a configuration with TLS or proxy options (which cannot
    # share ``client``); default a plain httpx client. The application passes its guarded one.
    client_factory: ClientFactory | None
    # The run's scheduler (rate limit, 429 pause); default: one made from ``rate``. Runs that
    # share one (the batches of a Ray actor, with the job's rate limit) share its limit.
    scheduler: Scheduler | None
    # The run's governor (tokens, the server's headers, adaptive concurrency); default: one
    # made from the spec around ``scheduler``. Runs that share one share its limits.
    governor: Governor | None
    # What turns a row into its payload; default ``PayloadBuilder(request_format, mapping)``.
    payload_builder: PayloadBuilder | None
    # The response cache (`openai_compat.batch.cache`): a SQLite file's path or a
    # `ResponseCache`; default none. A request answered before is not sent again.
    cache: Any
    # ``read-write`` (default), ``read-only`` or ``refresh`` (store anew, never look up).
    cache_mode: str | None
    # Token prices, USD per million: ``"input=0.15,output=0.60[,cached_input=0.075]"``, a
    # mapping of model name to prices, or a `Prices`; each result gets ``cost``.
    prices: Any
    # Stop starting rows once the run spent this much (USD; needs ``prices``) / these tokens.
    max_cost: float | None
    max_tokens: int | None
    # Structured outputs (`openai_compat.structured`): a JSON Schema, OpenAI's wrapper, a
    # file or a pydantic model; how to ask for it; how many re-asks (default 2).
    schema: Any
    schema_mode: str | None
    reasks: int | None


class BatchOptions(RowOptions, total=False):
    """The options of the row engine: `RowOptions` and where its notices go."""

    # Called with each notice (a 429 pause, a payload without row values); default: dropped.
    # A file run shows them with its progress instead, so it does not take this one.
    on_notice: Callable[[str], None] | None


class FileOptions(TypedDict, total=False):
    """The options of a run into an output file."""

    # ``new`` (default), ``overwrite``, ``resume`` or ``retry-failed`` (checkpoint.MODES).
    mode: str
    # ``jsonl`` or ``csv``; default: by the output's name.
    output_format: str | None
    # ``auto``, ``bar``, ``lines`` or ``off`` (default), on stderr.
    progress: str
    # Seconds between plain progress lines; default 10.
    progress_interval_s: float
    # Stop on Ctrl-C / SIGTERM (a second one abandons the rows in flight); default False.
    handle_signals: bool
    # With the output a database URL: the table results go into (created when missing).
    output_table: str | None
    # ``output_format="openai-batch"``: write failed requests to this file (as OpenAI does)
    # instead of inline (as vLLM does); default inline.
    error_file: str | os.PathLike[str] | None


class BatchFileOptions(RowOptions, FileOptions, total=False):
    """The options of a run into an output file: `RowOptions` and `FileOptions`."""


_FILE_KEYWORDS = FileOptions.__optional_keys__


def split_file_options(options: BatchFileOptions) -> tuple[FileOptions, RowOptions]:
    """``options`` as the file options and the rest (for the row engine, which checks them).

    >>> split_file_options({"mode": "resume", "key": "id"})
    ({'mode': 'resume'}, {'key': 'id'})
    """
    file = {name: value for name, value in options.items() if name in _FILE_KEYWORDS}
    rest = {name: value for name, value in options.items() if name not in _FILE_KEYWORDS}
    # Typed by what a caller checked by mypy can pass; BatchRun checks the rest at run time.
    return cast(FileOptions, file), cast(RowOptions, rest)


def check_keywords(options: Iterable[str], allowed: Collection[str], where: str) -> None:
    """Raise the `TypeError` Python raises for a keyword ``where`` does not take.

    >>> check_keywords(["key", "kee"], {"key"}, "f()")
    Traceback (most recent call last):
    TypeError: f() got an unexpected keyword argument 'kee'
    """
    for name in options:
        if name not in allowed:
            raise TypeError(f"{where} got an unexpected keyword argument {name!r}")
