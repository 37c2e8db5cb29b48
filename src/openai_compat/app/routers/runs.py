"""The HTTP API of batch runs: uploads, runs, their events and results (``/api/v1``).

Every route requires the token (the router's dependency, and the gate before it). A run is
validated whole before it is created (the input, the mapping against the input's columns,
the outputs against the response format, the key column, concurrency and rate): a 422
lists every problem. docs/runs-api.md has the requests and answers with examples.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from ...batch import DEFAULT_RATE, Rate
from ...batch.budget import Budget
from ...batch.results import BatchResult
from ...batch.scheduler import MAX_CONCURRENCY
from ...batch.writers import CsvWriter
from ...config import SourceConfig
from ...errors import ConfigurationError
from ...mapping import PayloadBuilder, default_outputs, get_path, output_names, parse_outputs
from ..connectors.services import ConnectorServices
from ..dependencies import (
    ExecutorDep,
    RunStoreDep,
    ServicesDep,
    SettingsDep,
    require_token,
)
from ..http.ids import PathConnectorId, decode_cursor, encode_cursor, parse_connector_id
from ..http.problems import ApiError, FieldError
from ..http.schemas import error_responses
from ..runs.executor import run_price
from ..runs.inputs import DatabaseProbe, api_field, database_host, probe_database
from ..runs.placeholders import placeholders_of
from ..runs.store import FINAL_STATUSES, RunStore
from ..runs.tables import RUN_STATUSES
from ..runs.uploads import inspect_upload, receive_upload, too_large, upload_dir

__all__ = ["runs_router"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# How often the events stream looks at the run (it reads the database: any instance may
# be the one running it).
_EVENTS_POLL_S = 0.5
# A progress event at least this often, changed or not (keeps proxies from closing it).
_EVENTS_KEEPALIVE_S = 10.0
_MAX_RUN_ID = 2**31 - 1
_DEFAULT_RATE = str(DEFAULT_RATE) if DEFAULT_RATE is not None else None


_WHY = {
    400: "the body cannot be read",
    404: "there is no run (or upload, or connector) with this id",
    409: "the run is not in a status that allows this, or its connector cannot be used",
    413: "the upload is over OPENAI_COMPAT_MAX_UPLOAD_BYTES",
    415: "the upload is not multipart/form-data",
}


def _run_id(value: Any) -> int:
    parsed = parse_connector_id(value) if isinstance(value, str) else None
    if parsed is None:
        raise PydanticCustomError(
            "run_id", "must be a run id: a whole number from 1 in plain digits"
        )
    return parsed


PathRunId = Annotated[int, BeforeValidator(_run_id)]

runs_router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    responses=error_responses(401, 413, 422),
    tags=["runs"],
)


class RunIn(BaseModel):
    """A run to create for a saved connector."""

    input: dict[str, Any] = Field(
        description='{"upload_id": "..."} (an upload\'s id), or {"database": url, "query": sql}'
    )
    mapping: Any = Field(
        default=None, description="the platform's mapping list: [{name, value, value_type, type}]"
    )
    outputs: Any = Field(
        default=None,
        description='[{"name": path, "as": name, "parse": "json"}]; default: the string '
        "leaves of the response format",
    )
    key: str | None = Field(default=None, description="the column identifying a row")
    concurrency: int = Field(default=10, ge=1, le=MAX_CONCURRENCY)
    rate: str | None = Field(
        default=_DEFAULT_RATE, description='a rate limit such as "600/minute"; null: none'
    )
    prices: Any = Field(
        default=None,
        description='token prices, USD per million: "input=0.15,output=0.60[,cached_input=0.075]"'
        ' or {"input": 0.15, "output": 0.6, "cached_input": 0.075}; each result gets cost',
    )
    max_cost: float | None = Field(
        default=None, description="stop starting rows once the run spent this (USD; needs prices)"
    )
    max_tokens: int | None = Field(
        default=None, description="stop starting rows once the run used this many tokens"
    )
    placeholders: Any = Field(
        default=None,
        description='{"placeholder": "column"}: fill a {{placeholder}} of the request format '
        "from a column of another name",
    )


# -- uploads -------------------------------------------------------------------------------
@runs_router.post(
    "/uploads",
    status_code=201,
    response_model=None,
    responses=error_responses(400, 413, 415, why=_WHY),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def create_upload(request: Request, settings: SettingsDep, store: RunStoreDep) -> Response:
    """Upload a dataset (multipart, part ``file``): JSON Lines, CSV, Parquet, or gzipped.

    Streamed to the data directory; refused with 413 past ``OPENAI_COMPAT_MAX_UPLOAD_BYTES``.
    Answers ``{id, filename, format, rows_estimate, columns, sample}``.
    """
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + _MULTIPART_SLACK:
        raise too_large(limit)
    partial = upload_dir(settings.data_dir) / f".receiving-{id(request)}"
    received = await receive_upload(
        request.headers.get("content-type", ""), request.stream(), partial, limit
    )
    found = await run_in_threadpool(inspect_upload, settings.data_dir, received)
    view = await run_in_threadpool(store.add_upload, found)
    return _json(view, 201)


# The multipart framing around the file (boundaries, part headers) is not the file.
_MULTIPART_SLACK = 64 * 1024


@runs_router.get(
    "/uploads/{upload_id}", response_model=None, responses=error_responses(404, why=_WHY)
)
async def get_upload(upload_id: str, store: RunStoreDep) -> Response:
    """An upload's columns and first rows."""
    row = await run_in_threadpool(store.upload, upload_id)
    if row is None:
        raise ApiError(404, f"there is no upload with id {upload_id}")
    from ..runs.store import upload_view

    return _json(upload_view(row))


