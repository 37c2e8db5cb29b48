"""``/api/v1/runs`` and ``/api/v1/connectors/{id}/runs``: batch runs, their events and results.

Every route requires the token (the router's dependency, and the gate before it). A run is
validated whole before it is created (`runs.validation`): a 422 lists every problem.
docs/runs-api.md has the requests and answers with examples.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from ..batches.run_guard import refuse_for_batch
from ..dependencies import ExecutorDep, RunStoreDep, ServicesDep, SettingsDep
from ..http import (
    ID_SCHEMA,
    ApiError,
    CursorText,
    FieldError,
    PathConnectorId,
    ResultsPageOut,
    RunOut,
    RunPageOut,
    decode_cursor,
    encode_cursor,
    error_responses,
    json_document,
    json_response,
    parse_connector_id,
)
from ..runs import (
    FINAL_STATUSES,
    RUN_STATUSES,
    RunIn,
    RunStore,
    csv_chunks,
    event,
    jsonl_chunks,
    remove_upload_file,
    results_page,
    run_view,
    validate_run,
)
from ._common import RUNS_WHY, api_router

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "connector_runs", "router"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# How often the events stream looks at the run (it reads the database: any instance may
# be the one running it).
_EVENTS_POLL_S = 0.5
# A progress event at least this often, changed or not (keeps proxies from closing it).
_EVENTS_KEEPALIVE_S = 10.0
_MAX_RUN_ID = 2**31 - 1


def _run_id(value: Any) -> int:
    parsed = parse_connector_id(value) if isinstance(value, str) else None
    if parsed is None:
        raise PydanticCustomError(
            "run_id", "must be a run id: a whole number from 1 in plain digits"
        )
    return parsed


PathRunId = Annotated[int, BeforeValidator(_run_id), WithJsonSchema(ID_SCHEMA)]


class EventStream(StreamingResponse):
    """A stream of server-sent events."""

    media_type = "text/event-stream"


connector_runs = api_router("/connectors", tags=["runs"])
"""A saved connector's runs: where a run is created."""
router = api_router("/runs", tags=["runs"])


