"""Batch runs: a whole dataset through the endpoint, mapped in, picked out, resumable.

```python
from openai_compat.batch import run_batch, run_batch_sync

summary = run_batch_sync(config, "tickets.csv", "results.jsonl",
                         mapping=[{"name": "messages.0.content", "value": "body"}],
                         outputs=[{"name": "choices.0.message.content", "as": "summary"}])
print(summary)   # 998 ok, 2 failed, 0 skipped; 51234 tokens; 104.2 s wall (9.6 rows/s)
```

Modules: `readers` (JSON Lines, CSV, Parquet, streamed), `writers` (JSON Lines or CSV,
append + flush), `checkpoint` (resume from the output file), `scheduler` (rate limit,
pause after a 429), `progress` (stderr), `keys` (row keys, shards), `_engine` (the row
engine, `BatchRun`), `_to_file` (a run into an output file), `_api` (`run_batch`,
`run_batch_sync`), `_options` (their options, typed), `cli` (``openai-compat batch``),
`cache` (`ResponseCache`: answers in a SQLite file, shareable by processes), `_cost` and
`_budget` (prices, ``max_cost`` / ``max_tokens``), `_openai_batch_format` (OpenAI batch
files in and out).
Payload mapping and output extraction live in `openai_compat.mapping`.
"""

from ._api import run_batch, run_batch_sync
from ._engine import BatchRun
from ._to_file import arun_batch_to_file
from .cache import ResponseCache
from .keys import Shard
from .readers import RowSource, UnreadableRow, open_rows
from .results import BatchResult, BatchSummary
from .scheduler import DEFAULT_CONCURRENCY, DEFAULT_RATE, Rate

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE",
    "BatchResult",
    "BatchRun",
    "BatchSummary",
    "Rate",
    "ResponseCache",
    "RowSource",
    "Shard",
    "UnreadableRow",
    "arun_batch_to_file",
    "open_rows",
    "run_batch",
    "run_batch_sync",
]