# -- runs ----------------------------------------------------------------------------------
def _json(data: Any, status_code: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status_code, media_type="application/json")


@dataclass
class _Input:
    """A run's input, checked: what is stored (no password), the encrypted URL if any, the
    input's columns (None when unknown) and row count."""

    public: dict[str, Any]
    encrypted_url: str | None = None
    columns: list[str] | None = None
    total: int | None = None


async def _checked_input(
    store: RunStore, services: ConnectorServices, given: dict[str, Any], errors: list[FieldError]
) -> _Input:
    if "upload_id" in given:
        extra = sorted(set(given) - {"upload_id"})
        if extra:
            errors.append(FieldError("input", f"takes upload_id alone; remove {extra}"))
        upload_id = given["upload_id"]
        if not isinstance(upload_id, str) or not upload_id:
            errors.append(FieldError("input.upload_id", "must be the id of an upload"))
            return _Input(given)
        row = await run_in_threadpool(store.upload, upload_id)
        if row is None:
            errors.append(
                FieldError("input.upload_id", f"there is no upload {upload_id!r}: upload it first")
            )
            return _Input(given)
        return _Input({"upload_id": upload_id}, None, list(row.columns), row.rows_estimate)
    if "database" in given or "query" in given:
        extra = sorted(set(given) - {"database", "query", "params"})
        if extra:
            errors.append(FieldError("input", f"takes database, query and params; remove {extra}"))
        probe = await _probe(services, DatabaseIn.model_validate(given), errors, "input")
        if probe is None:
            return _Input({})
        found, clean = probe
        public = {"database": found.shown, "query": clean.query, "params": clean.params}
        encrypted = services.cipher.encrypt(clean.database)
        return _Input(public, encrypted, found.columns, found.rows_estimate)
    errors.append(
        FieldError("input", 'must be {"upload_id": "..."} or {"database": url, "query": sql}')
    )
    return _Input(given)


class DatabaseIn(BaseModel):
    """A database query as a run's input (or to preview)."""

    database: Any = Field(
        default=None, description="a SQLAlchemy URL: postgresql://user:password@host/db"
    )
    query: Any = Field(default=None, description="a SELECT statement; :name parameters from params")
    params: Any = Field(default=None, description="the query's :name parameters")


@dataclass
class _CleanDatabase:
    database: str
    query: str
    params: dict[str, Any] | None


