"""`PartitionRunner`: the row engine over one Spark partition (Arrow batches in and out).

Spark calls it once per partition (a task) in a Python worker, through ``mapInArrow``. It
starts an event loop for the partition and runs every row through one `BatchRun` (the local
row engine: the same mapping, retries, 429 pause, timeouts, output extraction, error messages
and redaction) with one HTTP connection pool and ``concurrency`` rows in flight. Input
batches are read in a thread as the engine asks for rows; results go back to Spark in
batches of ``output_rows`` as they finish (completion order). A failure is a row, never an
exception (which would make Spark retry the task and, in the end, fail the job).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from .._sync import loop_factory
from ..batch.engine import BatchRun
from ..batch.keys import row_key
from ..batch.results import BatchResult, BatchSummary
from ..batch.scheduler import Rate
from ..config import SourceConfig
from ..errors import redact
from ..observability import WorkerTelemetry
from ..retries import RetryPolicy

__all__ = ["COUNT_FIELDS", "PartitionRunner"]

# What a partition adds to the job's counts (a Spark accumulator), in this order.
COUNT_FIELDS = (
    "ok",
    "failed",
    "cached",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
)
_OUTPUT_ROWS = 512


def counts_of(summary: BatchSummary) -> tuple[int, ...]:
    """A summary's counts, as `COUNT_FIELDS` names them."""
    return tuple(int(getattr(summary, name)) for name in COUNT_FIELDS)


class PartitionRunner:
    """Called by ``mapInArrow`` with a partition's Arrow batches; yields the result batches.

    Pickled to the executors with everything it needs: the parsed configuration, the
    options, the Arrow schema of the results, and this task's share of the rate limit.
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        schema: pa.Schema,
        output_names: Sequence[str],
        mapping: Any = None,
        outputs: Any = None,
        key: str | None = None,
        keep_columns: Sequence[str] = (),
        concurrency: int | str,
        rate: Rate | None,
        include_input: bool = True,
        include_response: bool = False,
        retry: RetryPolicy | None = None,
        lines: bool = False,
        counts: Any = None,
        cache: Any = None,
        cache_mode: str | None = None,
        output_rows: int = _OUTPUT_ROWS,
        structured: Mapping[str, Any] | None = None,
        types: Mapping[str, Any] | None = None,
        token_rate: Rate | None = None,
        max_concurrency: int | None = None,
        rows_per_request: int | None = None,
        telemetry: WorkerTelemetry | None = None,
    ) -> None:
        self.config = config
        self.schema = schema
        self.output_names = list(output_names)
        self.mapping = mapping
        self.outputs = outputs
        self.key = key
        self.keep_columns = list(keep_columns)
        self.concurrency = concurrency
        self.rate = rate
        self.include_input = include_input
        self.include_response = include_response
        self.retry = retry
        self.lines = lines
        self.counts = counts
        self.cache = cache
        self.cache_mode = cache_mode
        self.output_rows = output_rows
        self.structured = dict(structured or {})
        self.types = dict(types or {})
        # This task's share of the token rate; with ``max_concurrency``, concurrency "auto".
        self.token_rate = token_rate
        self.max_concurrency = max_concurrency
        self.rows_per_request = rows_per_request
        # The driver's OTEL_* settings and run span (None: this task records nothing).
        self.telemetry = telemetry

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if self.telemetry is not None:
            self.telemetry.start()  # once per Python worker: Spark reuses them across tasks
        # uvloop when installed, as a local run: the loop's CPU per row bounds a busy task.
        loop = (loop_factory() or asyncio.new_event_loop)()
        summary = BatchSummary()
        chunks = self._chunks(iter(batches), summary)
        try:
            while True:
                try:
                    chunk = loop.run_until_complete(anext(chunks))
                except StopAsyncIteration:
                    break
                yield self._batch(chunk)
        finally:
            loop.run_until_complete(chunks.aclose())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            if self.telemetry is not None:
                # Spark ends its Python workers without their exit handlers.
                self.telemetry.flush()
        if self.counts is not None:
            # Spark applies a task's accumulator updates once, when the task succeeds.
            self.counts.add(counts_of(summary))

    async def _chunks(
        self, batches: Iterator[pa.RecordBatch], summary: BatchSummary
    ) -> AsyncGenerator[list[tuple[dict[str, Any], BatchResult]], None]:
        pending: dict[int, dict[str, Any]] = {}
        reader = _Rows(batches, pending)
        options: dict[str, Any] = {}
        if self.cache is not None:
            # The response cache: a retried task reads back what its failed attempt got.
            options["cache"] = self.cache
            options["cache_mode"] = self.cache_mode
        if self.token_rate is not None:
            options["token_rate"] = self.token_rate
        if self.max_concurrency is not None:
            options["max_concurrency"] = self.max_concurrency
        if self.telemetry is not None:
            options["trace_parent"] = self.telemetry.traceparent
        run = BatchRun(
            self.config,
            reader,
            mapping=self.mapping,
            outputs=self.outputs,
            key=self.key,
            concurrency=self.concurrency,
            rate=self.rate,
            include_response=self.include_response,
            retry=self.retry,
            rows_per_request=self.rows_per_request,
            **self.structured,
            **options,
        )
        chunk: list[tuple[dict[str, Any], BatchResult]] = []
        try:
            async with run:
                async for result in run:
                    chunk.append((pending.pop(result.index), result))
                    summary.add(result)
                    if len(chunk) >= self.output_rows:
                        yield chunk
                        chunk = []
        except Exception as exc:  # A bug must not fail the task: the rest become error rows.
            message = redact(f"{type(exc).__name__}: {exc}", self.config.secrets)
            async for index, row in reader.rest():
                failed = BatchResult(
                    key=row_key(row, index, self.key),
                    index=index,
                    error={"status": None, "message": message},
                )
                chunk.append((row, failed))
                summary.add(failed)
        if chunk:
            yield chunk

    def _batch(self, chunk: list[tuple[dict[str, Any], BatchResult]]) -> pa.RecordBatch:
        if self.lines:
            lines = []
            for row, result in chunk:
                line = result.to_dict()
                if self.include_input:
                    line["input"] = row
                lines.append({"line": json.dumps(line, ensure_ascii=False, default=str)})
            return pa.RecordBatch.from_pylist(lines, schema=self.schema)
        flat = []
        for row, result in chunk:
            out = {name: row.get(name) for name in self.keep_columns}
            out.update(
                result.to_flat(
                    self.output_names, include_response=self.include_response, types=self.types
                )
            )
            flat.append(out)
        return pa.RecordBatch.from_pylist(flat, schema=self.schema)


class _Rows:
    """The partition's rows as an async iterable, each remembered until its result comes.

    Spark's batches are read in a thread (a read may wait on the JVM), so the event loop
    keeps sending meanwhile.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], pending: dict[int, dict[str, Any]]):
        self._batches = batches
        self._pending = pending
        self._read = 0
        self._buffer: list[dict[str, Any]] = []
        self._position = 0

    async def _take(self) -> dict[str, Any] | None:
        while self._position >= len(self._buffer):
            batch = await asyncio.to_thread(next, self._batches, None)
            if batch is None:
                return None
            self._buffer, self._position = batch.to_pylist(), 0
        row = self._buffer[self._position]
        self._position += 1
        return row

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while (row := await self._take()) is not None:
            self._pending[self._read] = row
            self._read += 1
            yield row

    async def rest(self) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Every row without a result yet: those handed over, then those never read."""
        for index, row in sorted(self._pending.items()):
            yield index, row
        self._pending.clear()
        while (left := await self._take()) is not None:
            yield self._read, left
            self._read += 1
