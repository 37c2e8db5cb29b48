"""A saved connector's capabilities and models: what its server supports and lists.

``POST .../capabilities`` measures (`probe_capabilities`, the ``check --capabilities``
record) and stores the record on the connector; ``GET .../capabilities`` reads the last one
back, with when it was measured. ``GET .../models`` lists the ids the server's
``GET /v1/models`` answers. Every request goes through the application's guarded client
(its ``client_factory``), the GET too: the address policy vets each connection.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...capabilities import list_models, probe_capabilities
from ...config import SourceConfig
from ...errors import OpenAICompatError
from ..connectors.measured import read_capabilities, store_capabilities
from ..dependencies import ServicesDep
from ..http import ApiError, PathConnectorId, endpoint_error_body, error_responses, json_answer
from ._common import api_router

__all__ = ["router"]

router = api_router("/connectors", tags=["connectors"])


class CapabilitiesOut(BaseModel):
    """What the connector's server supports, measured with tiny requests, and when."""

    capabilities: dict[str, Any] | None = Field(
        description="json_schema (refused, accepted, enforced), json_object and tools "
        "(refused, ignored, accepted), stream_options.include_usage, n>1, logprobs, "
        "reasoning_field, models (the ids GET /v1/models lists, or null); null when never "
        "measured (or measured before the configuration last changed)"
    )
    measured_at: str | None = Field(description="when they were measured (ISO 8601, UTC)")


class ModelsOut(BaseModel):
    """The model ids the connector's server lists."""

    models: list[str] = Field(description="the ids of GET /v1/models beside the connector's URL")


def _chat_only(config: SourceConfig) -> None:
    if config.dialect.name != "chat":
        raise ApiError(
            422,
            f"capabilities are measured on chat-completions URLs; this connector's URL is a "
            f"{config.dialect.label} URL",
        )


@router.post(
    "/{connector_id}/capabilities",
    response_model=CapabilitiesOut,
    responses=error_responses(404, 409),
)
async def capabilities(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """Measure what the saved connector's server supports (about eight tiny requests), and
    keep the record on the connector."""
    stored = await services.load(connector_id)
    config = await services.usable_saved(connector_id)
    _chat_only(config)
    found = await probe_capabilities(config, client_factory=services.connector.client_factory)
    engine = services.store.engine
    measured = await run_in_threadpool(
        store_capabilities, engine, connector_id, stored.updated_at, found
    )
    if measured is None:
        raise ApiError(
            409,
            "the connector changed (or was deleted) while its capabilities were measured: "
            "nothing was stored; measure again",
        )
    return json_answer(measured.answer())


@router.get(
    "/{connector_id}/capabilities",
    response_model=CapabilitiesOut,
    responses=error_responses(404),
)
async def measured_capabilities(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """The saved connector's last measured capabilities (nulls when never measured)."""
    found = await run_in_threadpool(read_capabilities, services.store.engine, connector_id)
    if found is None:
        raise ApiError(404, f"there is no connector with id {connector_id}")
    return json_answer(found.answer())


@router.get(
    "/{connector_id}/models",
    response_model=ModelsOut,
    responses=error_responses(404, 409, 502, 504),
)
async def models(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """The model ids the saved connector's server lists (``GET /v1/models`` beside its URL)."""
    config = await services.usable_saved(connector_id)
    try:
        found = await list_models(config, client_factory=services.connector.client_factory)
    except OpenAICompatError as exc:
        status, body = endpoint_error_body(exc)
        raise ApiError(status, body.pop("message"), **body) from None
    return json_answer({"models": found})