async def _probe(
    services: ConnectorServices, given: DatabaseIn, errors: list[FieldError], prefix: str
) -> tuple[DatabaseProbe, _CleanDatabase] | None:
    """Check a database input (connect, first rows, count); None with ``errors`` if wrong."""
    at = f"{prefix}." if prefix else ""
    problems = []
    if not isinstance(given.database, str) or not given.database.strip():
        problems.append(FieldError(f"{at}database", "must be a database URL (text)"))
    if not isinstance(given.query, str) or not given.query.strip():
        problems.append(FieldError(f"{at}query", "must be a SELECT statement (text)"))
    if given.params is not None and not isinstance(given.params, dict):
        problems.append(FieldError(f"{at}params", "must be an object of :name -> value"))
    if problems:
        errors += problems
        return None
    clean = _CleanDatabase(given.database.strip(), given.query, given.params)
    try:
        # The host is judged by the address policy before anything connects to it.
        host = await run_in_threadpool(database_host, clean.database)
        if host:
            shown = f"[{host}]" if ":" in host else host
            try:
                await services.check_address(f"tcp://{shown}", f"{at}database")
            except ApiError as exc:
                errors += exc.body.get("errors", [])
                return None
        found = await run_in_threadpool(probe_database, clean.database, clean.query, clean.params)
    except ConfigurationError as exc:
        field = api_field(exc).removeprefix("input.")
        errors.append(FieldError(f"{at}{field}", exc.reason))
        return None
    return found, clean


@runs_router.post("/queries", response_model=None, responses=error_responses(400, why=_WHY))
async def preview_query(body: DatabaseIn, services: ServicesDep) -> Response:
    """Preview a database input: ``{database, columns, sample, rows_estimate}``."""
    errors: list[FieldError] = []
    probe = await _probe(services, body, errors, "")
    if probe is None:
        raise ApiError.invalid(errors)
    found = probe[0]
    return _json(
        {
            "database": found.shown,
            "columns": found.columns or [],
            "sample": found.sample,
            "rows_estimate": found.rows_estimate,
        }
    )


def _check_mapping(
    config: SourceConfig,
    mapping: Any,
    columns: list[str] | None,
    errors: list[FieldError],
    chosen: dict[str, str],
) -> None:
    try:
        builder = PayloadBuilder(config.request_format, mapping)
    except ConfigurationError as exc:
        errors.extend(_problems(exc, "mapping"))
        return
    if columns is None:
        return
    shown = ", ".join(map(repr, columns[:30])) or "none"
    placeholders = {c for c in builder.columns if c not in {i.value for i in builder.items}}
    for i, item in enumerate(builder.items):
        if not item.static and item.value not in columns:
            errors.append(
                FieldError(
                    f"mapping[{i}].value",
                    f"the input has no column {item.value!r} (its columns: {shown})",
                )
            )
    for placeholder in sorted(placeholders):
        column = chosen.get(placeholder, placeholder)
        if column not in columns:
            errors.append(
                FieldError(
                    "mapping",
                    f"the request format's placeholder {{{{{placeholder}}}}} names no column of "
                    f"the input (its columns: {shown}); map it, choose its column in "
                    "placeholders, or rename the column",
                )
            )


def _check_placeholders(
    config: SourceConfig, given: Any, columns: list[str] | None, errors: list[FieldError]
) -> dict[str, str]:
    """The placeholder -> column choice, each checked (the placeholder is the request
    format's, the column the input's); ``{}`` when none or wrong."""
    if given is None:
        return {}
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in given.items()
    ):
        errors.append(
            FieldError(
                "placeholders",
                'must be an object of placeholder -> column name, e.g. {"ticket": "text"}',
            )
        )
        return {}
    known = placeholders_of(config.request_format)
    shown = ", ".join(map(repr, (columns or [])[:30])) or "none"
    problems = []
    for placeholder, column in given.items():
        if placeholder not in known:
            found = ", ".join(f"{{{{{p}}}}}" for p in known) or "none"
            problems.append(
                FieldError(
                    f"placeholders.{placeholder}",
                    f"the request format has no placeholder {{{{{placeholder}}}}} (its "
                    f"placeholders: {found})",
                )
            )
        elif columns is not None and column not in columns:
            problems.append(
                FieldError(
                    f"placeholders.{placeholder}",
                    f"the input has no column {column!r} (its columns: {shown})",
                )
            )
    errors += problems
    return {} if problems else dict(given)


