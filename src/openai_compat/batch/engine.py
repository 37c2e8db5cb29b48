"""The row engine: `BatchRun` reads rows, maps, sends, picks out the outputs, yields results.

One `BatchRun` reads rows (streamed), maps each to a payload, and sends them through one
`Endpoint` sharing one HTTP client, with up to ``concurrency`` workers (started as rows
arrive, so a short input never starts more workers than it has rows) and the run's
`Scheduler` (rate limit, pause after a 429). Results come out in completion order. Memory
stays flat: rows wait in a queue of a few times the concurrency, never the whole input.
Writing them to an output (checkpoint, signals, progress) is `run.drive`'s job, with a sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Mapping
from types import TracebackType
from typing import Any, Unpack
from urllib.parse import urlsplit

from .._transports import Sendable, as_transport, default_client_factory
from ..apis import EMBEDDINGS, Usage
from ..config import SourceConfig
from ..endpoint import Completion, Endpoint
from ..errors import (
    ConfigurationError,
    EndpointError,
    OpenAICompatError,
    StreamError,
    redact,
)
from ..mapping import (
    OutputField,
    RowMappingError,
    output_names,
)
from ..observability import RunSpan, run_span
from ._options import BatchOptions, check_keywords
from ._row_accounting import RowAccounting
from ._sql_reader import DatabaseRows
from .governor import GovernedTransport, Governor, Ticket, governed_factory
from .openai_batch_format import batch_row_settings, is_batch_input
from .packing import EmbeddingsPacker
from .results import BatchResult, BatchSummary
from .row_keys import RowKeys
from .row_results import RowResults, failed
from .scheduler import DEFAULT_RATE, Scheduler
from .sources import RowSource, UnreadableRow, open_rows, read_in_thread
from .spec import SPEC_OPTIONS, RunSpec
from .sql_url import is_database_url
from .structured_rows import cached_answer, cached_valid
from .throughput import governor_for

__all__ = ["BatchRun", "Rows"]

# A row ready to send: its index, key, row, payload, and the payload's bytes when encoded.
_Item = tuple[int, str | int, Any, dict[str, Any], bytes | None]

Rows = Iterable[Any] | AsyncIterable[Any] | str | os.PathLike[str]
_READ_CHUNK = 512
_DONE: Any = object()
_KEYWORDS = BatchOptions.__optional_keys__


def _open_input(rows: str | os.PathLike[str], options: BatchOptions) -> RowSource | DatabaseRows:
    """The rows of a path, or of a database URL (with ``query`` or ``table``)."""
    query, table = options.get("query"), options.get("table")
    if query is not None or table is not None or is_database_url(rows):
        return DatabaseRows(rows, query, table=table, params=options.get("params"))
    return open_rows(rows, options.get("input_format"))


def _asking_for_usage(
    payload: dict[str, Any], encoded: bytes | None
) -> tuple[dict[str, Any], bytes | None]:
    """A streamed row's payload asking for its usage (OpenAI's ``stream_options``): a stream
    reports it only when asked, and without it a run counts no tokens, no cost, and its
    budget never stops it. A request format's own ``stream_options`` are left as they are.
    The body is ``encoded`` with the key added last, as in the dict (None: encode again)."""
    asked = {**payload, "stream_options": {"include_usage": True}}
    if encoded is None or not payload:
        return asked, None
    return asked, encoded[:-1] + b', "stream_options": {"include_usage": true}}'


class BatchRun:
    """An async iterator of `BatchResult`, one per row (in completion order).

    Use ``async with run_batch(...) as run: async for result in run: ...``; ``run.summary``
    is updated live. ``stop()`` stops reading rows (rows in flight finish); ``abort()``
    also cancels the rows in flight (they are not reported, so a resumed run redoes them).
    The options are `BatchOptions` (``openai_compat.batch._options``), described at `run_batch`;
    a `RunSpec` built before may stand for ``config`` and the options it holds.
    """

    def __init__(
        self,
        config: RunSpec | SourceConfig | dict[str, Any] | str,
        rows: Rows,
        **options: Unpack[BatchOptions],
    ) -> None:
        check_keywords(options, _KEYWORDS, "BatchRun.__init__()")
        if isinstance(config, RunSpec):
            given = sorted(set(options) & set(SPEC_OPTIONS))
            if given:
                raise TypeError(
                    f"BatchRun.__init__() got {', '.join(given)} with a RunSpec: "
                    "they are the spec's (RunSpec.build(config, ...))"
                )
            spec = config
        else:
            given_options = {name: options.get(name) for name in SPEC_OPTIONS}
            given_options["rate"] = options.get("rate", DEFAULT_RATE)
            spec = RunSpec.build(config, **given_options)
        self.spec = spec
        self.config = spec.config
        self.builder = options.get("payload_builder") or spec.payload_builder
        self.outputs: list[OutputField] = spec.output_fields
        if isinstance(rows, str | os.PathLike):
            rows = _open_input(rows, options)
        elif options.get("query") is not None or options.get("table") is not None:
            raise ConfigurationError(
                "query and table read a database: pass its URL as the rows", field="query"
            )
        self.rows = rows
        self.key = spec.key
        batch_lines = is_batch_input(rows, options.get("input_format"))
        if batch_lines:  # an OpenAI batch file: each line's body is its payload
            settings = {
                "mapping": spec.mapping,
                "key": spec.key,
                "payload_builder": options.get("payload_builder"),
            }
            self.key, self.builder = batch_row_settings(settings, self.config.dialect)
        self.concurrency = spec.concurrency
        self.shard = spec.shard
        self._skip: Collection[str] = options.get("skip", ())
        self.row_numbers = options.get("row_numbers")
        self.retry = options.get("retry")
        client = options.get("client")
        self._client: Sendable | None = client
        self._owns_client = client is None
        self._client_factory = options.get("client_factory")
        self._notice = options.get("on_notice") or (lambda _message: None)
        self.scheduler = options.get("scheduler") or Scheduler(spec.rate, on_pause=self._on_pause)
        self.governor: Governor | None = options.get("governor") or governor_for(
            spec, self.scheduler
        )
        self.summary = BatchSummary()
        # With a schema: its mode (chosen once per run under auto), validator and re-asks.
        self.structured = spec.structured()
        # The response cache, prices and budget: None when the options ask for none of them.
        self.accounting = RowAccounting.from_spec(spec, self.summary, self._notice)
        self.results = RowResults(
            self.outputs,
            include_input=spec.include_input,
            include_response=spec.include_response,
            accounting=self.accounting,
        )
        self._budget_spent: str | None = None
        self._lookups: list[_Item] = []
        # Rows wait here for a worker: at most `_work_max`. Once full, the reader waits
        # until the workers have taken half (`_room`), not for each row they take.
        self._work: asyncio.Queue[Any] = asyncio.Queue()
        self._work_max = self.concurrency * 2 * spec.pack_size
        # Embeddings rows go through the packer (rows packed, base64, the answer split).
        self._pack = spec.pack_size
        self._packer: EmbeddingsPacker | None = None
        self._room = asyncio.Event()
        self._results: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.concurrency * 2)
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._feeder: asyncio.Task[None] | None = None
        self._busy = 0
        # The end (or a failure) of the results, met while collecting the ready ones.
        self._held: Any = None
        self._left_out = False
        self._endpoint: Endpoint | None = None
        self._unlimited = False
        self._started = False
        # The run's span (None: nothing records traces); each row's span hangs beneath it.
        self._run_span: RunSpan | None = None
        self._trace_parent = options.get("trace_parent")
        self._finished = False
        self._stopping = False
        self._aborted = False
        # A batch line without custom_id is a failed row, not a refused run.
        self._keys = RowKeys(
            self.key, spec.shard, self.summary, skip=self.skip, column_checked=batch_lines
        )

    @property
    def skip(self) -> Collection[str]:
        """Key texts to leave out (an output's checkpoint sets them before the run starts)."""
        return self._skip

    @skip.setter
    def skip(self, keys: Collection[str]) -> None:
        self._skip = self._keys.skip = keys

    @property
    def include_input(self) -> bool:
        """True when each result carries its row as ``input``."""
        return self.results.include_input

    @property
    def include_response(self) -> bool:
        """True when each result carries the whole answer as ``response``."""
        return self.results.include_response

    @include_response.setter
    def include_response(self, value: bool) -> None:
        self.results.include_response = value

    @property
    def output_names(self) -> list[str]:
        """The names of the output fields, in order."""
        return output_names(self.outputs)

    def _on_pause(self, seconds: float) -> None:
        self._notice(f"the endpoint answered 429: pausing new requests for {seconds:.2f} s")

    # -- lifecycle --------------------------------------------------------------------------
    def _start(self) -> None:
        self._started = True
        self.summary.started = time.perf_counter()
        if not self.builder.depends_on_row:
            self._notice(
                "every row gets the same payload: add a mapping or {{column}} placeholders "
                "in request_format to send each row's values"
            )
        if self._client is None:
            # aiohttp: imported only when a run starts.
            from .._transports import aiohttp_transport

            self._client = aiohttp_transport(self.concurrency)
        sender: Sendable = self._client
        factory = self._client_factory
        if self.governor is not None:  # every attempt through it: the pause, the headers
            sender = GovernedTransport(as_transport(self._client), self.governor)
            if self.config.advanced.needs_own_client:  # TLS or proxy: a client of its own
                factory = governed_factory(factory or default_client_factory, self.governor)
        self._endpoint = Endpoint(
            self.config,
            client=sender,
            retry=self.retry,
            on_retry=self.scheduler.on_retry,
            client_factory=factory,
        )
        # No rate limit and the plain scheduler: its `ready` returns at once until a 429
        # first pauses the run (`pauses`), so each row does not await it until then.
        if self.config.dialect is EMBEDDINGS:
            self._packer = EmbeddingsPacker(
                self._endpoint,
                self.results,
                self.accounting,
                self.scheduler,
                secrets=self.config.secrets,
                notice=self._notice,
                governor=self.governor,
            )
        self._unlimited = (
            type(self.scheduler).ready is Scheduler.ready and self.scheduler.rate is None
        )
        self._run_span = run_span(
            {"openai_compat.batch.concurrency": self.concurrency, "server.address": self._host()},
            self._trace_parent,
        )
        token = None if self._run_span is None else self._run_span.attach()
        try:  # the tasks (and the workers they start) inherit the run's span as current
            self._feeder = asyncio.create_task(self._feed())
            self._tasks = [asyncio.create_task(self._supervise()), self._feeder]
        finally:
            if token is not None:
                RunSpan.detach(token)

    def _host(self) -> str:
        return urlsplit(self.config.url).hostname or ""

    def _trace_unsent(self, result: BatchResult) -> None:
        """A row's span, when the row was answered or failed without a request."""
        if self._run_span is not None:
            self._run_span.row(result.key, result.index).end(result)

    def _add_worker(self) -> None:
        # Workers start with the rows (one per row up to `concurrency`), so their number and
        # memory follow the rows in flight, not the option.
        worker = asyncio.create_task(self._work_loop())
        self._workers.append(worker)
        self._tasks.append(worker)

    async def __aenter__(self) -> BatchRun:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel whatever still runs and close the HTTP client (if the run made it)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.accounting is not None:
            self.accounting.close()
        if not self._finished:
            self._finished = True
            self.summary.interrupted = self._left_out
            # Only a stop that left rows unrun is the budget's doing (exit code 3).
            self.summary.budget_spent = self._budget_spent if self._left_out else None
            self.summary.finish()
            if self._run_span is not None:
                summary = self.summary
                self._run_span.end(
                    {
                        "rows.ok": summary.ok,
                        "rows.failed": summary.failed,
                        "rows.cached": summary.cached,
                        "requests": summary.requests,
                        "interrupted": summary.interrupted,
                    }
                )
                self._run_span = None

    @property
    def stopping(self) -> bool:
        """True once `stop` (or `abort`) was called."""
        return self._stopping

    def stop(self) -> None:
        """Read no more rows; rows in flight finish and are reported."""
        self._stopping = True
        # The reader may wait on a slow stdin: rows it has not handed over stay for a resume.
        if self._feeder is not None and not self._feeder.done():
            self._left_out = True
            self._feeder.cancel()

    def abort(self) -> None:
        """Stop now: rows in flight are cancelled (a resumed run does them again)."""
        self.stop()
        self._aborted = True
        if self._busy:
            self._left_out = True
        for task in self._workers:
            task.cancel()

    def __aiter__(self) -> AsyncIterator[BatchResult]:
        return self

    async def __anext__(self) -> BatchResult:
        if self._finished:
            raise StopAsyncIteration
        if not self._started:
            self._start()
        if self._held is not None:
            item, self._held = self._held, None
        else:
            item = await self._results.get()
        if item is _DONE:
            await self.aclose()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            await self.aclose()
            raise item
        self.summary.add(item)
        result: BatchResult = item
        return result

    async def next_ready(self) -> list[BatchResult]:
        """The next result and every result ready after it, in completion order.

        As many ``__anext__`` calls (each result is counted in ``summary``), without waiting
        for more than the first: a writer can then hand them to the OS in one write.
        Raises ``StopAsyncIteration`` at the end.
        """
        ready = [await self.__anext__()]
        results = self._results
        add = self.summary.add
        while not results.empty():
            item = results.get_nowait()
            if item is _DONE or isinstance(item, BaseException):
                self._held = item  # for the next call, as __anext__ would have met it
                break
            add(item)
            ready.append(item)
        return ready

    # -- reading rows -----------------------------------------------------------------------
    async def _row_chunks(self) -> AsyncIterator[list[Any]]:
        rows = self.rows
        if isinstance(rows, AsyncIterable):
            chunk: list[Any] = []
            async for row in rows:
                chunk.append(row)
                if len(chunk) >= _READ_CHUNK:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
            return
        if isinstance(rows, DatabaseRows):
            async for chunk in read_in_thread(rows, _READ_CHUNK):
                yield chunk
            return
        if isinstance(rows, RowSource):
            # A pipe may deliver rows slowly: each is handed over as soon as it is read.
            size = 1 if rows.path == "-" else _READ_CHUNK
            async for chunk in read_in_thread(rows, size):
                yield chunk
            return
        iterator = iter(rows)
        while chunk := [row for _, row in zip(range(_READ_CHUNK), iterator, strict=False)]:
            yield chunk
            await asyncio.sleep(0)

    async def _feed(self) -> None:
        index = 0
        numbers = self.row_numbers
        work = self._work
        async for chunk in self._row_chunks():
            for row in chunk:
                if self._stopping:
                    self._left_out = True
                    return
                ready = self._prepare(index if numbers is None else numbers[index], row)
                index += 1
                if ready is None:
                    continue
                if isinstance(ready, BatchResult):  # failed before any request
                    self._trace_unsent(ready)
                    await self._put_result(ready)
                elif self.accounting is not None and self.accounting.cache_reads:
                    # Looked up in the cache a few hundred at a time: one query for them all.
                    self._lookups.append(ready)
                    if len(self._lookups) >= _READ_CHUNK:
                        await self._look_up()
                else:  # `_dispatch`, inlined: this runs for every row
                    if len(self._workers) < self.concurrency:
                        self._add_worker()
                    if work.qsize() >= self._work_max:
                        await self._wait_for_room()
                    work.put_nowait(ready)
            if self._lookups:
                await self._look_up()

    def _prepare(self, index: int, row: Any) -> _Item | BatchResult | None:
        """The row ready to send, its result when it fails before any request, or None
        when it is not run here (another shard's, or already written)."""
        readable = isinstance(row, Mapping)
        admitted = self._keys.admit(index, row, readable)
        if admitted is None:
            return None
        key, problem = admitted
        if problem is None and not readable:
            problem = (
                row.reason
                if isinstance(row, UnreadableRow)
                else (f"row {index} is a {type(row).__name__}, not an object of columns")
            )
        if problem is not None:
            return self.results.complete(failed(key, index, problem), row)
        try:
            payload, encoded = self.builder.build_body(row)
            if (
                self.config.is_stream
                and "stream_options" not in payload
                and self.config.dialect.asks_stream_usage
            ):
                payload, encoded = _asking_for_usage(payload, encoded)
        except RowMappingError as exc:
            return self.results.complete(failed(key, index, str(exc)), row)
        except Exception as exc:  # A bug must not stop the run: the row alone fails.
            message = redact(f"{type(exc).__name__}: {exc}", self.config.secrets)
            return self.results.complete(failed(key, index, message), row)
        return (index, key, row, payload, encoded)

    async def _wait_for_room(self) -> None:
        """Wait until the workers have taken half the queued rows (`_took`)."""
        self._room.clear()
        await self._room.wait()

    def _took(self) -> None:
        if self._work.qsize() <= self.concurrency * self._pack and not self._room.is_set():
            self._room.set()

    async def _put_result(self, result: BatchResult) -> None:
        # `put` itself, without a coroutine when there is room (the usual case).
        if self._results.full():
            await self._results.put(result)
        else:
            self._results.put_nowait(result)

    async def _dispatch(self, item: _Item) -> None:
        if len(self._workers) < self.concurrency:
            self._add_worker()
        if self._work.qsize() >= self._work_max:
            await self._wait_for_room()
        self._work.put_nowait(item)

    async def _look_up(self) -> None:
        """Answer the rows kept for the cache that it holds; send the others."""
        assert self.accounting is not None and self._endpoint is not None
        pending, self._lookups = self._lookups, []
        prepare = self._endpoint.prepare
        structured = self.structured
        bodies = [prepare(item[3]) for item in pending]
        if structured is not None:
            bodies = [structured.cache_body(body) for body in bodies]
        hits = self.accounting.lookup(bodies)
        for item, hit in zip(pending, hits, strict=True):
            if hit is not None and structured is not None:
                hit = hit if structured.mode and cached_valid(structured, hit.response) else None
            if hit is None:
                await self._dispatch(item)
                continue
            index, key, row, _, _ = item  # answered before: nothing is sent
            if structured is not None:
                result = self.results.validated(
                    key, index, cached_answer(structured, hit.response, hit.request_id), 0.0
                )
            else:
                result = self.results.answered(key, index, hit.response, [], 0, 0.0, hit.request_id)
            result.cached = True
            result = self.results.complete(result, row)
            self._trace_unsent(result)
            await self._put_result(result)

    # -- sending ----------------------------------------------------------------------------
    async def _work_loop(self) -> None:
        work = self._work
        while True:
            # `get` itself, without a coroutine when a row is waiting (the usual case).
            item = await work.get() if work.empty() else work.get_nowait()
            self._took()
            if item is None:
                return
            if self._stopping:
                self._left_out = True
                continue  # queued, not started: left for a resumed run
            if self._packer is not None:
                if await self._send_packed(item):
                    return
                continue
            self._busy += 1
            row_span = None if self._run_span is None else self._run_span.row(item[1], item[0])
            try:
                if row_span is None:
                    result = await self._send(*item)
                else:
                    row_span.enter()  # current while the row's request is sent
                    result = await self._send(*item)
            finally:
                self._busy -= 1
            if row_span is not None:
                row_span.end(result)
            if self.accounting is not None:
                self._count_spending(result)
            await self._put_result(result)

    async def _send_packed(self, first: _Item) -> bool:
        """Send ``first`` with the rows queued behind it (up to the pack size); True when
        the end of the work was met among them."""
        assert self._packer is not None
        work, items, ending = self._work, [first], False
        while len(items) < self._pack and not work.empty():
            item = work.get_nowait()
            self._took()
            if item is None:
                ending = True
                break
            items.append(item)
        if self._stopping:
            self._left_out = True
            return ending
        self._busy += 1
        try:
            results = await self._packer.send(items)
        finally:
            self._busy -= 1
        for result in results:
            if self.accounting is not None:
                self._count_spending(result)
            await self._put_result(result)
        return ending

    def _count_spending(self, result: BatchResult) -> None:
        """Count what a sent row cost; once the budget is spent, start no new row."""
        assert self.accounting is not None
        spent = self.accounting.count(result)
        if spent is not None and self._budget_spent is None:
            self._budget_spent = spent
            self._notice(f"{spent}: starting no new rows; the rows in flight finish")
            self.stop()

    async def _send(
        self,
        index: int,
        key: str | int,
        row: Mapping[str, Any],
        payload: dict[str, Any],
        encoded: bytes | None,
    ) -> BatchResult:
        assert self._endpoint is not None
        ticket: Ticket | str | None = None
        if self.governor is not None or not self._unlimited or self.scheduler.pauses:
            try:
                if self.governor is not None:
                    ticket = await self.governor.admit(payload)
                else:
                    await self.scheduler.ready()
            except Exception as exc:  # the row fails, never its worker (which would hang)
                message = redact(f"{type(exc).__name__}: {exc}", self.config.secrets)
                return self.results.complete(
                    failed(key, index, f"not sent: the run's rate limit failed: {message}"), row
                )
            if isinstance(ticket, str):  # larger than the whole limit: never sendable
                return self.results.complete(failed(key, index, ticket), row)
        assert not isinstance(ticket, str)
        started = time.perf_counter()
        try:
            if self.structured is not None:
                return self.results.complete(
                    await self._send_structured(index, key, payload, started), row
                )
            completion = await self._endpoint.complete(payload, encoded=encoded)
        except OpenAICompatError as exc:
            self.scheduler.on_failure(exc)
            result = failed(
                key,
                index,
                str(exc),
                exc.status if isinstance(exc, EndpointError) else None,
                exc.attempts,
                round((time.perf_counter() - started) * 1000, 1),
            )
            if isinstance(exc, EndpointError):
                result.request_id = exc.request_id
            if isinstance(exc, EndpointError | StreamError):
                self.results.refused(result, exc.body)
        except Exception as exc:  # A bug must not lose the row: record it as failed.
            message = redact(f"{type(exc).__name__}: {exc}", self.config.secrets)
            result = failed(key, index, message, None, 1)
        except BaseException:  # cancelled (an abort): its place under the limits goes back
            if ticket is not None:
                self._settle(ticket, None)
            raise
        else:
            result = self.results.answered(
                key,
                index,
                completion.response,
                completion.warnings,
                completion.attempts,
                round(completion.latency_s * 1000, 1),
                completion.request_id,
            )
            if self.accounting is not None:
                self.accounting.price(result, completion.response, payload)
                if result.error is None and not completion.truncated:
                    body = self._endpoint.prepare(payload)
                    self.accounting.store(body, completion.response, completion.request_id)
        if ticket is not None:
            self._settle(ticket, result)
        return self.results.complete(result, row)

    async def _send_structured(
        self, index: int, key: str | int, payload: dict[str, Any], started: float
    ) -> BatchResult:
        """Ask until the answer validates (`Structured.ask`): the re-asks are this row's
        attempts, usage and cost; only a valid first answer is cached."""
        assert self._endpoint is not None and self.structured is not None
        endpoint, scheduler, governor, sent = self._endpoint, self.scheduler, self.governor, 0

        async def send(body: dict[str, Any]) -> Completion:
            nonlocal sent
            # A re-ask (or the next mode auto tries) is a request like any other: it waits
            # for the run's rate limit and its pause after a 429, as the first did, and
            # reserves its tokens while in flight (not another place: the row holds one).
            # The row's first reservation is settled against the usage of all its answers,
            # so a re-ask's own is given back once it is answered.
            if sent and governor is not None:
                ticket = await governor.admit(body, slot=False)
                if isinstance(ticket, str):
                    raise ConfigurationError(ticket, field="token_rate")
                sent += 1
                try:
                    return await endpoint.complete(body)
                finally:
                    governor.settle(ticket, 0, None)
            if sent and (not self._unlimited or scheduler.pauses):
                await scheduler.ready()
            sent += 1
            return await endpoint.complete(body)

        answer = await self.structured.ask(send, payload)
        result = self.results.validated(
            key, index, answer, round((time.perf_counter() - started) * 1000, 1)
        )
        if self.accounting is not None:
            self.accounting.price(result, {**answer.response, "usage": answer.usage}, payload)
            if answer.outcome == "first" and not answer.truncated:
                body = self.structured.cache_body(self._endpoint.prepare(payload))
                self.accounting.store(body, answer.response, answer.request_id)
        return result

    def _settle(self, ticket: Ticket, result: BatchResult | None) -> None:
        """The row's reservation settled against the usage its answer reported."""
        assert self.governor is not None
        usage = Usage.parse(result.usage) if result is not None else None
        status = result.error.get("status") if result is not None and result.error else None
        self.governor.settle(ticket, usage.tokens if usage else None, status)
        self.summary.concurrency_limit = self.governor.concurrency_limit

    async def _supervise(self) -> None:
        assert self._feeder is not None
        error: BaseException | None = None
        try:
            await self._feeder
        except asyncio.CancelledError:
            task = asyncio.current_task()
            # Only the feeder was stopped; a cancel of this task itself goes on up.
            if not self._stopping or (task is not None and task.cancelling()):
                raise
        except Exception as exc:
            error = exc
        if self._stopping:
            # Queued rows were not started: they stay for a resumed run.
            while not self._work.empty():
                self._work.get_nowait()
                self._left_out = True
        for _ in self._workers:
            await self._work.put(None)
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._results.put(error if error is not None else _DONE)
