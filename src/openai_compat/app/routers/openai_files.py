"""``/v1/files``: OpenAI's Files API, for batch input files and batch results.

An input file (purpose ``batch``) is received as an upload is (streamed to the data
directory, owner-only, capped at ``OPENAI_COMPAT_BATCH_MAX_FILE_BYTES``); a batch's output
and error files are its stored result lines. Errors are OpenAI's error object.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from ..batches import BatchService, batch_service, file_object, list_object, openai_error
from ..batches.schemas import FileDeletedOut, FileListOut, FileOut, openai_responses
from ..dependencies import require_token
from ..http import ApiError, json_document
from ..runs import MULTIPART_SLACK, receive_upload, remove_upload_file, upload_dir
from ..runs.uploads import upload_path

__all__ = ["FILES_PATH", "router"]

router = APIRouter(
    prefix="/v1/files",
    tags=["openai batches"],
    dependencies=[Depends(require_token)],
    responses=openai_responses(400, 401, "4XX"),
)
Service = Annotated[BatchService, Depends(batch_service)]
_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def _missing(file_id: str) -> ApiError:
    return openai_error(404, f"No such File object: {file_id}", param="id")


def file_too_large(limit: int) -> ApiError:
    """The 413 of a file over the Batches API's cap."""
    return openai_error(
        413,
        f"the file is too large: at most {limit} bytes are accepted "
        "(OPENAI_COMPAT_BATCH_MAX_FILE_BYTES)",
        param="file",
    )


@router.post(
    "",
    response_model=FileOut,
    responses=openai_responses(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "purpose"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "purpose": {"type": "string", "enum": ["batch"]},
                        },
                    }
                }
            },
        }
    },
)
async def create_file(request: Request, service: Service) -> Response:
    """Upload a batch input file (multipart ``file`` and ``purpose`` ``batch``)."""
    settings = service.settings
    limit = settings.batch_max_file_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise file_too_large(limit)
    partial = upload_dir(settings.data_dir) / f".receiving-{id(request)}"
    try:
        received = await receive_upload(
            request.headers.get("content-type", ""), request.stream(), partial, limit
        )
    except ApiError as exc:
        if exc.status == 413:
            raise file_too_large(limit) from None
        raise
    purpose = received.fields.get("purpose")
    if purpose != "batch":
        received.path.unlink(missing_ok=True)
        known = purpose in _PURPOSES
        raise openai_error(
            400,
            "purpose is required: 'batch' (the files of batches)"
            if purpose is None
            else f"purpose {purpose!r} is "
            + ("not served here" if known else "not a purpose")
            + ": this server takes files for batches only (purpose 'batch')",
            param="purpose",
        )
    upload_id = uuid.uuid4().hex
    now = datetime.now(UTC)

    def store() -> Any:
        path = upload_path(settings.data_dir, upload_id, "jsonl", False)
        shutil.move(received.path, path)
        upload = {
            "id": upload_id,
            "filename": received.filename,
            "format": "jsonl",
            "compressed": False,
            "size_bytes": received.size,
            "rows_estimate": None,
            "columns": [],
            "sample": [],
            "created_at": now,
        }
        try:
            service.runs.add_upload(upload)
            return service.store.add_file(
                {
                    "id": f"file-{upload_id}",
                    "purpose": "batch",
                    "filename": received.filename,
                    "bytes": received.size,
                    "created_at": now,
                    "upload_id": upload_id,
                }
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    row = await run_in_threadpool(store)
    return json_document(file_object(row))


FILES_PATH = str(router.url_path_for("create_file"))
"""The path that takes a file (a larger body than other requests)."""


@router.get("", response_model=FileListOut)
async def list_files(
    service: Service,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    after: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> Response:
    """The files, newest first (``order=asc``: oldest first), after the file ``after``."""
    rows, more = await run_in_threadpool(
        lambda: service.store.files_page(purpose=purpose, limit=limit, after=after, order=order)
    )
    return json_document(list_object([file_object(row) for row in rows], more))


async def _file(service: BatchService, file_id: str) -> Any:
    row = await run_in_threadpool(service.store.file, file_id)
    if row is None:
        raise _missing(file_id)
    return row


@router.get("/{file_id}", response_model=FileOut, responses=openai_responses(404))
async def retrieve_file(file_id: str, service: Service) -> Response:
    """A file object."""
    return json_document(file_object(await _file(service, file_id)))


@router.get(
    "/{file_id}/content",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
        **openai_responses(404),
    },
)
async def file_content(file_id: str, service: Service) -> Response:
    """The file's bytes: an input file as uploaded; a batch's output or error lines."""
    row = await _file(service, file_id)
    if row.upload_id is not None:
        path = service.input_path(row)
        if not path.is_file():
            # Its upload was deleted through /api/v1 (with the run that used it).
            raise openai_error(404, f"the content of {file_id} was deleted", param="id")
        return FileResponse(path, media_type="application/octet-stream", filename=row.filename)
    found = await run_in_threadpool(service.store.batch, row.batch_id or "")
    if found is None:
        raise _missing(file_id)
    if found[0].run_id is None or found[1] is None:
        # Its run was deleted through /api/v1/runs once the batch had ended.
        raise openai_error(
            404,
            f"the content of {file_id} was deleted with the run of the batch {found[0].id}",
            param="id",
        )
    run_id, ok = int(found[0].run_id), row.kind == "output"

    def chunks() -> Iterator[bytes]:
        for lines in service.store.result_lines(run_id, ok):
            yield ("\n".join(lines) + "\n").encode("utf-8")

    return StreamingResponse(iterate_in_threadpool(chunks()), media_type="application/octet-stream")


@router.delete("/{file_id}", response_model=FileDeletedOut, responses=openai_responses(404, 409))
async def delete_file(file_id: str, service: Service) -> Response:
    """Delete a file (an input file still read by a batch in progress: 409)."""
    row = await _file(service, file_id)
    validating = await run_in_threadpool(service.store.validating_input, file_id)
    if validating is not None:
        raise openai_error(
            409,
            f"the file {file_id} is the input of the batch {validating}, being validated: "
            "cancel it, or wait for it to end, then delete the file",
            param="file_id",
        )
    if row.upload_id is not None:
        upload, busy = await run_in_threadpool(service.runs.delete_upload, row.upload_id)
        if busy:
            raise openai_error(
                409,
                f"the file {file_id} is the input of a batch in progress: cancel it, or wait "
                "for it to end, then delete the file",
                param="file_id",
            )
        if upload is not None:
            await run_in_threadpool(remove_upload_file, service.settings.data_dir, upload)
    await run_in_threadpool(service.store.delete_file, file_id)
    return json_document({"id": file_id, "object": "file", "deleted": True})