def _check_budget(body: RunIn, errors: list[FieldError]) -> None:
    if body.prices is not None:
        if not isinstance(body.prices, str | dict):
            errors.append(
                FieldError(
                    "prices",
                    'must be text such as "input=0.15,output=0.60" or an object such as '
                    '{"input": 0.15, "output": 0.60} (USD per million tokens)',
                )
            )
        else:
            try:
                run_price(body.prices)
            except ConfigurationError as exc:
                errors.append(FieldError("prices", exc.reason))
    try:
        Budget(max_cost=body.max_cost, max_tokens=body.max_tokens)
    except ConfigurationError as exc:
        errors.append(FieldError(exc.field or "max_cost", exc.reason))
    if body.max_cost is not None and body.prices is None:
        # Never silently ignored: a budget that cannot be counted would overspend.
        errors.append(
            FieldError(
                "max_cost",
                'needs prices to count the cost: add prices (e.g. "input=0.15,output=0.60", '
                "USD per million tokens), or leave max_cost out",
            )
        )


def _check_outputs(config: SourceConfig, outputs: Any, errors: list[FieldError]) -> list[str]:
    """The output names, after checking each path against the response format."""
    if outputs is None:
        return output_names(default_outputs(config.response_format))
    try:
        fields = parse_outputs(outputs)
    except ConfigurationError as exc:
        errors.extend(_problems(exc, "outputs"))
        return []
    for i, output in enumerate(fields):
        if get_path(config.response_format, output.path) is None:
            errors.append(
                FieldError(
                    f"outputs[{i}].name",
                    f"{output.source!r} is not a path of the connector's response format; "
                    "pick one of its leaves (or change the response format)",
                )
            )
    return output_names(fields)


def _problems(exc: ConfigurationError, prefix: str) -> list[FieldError]:
    if exc.problems:
        return [FieldError(p.field or prefix, p.message) for p in exc.problems]
    return [FieldError(exc.field or prefix, exc.reason)]


@runs_router.post(
    "/connectors/{connector_id}/runs",
    status_code=201,
    response_model=None,
    responses=error_responses(400, 404, 409, why=_WHY),
)
async def create_run(
    connector_id: PathConnectorId,
    body: RunIn,
    store: RunStoreDep,
    executor: ExecutorDep,
    services: ServicesDep,
) -> Response:
    """Create a run of the saved connector over an upload: 201 ``{id, status: "queued", ...}``.

    Everything is checked first; nothing is created unless all of it is valid.
    """
    config = await services.usable_saved(connector_id)
    errors: list[FieldError] = []
    found = await _checked_input(store, services, body.input, errors)
    columns = found.columns
    chosen = _check_placeholders(config, body.placeholders, columns, errors)
    _check_mapping(config, body.mapping, columns, errors, chosen)
    output_names = _check_outputs(config, body.outputs, errors)
    if body.key is not None and columns is not None and body.key not in columns:
        shown = ", ".join(map(repr, columns[:30])) or "none"
        message = f"the input has no column {body.key!r} (its columns: {shown})"
        errors.append(FieldError("key", message))
    if found.encrypted_url is not None and body.key is None:
        errors.append(
            FieldError(
                "key",
                "a database input needs a key column: a query's rows may come in another "
                "order when a stopped run continues",
            )
        )
    _check_budget(body, errors)
    if body.rate is not None:
        try:
            Rate.parse(body.rate)
        except ConfigurationError as exc:
            errors.append(FieldError("rate", exc.reason))
    if errors:
        raise ApiError.invalid(errors)
    spec = {
        "input": found.public,
        "mapping": body.mapping,
        "outputs": body.outputs,
        "key": body.key,
        "concurrency": body.concurrency,
        "rate": body.rate,
        "prices": body.prices,
        "max_cost": body.max_cost,
        "max_tokens": body.max_tokens,
        "placeholders": chosen or None,
    }
    if found.encrypted_url is not None:
        spec["database_url_encrypted"] = found.encrypted_url
    view = await run_in_threadpool(store.create, connector_id, spec, output_names, found.total)
    executor.wake()
    return _json(view, 201)


