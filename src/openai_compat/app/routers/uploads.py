"""``/api/v1/uploads``: datasets uploaded for runs (streamed to the data directory, capped).

`UPLOADS_PATH` is the path that takes an upload: the gate lets its body be larger than
other requests' (``OPENAI_COMPAT_MAX_UPLOAD_BYTES``).
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from ..dependencies import RunStoreDep, SettingsDep
from ..http import ApiError, UploadOut, error_responses, json_document
from ..runs import (
    MULTIPART_SLACK,
    inspect_upload,
    receive_upload,
    remove_upload_file,
    too_large,
    upload_dir,
    upload_view,
)
from ._common import RUNS_WHY, api_router

__all__ = ["UPLOADS_PATH", "router"]

router = api_router("/uploads", tags=["runs"])


@router.post(
    "",
    status_code=201,
    response_model=UploadOut,
    responses=error_responses(400, 413, 415, why=RUNS_WHY),
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
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise too_large(limit)
    partial = upload_dir(settings.data_dir) / f".receiving-{id(request)}"
    received = await receive_upload(
        request.headers.get("content-type", ""), request.stream(), partial, limit
    )
    found = await run_in_threadpool(inspect_upload, settings.data_dir, received)
    try:
        row = await run_in_threadpool(store.add_upload, found.row())
    except BaseException:
        # No row, no file: an upload the store refused leaves nothing behind.
        remove_upload_file(settings.data_dir, found)
        raise
    return json_document(upload_view(row), 201)


UPLOADS_PATH = str(router.url_path_for("create_upload"))
"""The path that takes an upload (a larger body than other requests)."""


@router.get("/{upload_id}", response_model=UploadOut, responses=error_responses(404, why=RUNS_WHY))
async def get_upload(upload_id: str, store: RunStoreDep) -> Response:
    """An upload's columns and first rows."""
    row = await run_in_threadpool(store.upload, upload_id)
    if row is None:
        raise ApiError(404, f"there is no upload with id {upload_id}")
    return json_document(upload_view(row))


@router.delete(
    "/{upload_id}",
    status_code=204,
    responses=error_responses(
        404, 409, why={**RUNS_WHY, 409: "a queued, running or interrupted run uses the upload"}
    ),
)
async def delete_upload(upload_id: str, settings: SettingsDep, store: RunStoreDep) -> Response:
    """Delete an upload and its file: 409 while a queued, running or interrupted run uses
    it (the finished runs that used it keep their results)."""
    row, busy = await run_in_threadpool(store.delete_upload, upload_id)
    if row is None:
        raise ApiError(404, f"there is no upload with id {upload_id}")
    if busy:
        runs = ", ".join(str(run_id) for run_id in busy)
        raise ApiError(
            409,
            f"upload {upload_id} is the input of runs not finished yet ({runs}): cancel them, "
            "or wait for them to end, then delete it",
            runs=busy,
        )
    await run_in_threadpool(remove_upload_file, settings.data_dir, row)
    return Response(status_code=204)
