"""Where a run's results go: one protocol (`ResultSink`) for every output of a run.

A sink is also the run's checkpoint: `ResultSink.prepare` reads back what an earlier run
wrote (the keys to leave out, per ``mode``), `ResultSink.write` keeps results as they are
ready, `ResultSink.aclose` makes them durable. `drive` (``batch.run``) runs any `BatchRun`
into any sink with the same progress, notices and signal handling.

- `files.FileResults`: a JSON Lines or CSV file, or an OpenAI batch output file.
- `parquet.ParquetResults`: a Parquet file, written whole when the run ends.
- `table.TableResults`: a database table, upserted in small transactions.
- The application's run store: ``openai_compat.app.runs.sink.RunResults``.

The cluster engines write part files from their workers, not results in one process:
`parts.prepare_parts` makes their directory ready per mode the same way for both.
"""

from __future__ import annotations

from ._base import Prepared, ResultSink

__all__ = ["Prepared", "ResultSink"]
