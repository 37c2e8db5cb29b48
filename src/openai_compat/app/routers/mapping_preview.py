"""The payload a row becomes, for the web page's mapping editor (the Runs tab).

``POST /api/v1/connectors/{id}/mapping_preview`` ``{"mapping": [...], "row": {...},
"placeholders": {"body": "text"}}`` answers ``{"payload": {...}, "placeholders": [...],
"columns": [...]}``: the payload built by the real mapping package (`PayloadBuilder`), the
``{{column}}`` placeholders of the saved request format, and every column the mapping reads.
A mapping that cannot be used, or a row that cannot be mapped, is a 422 with the usual
``errors`` list (the row's problem under the field ``row``), still carrying ``placeholders``
and ``columns`` whenever the request format could be read, so that the page can show them.

``placeholders`` (optional) fills a placeholder from another column than its own name: the
row is read as if it had the placeholder's column with the chosen column's value
(`alias_row`). Nothing is sent to the endpoint and nothing is stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel, Field

from ..._json import parse_json_object
from ...errors import ConfigurationError
from ...mapping import PayloadBuilder, RowMappingError
from ..dependencies import ServicesDep
from ..http import (
    MAPPING_SCHEMA,
    ApiError,
    FieldError,
    MappingPreviewOut,
    PathConnectorId,
    declared_as,
    error_responses,
    json_answer,
)
from ..runs import alias_row, placeholders_of
from ._common import api_router

__all__ = ["MappingPreviewIn", "router"]

router = api_router("/connectors", tags=["connectors"])


class MappingPreviewIn(BaseModel):
    """A mapping list and one row to build the payload of."""

    mapping: list[Any] | dict[str, Any] | str | None = Field(
        default=None, json_schema_extra=declared_as(MAPPING_SCHEMA)
    )
    row: dict[str, Any] = Field(default_factory=dict, description="one input row")
    placeholders: dict[str, str] = Field(
        default_factory=dict,
        description="placeholder name -> the column to fill it from (when they differ)",
    )


def _field_errors(exc: ConfigurationError, default: str) -> list[FieldError]:
    if not exc.problems:
        return [FieldError(default, exc.reason)]
    return [FieldError(p.field or default, p.message) for p in exc.problems]


@router.post(
    "/{connector_id}/mapping_preview",
    response_model=MappingPreviewOut,
    responses=error_responses(400, 404),
)
async def mapping_preview(
    connector_id: PathConnectorId,
    body: MappingPreviewIn,
    services: ServicesDep,
) -> Response:
    """The payload ``row`` becomes through the saved connector's request format and ``mapping``.

    Nothing is sent. 422 with the ``errors`` list when the mapping cannot be used or the row
    cannot be mapped (the row's problem is under the field ``row``).
    """
    stored = await services.load(connector_id)
    raw_format = stored.configuration.get("request_format")
    try:
        request_format = parse_json_object(raw_format or {}, field="request_format")
    except ConfigurationError as exc:
        raise ApiError.invalid(_field_errors(exc, "request_format")) from None
    placeholders = placeholders_of(request_format)
    extra: dict[str, Any] = {"placeholders": placeholders, "columns": list(placeholders)}
    try:
        builder = PayloadBuilder(request_format, body.mapping)
    except ConfigurationError as exc:
        raise _invalid(_field_errors(exc, "mapping"), extra) from None
    extra["columns"] = [
        body.placeholders.get(c) or c if c in placeholders else c for c in builder.columns
    ]
    try:
        payload = builder.build(alias_row(body.row, body.placeholders))
    except RowMappingError as exc:
        raise _invalid([FieldError("row", exc.reason)], extra) from None
    return json_answer({"payload": payload, **extra})


def _invalid(errors: list[FieldError], extra: dict[str, Any]) -> ApiError:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ApiError(422, f"invalid request: {summary}", errors=errors, **extra)
