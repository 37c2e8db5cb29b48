"""Batch runs: a whole dataset through the endpoint, mapped in, picked out, resumable.

```python
from openai_compat.batch import run_batch, run_batch_sync

summary = run_batch_sync(config, "tickets.csv", "results.jsonl",
                         mapping=[{"name": "messages.0.content", "value": "body"}],
                         outputs=[{"name": "choices.0.message.content", "as": "summary"}])
print(summary)   # 998 ok, 2 failed, 0 skipped; 51234 tokens; 104.2 s wall (9.6 rows/s)
```

Modules: `sources` (the input formats, one table every engine asks; JSON Lines, CSV, Parquet
read as a stream; the columns and count of a file), `writers` (JSON Lines or CSV, append +
flush), `checkpoint` (resume from the output file), `scheduler` (rate limit, pause after a
429), `progress` (stderr), `keys` (row keys, shards), `engine` (the row engine, `BatchRun`),
`engines` (local, Ray, Spark: what each honours), `spec` (`RunSpec`), `row_keys` (which rows
are sent), `row_results` (each row's result), `sinks` and `run` (results into any output,
driven once), `_to_file` (a run into an output file), `_api` (`run_batch`,
`run_batch_sync`), `_options` (their options, typed), `cli` (``openai-compat batch``),
`cache` (`ResponseCache`: answers in a SQLite file, shareable by processes), `cost` and
`budget` (prices, ``max_cost`` / ``max_tokens``), `openai_batch_format` (OpenAI batch files
in and out), `arrow` (the flat result row as Arrow, for the cluster engines).
Databases: `sql_url` (URLs, ``ENV["NAME"]``, the password hidden), `_sql_reader`
(`database_rows`: a query's rows, streamed), `_sql_writer` (the results table, upserts),
`_to_table` (a run into a table, exactly once).
Payload mapping and output extraction live in `openai_compat.mapping`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from ._api import run_batch, run_batch_sync
    from ._sql_reader import DatabaseRows, database_rows
    from ._to_file import arun_batch_to_file
    from ._to_table import arun_batch_to_table
    from .cache import ResponseCache
    from .engine import BatchRun
    from .keys import Shard
    from .results import BatchResult, BatchSummary
    from .scheduler import DEFAULT_CONCURRENCY, DEFAULT_RATE, Rate
    from .sources import RowSource, UnreadableRow, open_rows
    from .sql_url import DatabaseError

# Each name loads its module on first use: importing one light submodule (the scheduler's
# `Rate`, the results) must not load the whole engine with httpx and aiohttp (a Ray
# actor's start-up).
_HOMES = {
    **dict.fromkeys(["run_batch", "run_batch_sync"], "._api"),
    "BatchRun": ".engine",
    **dict.fromkeys(["DatabaseRows", "database_rows"], "._sql_reader"),
    "DatabaseError": ".sql_url",
    "arun_batch_to_file": "._to_file",
    "arun_batch_to_table": "._to_table",
    "ResponseCache": ".cache",
    "Shard": ".keys",
    **dict.fromkeys(["RowSource", "UnreadableRow", "open_rows"], ".sources"),
    **dict.fromkeys(["BatchResult", "BatchSummary"], ".results"),
    **dict.fromkeys(["DEFAULT_CONCURRENCY", "DEFAULT_RATE", "Rate"], ".scheduler"),
}


__getattr__ = lazy_attributes(__name__, _HOMES, globals())


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE",
    "BatchResult",
    "BatchRun",
    "BatchSummary",
    "DatabaseError",
    "DatabaseRows",
    "Rate",
    "ResponseCache",
    "RowSource",
    "Shard",
    "UnreadableRow",
    "arun_batch_to_file",
    "arun_batch_to_table",
    "database_rows",
    "open_rows",
    "run_batch",
    "run_batch_sync",
]
