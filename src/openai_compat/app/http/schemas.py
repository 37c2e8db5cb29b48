"""The shapes of the API's answers, for the OpenAPI document.

The routes render their answers themselves (a connector is rendered to bytes inside the
transaction that writes it); these models say what those answers are, and every status a
route can answer with is declared, so that the document is a contract a fuzzer can check
(``tests/app/test_api_fuzz.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CatalogOut",
    "ConnectionStatusOut",
    "ConnectorOut",
    "ConnectorPageOut",
    "DefinitionOut",
    "ErrorOut",
    "ExecuteOut",
    "UnshowableConnectorOut",
    "error_responses",
]


class FieldProblemOut(BaseModel):
    """One wrong field."""

    field: str = Field(description="the field's dotted path, e.g. configuration.url")
    message: str


class ErrorDetailOut(BaseModel):
    """What went wrong; endpoint failures add the provider's status and message."""

    model_config = ConfigDict(extra="allow")

    message: str
    errors: list[FieldProblemOut] = Field(
        default_factory=list, description="every wrong field (422)"
    )


class ErrorOut(BaseModel):
    """Every error answer: ``{"error": {"message": ...}}``."""

    error: ErrorDetailOut


class ConnectorOut(BaseModel):
    """A saved connector, every secret masked."""

    id: int
    name: str
    connector_name: str
    configuration: dict[str, Any]
    api_key_set: bool
    secrets_set: list[str]
    created_at: str
    updated_at: str


class UnshowableConnectorOut(BaseModel):
    """A row of the list that cannot be shown (written by something else than this
    application): delete it or save it again."""

    id: int
    error: str


class ConnectorPageOut(BaseModel):
    """One page of the saved connectors."""

    data: list[ConnectorOut | UnshowableConnectorOut]
    total: int
    next_cursor: str | None


class _StatusOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = Field(description='"succeeded" or "failed"')


class ConnectionStatusOut(BaseModel):
    """The result of a connection check."""

    model_config = ConfigDict(extra="allow")

    type: str
    connection_status: _StatusOut


class CatalogOut(BaseModel):
    """The connector's catalog."""

    model_config = ConfigDict(extra="allow")

    type: str
    catalog: dict[str, Any]


class DefinitionOut(BaseModel):
    """The connector's specification and meta data."""

    name: str
    spec: dict[str, Any]
    meta_data: dict[str, Any]


class ExecuteOut(BaseModel):
    """The records of one request, the (assembled) answer, and any warning."""

    data: list[dict[str, Any]]
    answer: dict[str, Any] | None
    warnings: list[str]


_WHY = {
    400: "the body is not JSON",
    401: "no token, or a wrong one",
    404: "there is no connector with this id",
    409: "the saved connector cannot be used or shown (its secrets cannot be decrypted, or "
    "it holds text that is not valid Unicode)",
    413: "the body is over the cap",
    422: "a field is wrong: every wrong field in errors",
    502: "the model endpoint failed, or could not be reached",
    504: "the model endpoint did not answer in time",
}


def error_responses(
    *statuses: int, why: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error statuses, each with the error shape.

    ``why`` words a status for a router's own resources (a run's 404 is not a connector's).
    """
    reasons = {**_WHY, **why} if why else _WHY
    return {status: {"model": ErrorOut, "description": reasons[status]} for status in statuses}