@connector_runs.post(
    "/{connector_id}/runs",
    status_code=201,
    response_model=RunOut,
    responses=error_responses(400, 404, 409, why=RUNS_WHY),
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
    run = await validate_run(config, body, store, services)
    view = await run_in_threadpool(
        lambda: run_view(store.create(connector_id, run.stored, run.output_names, run.total))
    )
    executor.wake()
    return json_document(view, 201)


@router.get("", response_model=RunPageOut)
async def list_runs(
    store: RunStoreDep,
    connector_id: Annotated[int | None, Query(ge=1, description="only this connector's")] = None,
    status: Annotated[
        Annotated[str, WithJsonSchema({"type": "string", "enum": list(RUN_STATUSES)})] | None,
        Query(description="only runs in this status"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        CursorText | None, Query(description="the previous page's next_cursor")
    ] = None,
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
        return json_document({"data": [], "total": 0, "next_cursor": None})

    def page() -> tuple[list[dict[str, Any]], int, bool]:
        rows, total, more = store.page(
            connector_id=connector_id, status=status, before=before, limit=limit
        )
        return [run_view(row) for row in rows], total, more

    items, total, more = await run_in_threadpool(page)
    next_cursor = encode_cursor(items[-1]["id"]) if more and items else None
    return json_document({"data": items, "total": total, "next_cursor": next_cursor})


def _view(store: RunStore, run_id: int) -> dict[str, Any] | None:
    row = store.get(run_id)
    return run_view(row) if row is not None else None


async def _run_or_404(store: RunStore, run_id: int) -> dict[str, Any]:
    view = await run_in_threadpool(_view, store, run_id) if run_id <= _MAX_RUN_ID else None
    if view is None:
        raise ApiError(404, f"there is no run with id {run_id}")
    return view


@router.get("/{run_id}", response_model=RunOut, responses=error_responses(404, why=RUNS_WHY))
async def get_run(run_id: PathRunId, store: RunStoreDep) -> Response:
    """A run: status and figures (total, done, ok, failed, tokens, rows_per_s, eta_s...)."""
    return json_document(await _run_or_404(store, run_id))


# One event of the stream, as an event-stream reader parses it: its name and its JSON data.
_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["progress", "done"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


@router.get(
    "/{run_id}/events",
    response_class=EventStream,
    # The router's statuses too: the errors are JSON, the events are not.
    responses={
        200: {"content": {"text/event-stream": {"schema": _EVENT_SCHEMA}}},
        **error_responses(401, 413, 422, beside=True),
        **error_responses(404, why=RUNS_WHY, beside=True),
    },
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
                yield event("done", view)
                return
            now = loop.time()
            if view["updated_at"] != last_change or now - last_sent >= _EVENTS_KEEPALIVE_S:
                yield event("progress", view)
                last_change, last_sent = view["updated_at"], now
            await asyncio.sleep(_EVENTS_POLL_S)
            if await request.is_disconnected():
                return
            view = await run_in_threadpool(_view, store, run_id)
        yield event("done", {"id": run_id, "status": "deleted"})

    return EventStream(
        events(),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/{run_id}/cancel", response_model=RunOut, responses=error_responses(404, 409, why=RUNS_WHY)
)
async def cancel_run(run_id: PathRunId, store: RunStoreDep) -> Response:
    """Cancel a queued or running run (rows in flight are dropped; resume continues it)."""
    view = await _run_or_404(store, run_id)
    if view["status"] in FINAL_STATUSES:
        raise ApiError(409, f"run {run_id} has already ended ({view['status']})")
    updated = await run_in_threadpool(store.cancel, run_id)
    return json_document(run_view(updated) if updated is not None else view)


@router.post(
    "/{run_id}/resume", response_model=RunOut, responses=error_responses(404, 409, why=RUNS_WHY)
)
async def resume_run(run_id: PathRunId, store: RunStoreDep, executor: ExecutorDep) -> Response:
    """Queue a cancelled, failed or interrupted run again: it continues after the rows
    already stored."""
    view = await _run_or_404(store, run_id)
    await run_in_threadpool(refuse_for_batch, store.engine, run_id, "resume")
    if not await run_in_threadpool(store.resume, run_id, ("cancelled", "failed", "interrupted")):
        raise ApiError(
            409,
            f"run {run_id} is {view['status']}: only a cancelled, failed or interrupted run "
            "can be resumed (retry_failed runs a finished run's failed rows again)",
        )
    # The answer is the state this request made, before an instance picks the run up.
    queued = await _run_or_404(store, run_id)
    executor.wake()
    return json_document(queued)


@router.post(
    "/{run_id}/retry_failed",
    response_model=RunOut,
    responses=error_responses(404, 409, why=RUNS_WHY),
)
async def retry_failed(run_id: PathRunId, store: RunStoreDep, executor: ExecutorDep) -> Response:
    """Run a finished run's failed rows again (their results are replaced)."""
    view = await _run_or_404(store, run_id)
    await run_in_threadpool(refuse_for_batch, store.engine, run_id, "retry_failed")
    removed = await run_in_threadpool(store.retry_failed, run_id)
    if removed is None:
        raise ApiError(
            409, f"run {run_id} is {view['status']}: wait for it to end, or cancel it first"
        )
    # The answer is the state this request made, before an instance picks the run up.
    queued = await _run_or_404(store, run_id)
    executor.wake()
    return json_document(queued)


@router.delete("/{run_id}", status_code=204, responses=error_responses(404, 409, why=RUNS_WHY))
async def delete_run(run_id: PathRunId, store: RunStoreDep, settings: SettingsDep) -> Response:
    """Delete a run and its results (a running one is stopped), and its upload when no
    other run uses it."""
    if run_id <= _MAX_RUN_ID:
        await run_in_threadpool(refuse_for_batch, store.engine, run_id, "delete")
    gone, upload = (
        await run_in_threadpool(store.delete_with_upload, run_id)
        if run_id <= _MAX_RUN_ID
        else (False, None)
    )
    if not gone:
        raise ApiError(404, f"there is no run with id {run_id}")
    if upload is not None:
        await run_in_threadpool(remove_upload_file, settings.data_dir, upload)
    return Response(status_code=204)


@router.get(
    "/{run_id}/results",
    response_model=ResultsPageOut,
    responses={
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}}},
        **error_responses(404, why=RUNS_WHY),
    },
)
async def run_results(
    run_id: PathRunId,
    store: RunStoreDep,
    format: Annotated[
        Annotated[str, WithJsonSchema({"type": "string", "enum": ["jsonl", "csv"]})] | None,
        Query(description="jsonl or csv: a download of every result"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        CursorText | None, Query(description="the previous page's next_cursor")
    ] = None,
    failed: Annotated[bool, Query(description="only the failed rows (JSON pages)")] = False,
) -> Response:
    """The results: with ``format``, a streamed download (exactly the CLI's output); else a
    JSON page ``{"data": [result lines], "next_cursor"}`` in the order they were stored."""
    view = await _run_or_404(store, run_id)
    if format is not None:
        if format not in ("jsonl", "csv"):
            raise ApiError.invalid([FieldError("format", "must be jsonl or csv")])
        chunks = (
            jsonl_chunks(store, run_id)
            if format == "jsonl"
            else csv_chunks(store, run_id, list(view["output_names"]))
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
    return json_response(results_page(page, next_cursor))
