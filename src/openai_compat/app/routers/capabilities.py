"""A saved connector's capabilities: what its server supports, measured on demand.

The record of ``openai-compat check --capabilities`` (`probe_capabilities`), sent through
the application's guarded clients: each probe is a tiny POST whose every connection the
address policy vets. ``GET /v1/models`` is left out (``models`` is null): it would go by a
plain URL opener, outside the guard.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel, Field

from ...capabilities import probe_capabilities
from ..dependencies import ServicesDep
from ..http import ApiError, PathConnectorId, error_responses, json_answer
from ._common import api_router

__all__ = ["router"]

router = api_router("/connectors", tags=["connectors"])


class CapabilitiesOut(BaseModel):
    """What the connector's server supports, measured with tiny requests."""

    capabilities: dict[str, Any] = Field(
        description="json_schema (refused, accepted, enforced), json_object and tools "
        "(refused, ignored, accepted), stream_options.include_usage, n>1, logprobs, "
        "reasoning_field; models is null (the application sends POSTs only)"
    )


@router.post(
    "/{connector_id}/capabilities",
    response_model=CapabilitiesOut,
    responses=error_responses(404, 409),
)
async def capabilities(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """Measure what the saved connector's server supports (about seven tiny requests)."""
    config = await services.usable_saved(connector_id)
    if config.dialect.name != "chat":
        raise ApiError(
            422,
            f"capabilities are measured on chat-completions URLs; this connector's URL is a "
            f"{config.dialect.label} URL",
        )
    found = await probe_capabilities(
        config, client_factory=services.connector.client_factory, list_models=False
    )
    return json_answer({"capabilities": found})
