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
    row = await run_in_threadpool(store.add_upload, found.row())
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
