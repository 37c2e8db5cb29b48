"""``/api/v1/queries``: a database query previewed as a run's input (its columns and first
rows), before a run reads it."""

from __future__ import annotations

from fastapi import Response

from ..dependencies import ServicesDep
from ..http import ApiError, FieldError, QueryPreviewOut, error_responses, json_document
from ..runs import DatabaseIn, probe_database_input
from ._common import RUNS_WHY, api_router

__all__ = ["router"]

router = api_router("/queries", tags=["runs"])


@router.post("", response_model=QueryPreviewOut, responses=error_responses(400, why=RUNS_WHY))
async def preview_query(body: DatabaseIn, services: ServicesDep) -> Response:
    """Preview a database input: ``{database, columns, sample, rows_estimate}``."""
    errors: list[FieldError] = []
    probe = await probe_database_input(services, body, errors, "")
    if probe is None:
        raise ApiError.invalid(errors)
    found = probe[0]
    return json_document(
        {
            "database": found.shown,
            "columns": found.columns or [],
            "sample": found.sample,
            "rows_estimate": found.rows_estimate,
        }
    )