@runs_router.get("/runs", response_model=None)
async def list_runs(
    store: RunStoreDep,
    connector_id: Annotated[int | None, Query(ge=1, description="only this connector's")] = None,
    status: Annotated[str | None, Query(description="only runs in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="the previous page's next_cursor")] = None,
) -> Response:
    """The runs, newest first, a page at a time: ``{"data", "total", "next_cursor"}``."""
    errors: list[FieldError] = []
    if status is not None and status not in RUN_STATUSES:
        errors.append(FieldError("status", f"must be one of {', '.join(RUN_STATUSES)}"))
    before = None
    if cursor is not None:
        before = decode_cursor(cursor)
        if before is None:
            errors.append(FieldError("cursor", "is not a next_cursor given by this list"))
    if errors:
        raise ApiError.invalid(errors)
    if connector_id is not None and connector_id > _MAX_RUN_ID:
        return _json({"data": [], "total": 0, "next_cursor": None})
    items, total, more = await run_in_threadpool(
        lambda: store.page(connector_id=connector_id, status=status, before=before, limit=limit)
    )
    next_cursor = encode_cursor(items[-1]["id"]) if more and items else None
    return _json({"data": items, "total": total, "next_cursor": next_cursor})


async def _run_or_404(store: RunStore, run_id: int) -> dict[str, Any]:
    view = await run_in_threadpool(store.get, run_id) if run_id <= _MAX_RUN_ID else None
    if view is None:
        raise ApiError(404, f"there is no run with id {run_id}")
    return view


@runs_router.get("/runs/{run_id}", response_model=None, responses=error_responses(404, why=_WHY))
async def get_run(run_id: PathRunId, store: RunStoreDep) -> Response:
    """A run: status and figures (total, done, ok, failed, tokens, rows_per_s, eta_s...)."""
    return _json(await _run_or_404(store, run_id))


def _event(name: str, data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {text}\n\n".encode()


@runs_router.get(
    "/runs/{run_id}/events",
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(404, why=_WHY)},
)
async def run_events(run_id: PathRunId, request: Request, store: RunStoreDep) -> Response:
    """Server-sent events: ``progress`` (the run) as it changes, then a final ``done``."""
    first = await _run_or_404(store, run_id)

    async def events() -> AsyncIterator[bytes]:
        view: dict[str, Any] | None = first
        last_change: Any = None
        last_sent = 0.0
        loop = asyncio.get_running_loop()
        while view is not None:
            if view["status"] in FINAL_STATUSES:
                yield _event("done", view)
                return
            now = loop.time()
            if view["updated_at"] != last_change or now - last_sent >= _EVENTS_KEEPALIVE_S:
                yield _event("progress", view)
                last_change, last_sent = view["updated_at"], now
            await asyncio.sleep(_EVENTS_POLL_S)
            if await request.is_disconnected():
                return
            view = await run_in_threadpool(store.get, run_id)
        yield _event("done", {"id": run_id, "status": "deleted"})

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@runs_router.post(
    "/runs/{run_id}/cancel", response_model=None, responses=error_responses(404, 409, why=_WHY)
)
async def cancel_run(run_id: PathRunId, store: RunStoreDep) -> Response:
    """Cancel a queued or running run (rows in flight are dropped; resume continues it)."""
    view = await _run_or_404(store, run_id)
    if view["status"] in FINAL_STATUSES:
        raise ApiError(409, f"run {run_id} has already ended ({view['status']})")
    updated = await run_in_threadpool(store.cancel, run_id)
    return _json(updated or view)


@runs_router.post(
    "/runs/{run_id}/resume", response_model=None, responses=error_responses(404, 409, why=_WHY)
)
async def resume_run(run_id: PathRunId, store: RunStoreDep, executor: ExecutorDep) -> Response:
    """Queue a cancelled, failed or interrupted run again: it continues after the rows
    already stored."""
    view = await _run_or_404(store, run_id)
    if not await run_in_threadpool(store.resume, run_id, ("cancelled", "failed", "interrupted")):
        raise ApiError(
            409,
            f"run {run_id} is {view['status']}: only a cancelled, failed or interrupted run "
            "can be resumed (retry_failed runs a finished run's failed rows again)",
        )
    # The answer is the state this request made, before an instance picks the run up.
    queued = await _run_or_404(store, run_id)
    executor.wake()
    return _json(queued)


@runs_router.post(
    "/runs/{run_id}/retry_failed",
    response_model=None,
    responses=error_responses(404, 409, why=_WHY),
)
async def retry_failed(run_id: PathRunId, store: RunStoreDep, executor: ExecutorDep) -> Response:
    """Run a finished run's failed rows again (their results are replaced)."""
    view = await _run_or_404(store, run_id)
    removed = await run_in_threadpool(store.retry_failed, run_id)
    if removed is None:
        raise ApiError(
            409, f"run {run_id} is {view['status']}: wait for it to end, or cancel it first"
        )
    # The answer is the state this request made, before an instance picks the run up.
    queued = await _run_or_404(store, run_id)
    executor.wake()
    return _json(queued)


@runs_router.delete("/runs/{run_id}", status_code=204, responses=error_responses(404, why=_WHY))
async def delete_run(run_id: PathRunId, store: RunStoreDep) -> Response:
    """Delete a run and its results (a running one is stopped)."""
    if run_id > _MAX_RUN_ID or not await run_in_threadpool(store.delete, run_id):
        raise ApiError(404, f"there is no run with id {run_id}")
    return Response(status_code=204)


class _Chunks:
    """A `CsvWriter` sink collecting what it is given, taken out chunk by chunk."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.empty = True

    def put(self, data: bytes) -> None:
        self.parts.append(data)
        self.empty = False

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data

    def close(self) -> None:
        pass


def _jsonl_chunks(store: RunStore, run_id: int) -> Iterator[bytes]:
    for lines in store.iter_lines(run_id):
        yield ("\n".join(lines) + "\n").encode("utf-8")


def _csv_chunks(store: RunStore, run_id: int, names: list[str]) -> Iterator[bytes]:
    sink = _Chunks()
    writer = CsvWriter("", names, sink=sink)
    yield sink.take()
    for lines in store.iter_lines(run_id):
        for line in lines:
            writer.write(BatchResult.from_dict(json.loads(line)))
        yield sink.take()


@runs_router.get(
    "/runs/{run_id}/results",
    response_model=None,
    responses={
        200: {"content": {"application/json": {}, "application/x-ndjson": {}, "text/csv": {}}},
        **error_responses(404, why=_WHY),
    },
)
async def run_results(
    run_id: PathRunId,
    store: RunStoreDep,
    format: Annotated[
        str | None, Query(description="jsonl or csv: a download of every result")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query()] = None,
    failed: Annotated[bool, Query(description="only the failed rows (JSON pages)")] = False,
) -> Response:
    """The results: with ``format``, a streamed download (exactly the CLI's output); else a
    JSON page ``{"data": [result lines], "next_cursor"}`` in the order they were stored."""
    view = await _run_or_404(store, run_id)
    if format is not None:
        if format not in ("jsonl", "csv"):
            raise ApiError.invalid([FieldError("format", "must be jsonl or csv")])
        chunks = (
            _jsonl_chunks(store, run_id)
            if format == "jsonl"
            else _csv_chunks(store, run_id, list(view["output_names"]))
        )
        media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
        return StreamingResponse(
            iterate_in_threadpool(chunks),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="run-{run_id}.{format}"'},
        )
    after = 0
    if cursor is not None:
        found = decode_cursor(cursor)
        if found is None:
            raise ApiError.invalid([FieldError("cursor", "is not a next_cursor of this list")])
        after = found
    page, more = await run_in_threadpool(
        lambda: store.results_page(run_id, after=after, limit=limit, failed_only=failed)
    )
    next_cursor = encode_cursor(page[-1][0]) if more and page else None
    body = b'{"data":[%s],"next_cursor":%s}' % (
        ",".join(line for _, line in page).encode("utf-8"),
        json.dumps(next_cursor).encode("ascii"),
    )
    return Response(body, media_type="application/json")
