"""``/api/v1/connector_definitions``: the connector's specification, and a configuration
tested before it is saved (the form's "Test connection")."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Response
from pydantic import BaseModel, Field

from ...connector import OpenAICompatibleConnector
from ..connectors import CONNECTOR_NAME, moved_secrets, validate_configuration
from ..dependencies import ServicesDep
from ..http import (
    ApiError,
    BodyConnectorId,
    ConnectionStatusOut,
    DefinitionOut,
    FieldError,
    configuration_schema,
    declared_as,
    error_responses,
    json_answer,
)
from ._common import api_router

__all__ = ["CheckConnectionIn", "router"]

router = api_router("/connector_definitions", tags=["definitions"])


class CheckConnectionIn(BaseModel):
    """A configuration to test before saving it."""

    configuration: dict[str, Any] = Field(
        # Checked by the route, with its own messages; declared for the document.
        json_schema_extra=declared_as(configuration_schema(api_key=False)),
    )
    connector_id: BodyConnectorId | None = Field(
        default=None,
        description="a saved connector whose stored secrets (API key, secret headers, proxy) "
        "are used for those left out",
    )


@router.get("/openai_compatible", response_model=DefinitionOut)
async def connector_definition(services: ServicesDep) -> Response:
    """The connector's specification and meta data."""
    return json_answer(_definition(services.connector))


@functools.cache
def _definition(connector: OpenAICompatibleConnector) -> dict[str, Any]:
    spec = connector.spec().connector_spec
    assert spec is not None
    return {
        "name": CONNECTOR_NAME,
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "meta_data": connector.meta_data().to_dict(),
    }


@router.post(
    "/check_connection",
    response_model=ConnectionStatusOut,
    responses=error_responses(400, 404, 409),
)
async def check_connection(body: CheckConnectionIn, services: ServicesDep) -> Response:
    """Test a configuration (the form's "Test connection"): a ``connection_status``.

    With ``connector_id``, stored secrets are used for those left out, but only when the
    endpoint's origin (scheme, host, port) is the saved one: otherwise a 422 names the
    secrets to give again.
    """
    raw = dict(body.configuration)
    errors: list[FieldError] = []
    if body.connector_id is not None:
        # Secrets left out (or masked) are the saved connector's.
        public, given = services.secret_fields.split(raw)
        stored = await services.load(body.connector_id)
        kept = services.stored_secrets(stored, skip=given)
        errors += moved_secrets(stored, public.get("url"), kept)
        raw = services.secret_fields.merge(public, {**kept, **given})
    _, config_errors = validate_configuration(raw, require_api_key=False)
    errors += config_errors
    if errors:
        raise ApiError.invalid(errors)
    config = await services.usable(raw)
    return json_answer((await services.connector.acheck_connection(config)).to_dict())
