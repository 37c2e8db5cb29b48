"""``/v1/batches``: OpenAI's Batches API; each batch a run of the application's run engine.

The objects are OpenAI's, brought up to date with their runs at each read (`BatchService.
refresh`); errors are OpenAI's error object.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from ..batches import BatchIn, BatchService, batch_object, batch_service, list_object, openai_error
from ..batches.schemas import BatchListOut, BatchOut, openai_responses
from ..dependencies import require_token
from ..http import json_document

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/batches",
    tags=["openai batches"],
    dependencies=[Depends(require_token)],
    responses=openai_responses(400, 401, "4XX"),
)
Service = Annotated[BatchService, Depends(batch_service)]


@router.post("", response_model=BatchOut, responses=openai_responses(404))
async def create_batch(body: BatchIn, service: Service) -> Response:
    """Create a batch of an input file's lines on a saved connector."""
    row, run = await service.create(body)
    return json_document(batch_object(row, run))


@router.get("", response_model=BatchListOut)
async def list_batches(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The batches, newest first, after the batch ``after``."""

    def page() -> tuple[list[dict[str, Any]], bool]:
        rows, more = service.store.batches_page(limit=limit, after=after)
        data = []
        for row in rows:
            found = service.refresh(row.id)
            if found is not None:
                data.append(batch_object(*found))
        return data, more

    data, more = await run_in_threadpool(page)
    return json_document(list_object(data, more))


async def _batch(service: BatchService, batch_id: str) -> dict[str, Any]:
    found = await run_in_threadpool(service.refresh, batch_id)
    if found is None:
        raise openai_error(404, f"No such Batch object: {batch_id}", param="batch_id")
    return batch_object(*found)


@router.get("/{batch_id}", response_model=BatchOut, responses=openai_responses(404))
async def retrieve_batch(batch_id: str, service: Service) -> Response:
    """A batch: its status, request counts, files and usage so far."""
    return json_document(await _batch(service, batch_id))


@router.post("/{batch_id}/cancel", response_model=BatchOut, responses=openai_responses(404, 409))
async def cancel_batch(batch_id: str, service: Service) -> Response:
    """Cancel a batch: ``cancelling``, then ``cancelled`` with the lines it finished."""
    view = await _batch(service, batch_id)
    asked = await run_in_threadpool(service.store.ask_cancel, batch_id)
    if not asked:
        raise openai_error(
            409, f"Cannot cancel a batch with status {view['status']!r}.", param="batch_id"
        )
    # As asked (``cancelling``): the next read finds its run stopped, and ``cancelled``.
    found = await run_in_threadpool(service.store.batch, batch_id)
    assert found is not None
    return json_document(batch_object(*found))
