"""`EndpointUDF`: the row engine as a Ray Data callable class (an Arrow batch in, one out).

Each actor keeps one HTTP connection pool and one `ClusterScheduler` for its whole life;
each batch is one run of the local row engine (`BatchRun`: the same mapping, retries,
timeouts, output extraction, error messages and redaction) with ``concurrency`` rows in
flight. An actor runs one batch at a time, so it never has more than ``concurrency``
requests in flight however many batches Ray hands it at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..batch.arrow import result_table
from ..batch.governor import AdaptiveLimit, Governor
from ..batch.keys import key_token, row_key
from ..batch.results import BatchResult, BatchSummary
from ..batch.scheduler import Rate
from ..batch.spec import RunSpec
from ..batch.structured_rows import structured_options
from ..config import SourceConfig
from ..errors import redact
from ..mapping import PayloadBuilder, RowMappingError
from ..observability import WorkerTelemetry
from ..retries import RetryPolicy
from ._coordinator import ClusterScheduler, ClusterTokens, coordinator_for
from ._schema_mode import BatchMode
from ._unique import Unkeyed, unkeyed_rows

if TYPE_CHECKING:
    from .._transports import AsyncTransport

__all__ = [
    "KEY_COLUMN",
    "LINE_COLUMN",
    "UNKEYED_COLUMN",
    "EndpointUDF",
    "ReadyPayloads",
]

# The columns of the ``lines`` form (the command line's JSON Lines output).
LINE_COLUMN = "line"
KEY_COLUMN = "key"
# True for a failed row whose own key was missing or another row's: the driver writes it
# whatever its key (``row:...``), never taking it for a row Ray ran twice.
UNKEYED_COLUMN = "unkeyed"


# What the first batch needs and the constructor does not: the row engine (with httpx) and
# the aiohttp transport, about 0.3 s of imports in a fresh actor process. They load in a
# thread from the constructor on, while Ray Data finishes starting the actor and hands it
# its first batch, instead of on the way to the first request.
_ENGINE_NAMES = (
    ("openai_compat.batch.engine", "BatchRun"),
    ("openai_compat._transports", "AiohttpTransport"),
)
_loading: concurrent.futures.Future[None] | None = None
_loading_lock = threading.Lock()


def _load_engine() -> concurrent.futures.Future[None]:
    """The imports of `_ENGINE_NAMES`, started once per process; done when they are."""
    global _loading
    with _loading_lock:
        if _loading is None:
            loading: concurrent.futures.Future[None] = concurrent.futures.Future()

            def load() -> None:
                try:
                    for module, name in _ENGINE_NAMES:
                        getattr(importlib.import_module(module), name)
                except BaseException as exc:  # raised again where the first batch waits
                    loading.set_exception(exc)
                else:
                    loading.set_result(None)

            threading.Thread(target=load, name="openai-compat-imports", daemon=True).start()
            _loading = loading
        return _loading


class ReadyPayloads(PayloadBuilder):
    """Rows holding a ready payload (``ray.data.llm``'s ``payload`` column) are sent as is.

    A payload is an object, or JSON text of one; a row without the column is mapped as
    usual. A null payload, or one that is not an object, fails the row.
    """

    def __init__(self, request_format: Mapping[str, Any], mapping: Any, column: str) -> None:
        super().__init__(request_format, mapping)
        self.column = column

    def build(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if self.column not in row:
            return super().build(row)
        payload = row[self.column]
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError as exc:
                raise RowMappingError(
                    f"column {self.column!r} is not JSON text: {exc}", column=self.column
                ) from None
        if not isinstance(payload, dict):
            raise RowMappingError(
                f"column {self.column!r} must hold the payload object, got "
                f"{type(payload).__name__}",
                column=self.column,
            )
        return payload

    @property
    def depends_on_row(self) -> bool:
        return True


class EndpointUDF:
    """Sends each row of a batch through the endpoint; use it with ``Dataset.map_batches``.

    ``ds.map_batches(EndpointUDF, fn_constructor_kwargs={"config": config, "outputs": [...]},
    batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=4), num_cpus=0)``.

    Keywords: ``config`` (a dict, JSON text or `SourceConfig`), ``mapping``, ``outputs``,
    ``key`` (the column identifying a row; always kept), ``concurrency`` (rows in flight per
    actor, default 10), ``rate`` (for the whole job, e.g. ``"600/minute"``; None = off),
    ``include_input`` (keep the input columns, default True), ``include_response`` (the
    answer as JSON text in ``http_response``), ``payload_column`` (default ``"payload"``),
    ``retry`` (a `RetryPolicy`), ``coordinator`` (the job's coordinator actor, as
    `map_endpoint` makes it; without one the actors share one named by ``job_name``),
    ``run_id`` (any text naming this run: with ``key``, keys are then unique across the
    whole dataset, as `map_endpoint` does; without it, within each batch only),
    ``telemetry`` (the driver's `WorkerTelemetry`: spans exported from here, the rows'
    beneath the driver's run span, flushed after each batch).

    The result: the input columns, the outputs by name, then ``error_status``,
    ``error_message`` (null when the row succeeded), ``attempts``, ``latency_ms``,
    ``prompt_tokens``, ``completion_tokens``, ``total_tokens``. A failure is a row, never
    an exception (which would make Ray retry the task and, in the end, fail the job).
    """

    def __init__(
        self,
        config: SourceConfig | dict[str, Any] | str,
        *,
        mapping: Any = None,
        outputs: Any = None,
        key: str | None = None,
        concurrency: int | str | None = None,
        rate: Rate | str | None = None,
        include_input: bool = True,
        include_response: bool = False,
        payload_column: str = "payload",
        retry: RetryPolicy | None = None,
        coordinator: Any = None,
        job_name: str = "default",
        run_id: str | None = None,
        lines: bool = False,
        schema: Any = None,
        schema_mode: str | None = None,
        reasks: int | None = None,
        token_rate: Rate | str | None = None,
        max_concurrency: int | None = None,
        rows_per_request: int | None = None,
        telemetry: WorkerTelemetry | None = None,
    ) -> None:
        # The driver's OTEL_* settings: the SDK is set up in this actor's process first.
        self.telemetry = telemetry
        if telemetry is not None:
            telemetry.start()
        if max_concurrency is not None:  # concurrency "auto", up to it
            concurrency = "auto"
        spec = RunSpec.build(
            config,
            outputs=outputs,
            key=key,
            concurrency=concurrency,
            rate=rate,
            include_input=include_input,
            include_response=include_response,
            schema=schema,
            schema_mode=schema_mode,
            reasks=reasks,
            token_rate=token_rate,
            max_concurrency=max_concurrency,
            rows_per_request=rows_per_request,
        )
        self.rows_per_request = spec.rows_per_request
        # With a schema: each batch's run asks for it; the outputs are typed by it.
        self.structured = structured_options(spec)
        self.types = spec.output_types
        self.config = spec.config
        self.builder = ReadyPayloads(self.config.request_format, mapping, payload_column)
        self.outputs = outputs
        self.output_names = spec.output_names
        self.key = key
        self.concurrency = spec.concurrency
        self.rate = spec.rate
        self.include_input = include_input
        self.include_response = include_response
        self.retry = retry
        self.lines = lines
        self.run_id = run_id
        if coordinator is None:
            coordinator = coordinator_for(
                self.rate,
                f"openai-compat:{job_name}:{self.rate}:{spec.token_rate}",
                spec.token_rate,
            )
        self.scheduler = ClusterScheduler(coordinator, self.rate, self.concurrency)
        self.scheduler.register()
        # One governor for the actor's life: the server's account and the adaptive limit
        # carry over from batch to batch; the pause and the token bucket are the job's
        # coordinator's.
        self.governor = Governor(
            self.scheduler,
            token_rate=spec.token_rate,
            adaptive=AdaptiveLimit(spec.concurrency) if spec.concurrency_auto else None,
            tokens=(
                ClusterTokens(coordinator, spec.token_rate) if spec.token_rate is not None else None
            ),
        )
        _load_engine()
        self._transport: AsyncTransport | None = None
        self._one_at_a_time: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __del__(self) -> None:
        # Ray Data drops the UDF when it retires the actor (Ray's graceful actor shutdown),
        # while the event loop its batches ran on is still running in its own thread: the
        # pool is closed there, where aiohttp would otherwise report an unclosed session.
        transport, self._transport = getattr(self, "_transport", None), None
        loop = getattr(self, "_loop", None)
        if transport is None or loop is None or loop.is_closed() or not loop.is_running():
            return
        try:
            if asyncio.get_running_loop() is loop:
                return  # on that loop's own thread: it cannot be waited for here
        except RuntimeError:
            pass  # no loop running in this thread: the usual case
        with contextlib.suppress(Exception):  # the process is going away: no one to tell
            asyncio.run_coroutine_threadsafe(transport.aclose(), loop).result(timeout=5)

    def _keep_columns(self, names: Sequence[str]) -> list[str]:
        if self.include_input:
            return list(names)
        return [self.key] if self.key is not None and self.key in names else []

    async def __call__(self, batch: pa.Table) -> pa.Table:
        await asyncio.wrap_future(_load_engine())  # done already from the second batch on
        if self._one_at_a_time is None:
            # Made on Ray's event loop of this actor, where every batch runs.
            from .._transports import aiohttp_transport

            self._one_at_a_time = asyncio.Lock()
            self._transport = aiohttp_transport(self.concurrency)
            self._loop = asyncio.get_running_loop()
        rows = batch.to_pylist()
        async with self._one_at_a_time:
            results, unkeyed = await self._run(rows)
            if self.telemetry is not None:
                # Ray may end the actor without its exit handlers: nothing left buffered.
                await asyncio.to_thread(self.telemetry.flush)
        if self.lines:
            return self._lines(results, unkeyed)
        return result_table(
            batch,
            results,
            self.output_names,
            keep_columns=self._keep_columns(batch.column_names),
            include_response=self.include_response,
            types=self.types,
        )

    async def _run(self, rows: list[dict[str, Any]]) -> tuple[list[BatchResult], set[int]]:
        """The results of ``rows`` in their order; the positions of those failed for their key."""
        results: list[BatchResult | None] = [None] * len(rows)
        summary = BatchSummary()
        unkeyed: dict[int, Unkeyed] = {}
        if self.key is not None:
            try:
                unkeyed = await unkeyed_rows(
                    rows, self.key, self.scheduler.coordinator, self.run_id
                )
            except Exception:  # the coordinator is gone for good: keys checked in the batch
                unkeyed = await unkeyed_rows(rows, self.key, None, None)
        for position, problem in unkeyed.items():
            failed = BatchResult(
                key=problem.key, index=position, error={"status": None, "message": problem.message}
            )
            if self.lines and self.include_input:
                failed.input = rows[position]
            if self.include_response:
                failed.response = None
            results[position] = failed
            summary.add(failed)
        sent = [position for position in range(len(rows)) if position not in unkeyed]
        from ..batch.engine import BatchRun  # loaded by `_load_engine`

        structured = self.structured
        job_mode: BatchMode | None = None
        if structured and structured.get("schema_mode", "auto") == "auto" and sent:
            # ``auto`` is decided once per job: this batch decides, or runs in the mode
            # another batch chose.
            job_mode = BatchMode(self.scheduler.coordinator, self.run_id)
            decided = await job_mode.start()
            if decided is not None:
                structured = {**structured, "schema_mode": decided}
        run = BatchRun(
            self.config,
            [rows[position] for position in sent],
            mapping=None,
            outputs=self.outputs,
            # The rows sent keep their numbers in the batch and their keys (the keys are
            # unique and present: the rows failed for theirs are not sent), so each result
            # comes back as the batch's.
            key=self.key,
            row_numbers=sent,
            concurrency=max(1, min(self.concurrency, len(sent))),
            rate=None,
            client=self._transport,
            scheduler=self.scheduler,
            governor=self.governor,
            payload_builder=self.builder,
            include_input=self.lines and self.include_input,
            include_response=self.include_response,
            retry=self.retry,
            rows_per_request=self.rows_per_request,
            trace_parent=None if self.telemetry is None else self.telemetry.traceparent,
            **structured,
        )
        chose = run.structured
        try:
            async with run:
                async for result in run:
                    results[result.index] = result
                    summary.add(result)
                    if job_mode is not None and chose is not None:
                        await job_mode.seen(chose.mode)
        except Exception as exc:  # A bug must not fail the job: the rest become error rows.
            message = redact(f"{type(exc).__name__}: {exc}", self.config.secrets)
            for index, found in enumerate(results):
                if found is None:
                    failed = BatchResult(
                        key=row_key(rows[index], index, self.key),
                        index=index,
                        error={"status": None, "message": message},
                    )
                    results[index] = failed
                    summary.add(failed)
        if job_mode is not None:
            await job_mode.finish(chose.mode if chose is not None else None)
        self.scheduler.report(summary)
        return [r for r in results if r is not None], set(unkeyed)

    def _lines(self, results: list[BatchResult], unkeyed: set[int]) -> pa.Table:
        """The result lines of a local run (``BatchResult.to_dict``), keyed by their key text."""
        keys = [key_token(r.key) for r in results]
        lines = [json.dumps(r.to_dict(), ensure_ascii=False) for r in results]
        own = [r.index in unkeyed for r in results]
        return pa.table(
            {
                KEY_COLUMN: pa.array(keys, pa.large_string()),
                LINE_COLUMN: pa.array(lines, pa.large_string()),
                UNKEYED_COLUMN: pa.array(own, pa.bool_()),
            }
        )
