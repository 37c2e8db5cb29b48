"""The shapes of the API's answers, for the OpenAPI document.

The routes render their answers themselves (a connector is rendered to bytes inside the
transaction that writes it), and answer with those bytes; these models, each JSON route's
``response_model``, say what those answers are (they never reshape one), and every status a
route can answer with is declared, so that the document is a contract a fuzzer can check
(``tests/app/test_api_fuzz.py``).
"""

from __future__ import annotations

import warnings
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
    "HealthOut",
    "InputFormatsOut",
    "MappingPreviewOut",
    "QueryPreviewOut",
    "ResultLineOut",
    "ResultsPageOut",
    "RunOut",
    "RunPageOut",
    "StructuredCountsOut",
    "UnshowableConnectorOut",
    "UploadOut",
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


class HealthOut(BaseModel):
    """The application answers."""

    status: str = Field(description='always "ok"')


class MappingPreviewOut(BaseModel):
    """The payload a row becomes, the request format's placeholders, the columns read."""

    payload: dict[str, Any]
    placeholders: list[str] = Field(description="the {{column}} placeholders of the format")
    columns: list[str] = Field(description="every column the mapping reads")


class UploadOut(BaseModel):
    """An uploaded dataset: its format, columns, first rows and row count estimate."""

    id: str
    filename: str
    format: str = Field(description="jsonl, csv or parquet")
    compressed: bool
    size_bytes: int
    rows_estimate: int | None
    columns: list[str]
    sample: list[dict[str, Any]] = Field(description="the first rows")
    created_at: str


class InputFormatOut(BaseModel):
    """One format a run's input may have."""

    name: str
    label: str
    description: str
    suffixes: list[str] = Field(description="what a file of it may be named, .gz included")
    aliases: list[str]
    streamed: bool
    gzip: bool
    stdin: bool
    found_in: str | None = Field(description="the format whose files hold it (found by looking)")


class InputFormatsOut(BaseModel):
    """The formats a run's input may have, and what a file picker offers for them."""

    data: list[InputFormatOut]
    accept: str = Field(description="the accept attribute of a file picker: every suffix")


class QueryPreviewOut(BaseModel):
    """A database input previewed: the URL (password hidden), columns and first rows."""

    database: str
    columns: list[str]
    sample: list[dict[str, Any]]
    rows_estimate: int | None = Field(description="0 when the query has no row, else null")


# ``schema`` as at every door; pydantic's deprecated ``BaseModel.schema()`` is not used.
warnings.filterwarnings("ignore", message='Field name "schema" in "RunOut"', category=UserWarning)


class StructuredCountsOut(BaseModel):
    """A run with a schema: its rows by how their answer validated."""

    mode: str | None = Field(description="the mode it asks in (None until a row finished)")
    valid_first: int
    valid_after_reasks: int
    invalid: int


class RunOut(BaseModel):
    """A run: what it runs (as it was asked), its status and its figures."""

    id: int
    connector_id: int
    status: str = Field(description="queued, running, succeeded, failed, cancelled or interrupted")
    input: dict[str, Any] | None = Field(
        description='{"upload_id"}, or {"database", "query", "params"} (the password hidden)'
    )
    mapping: Any
    outputs: Any
    key: str | None
    concurrency: int | str | None = Field(description='requests in flight, or "auto"')
    rate: str | None
    token_rate: str | None = None
    max_concurrency: int | None = None
    prices: Any
    max_cost: float | None
    max_tokens: int | None
    placeholders: dict[str, str] | None
    schema: Any = Field(default=None, description="the JSON Schema every answer validates against")
    schema_mode: str | None = None
    reasks: int | None = None
    structured: StructuredCountsOut | None = Field(
        default=None, description="with a schema: rows valid first, after re-asks, invalid"
    )
    output_names: list[str]
    total: int | None
    done: int
    ok: int
    failed: int
    skipped: int
    requests: int
    tokens: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    rows_per_s: float | None
    eta_s: float | None
    live: dict[str, Any] = Field(description="the last progress window of a running run")
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str
    error: str | None


class RunPageOut(BaseModel):
    """One page of the runs, newest first."""

    data: list[RunOut]
    total: int
    next_cursor: str | None


class ResultLineOut(BaseModel):
    """One row's result, exactly the CLI's JSON Lines line."""

    model_config = ConfigDict(extra="allow")

    key: Any
    output: Any
    usage: Any
    error: Any
    attempts: int
    latency_ms: float


class ResultsPageOut(BaseModel):
    """One page of a run's results, in the order they were stored."""

    data: list[ResultLineOut]
    next_cursor: str | None


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
    *statuses: int, why: Mapping[int, str] | None = None, beside: bool = False
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error statuses, each with the error shape.

    ``why`` words a status for a router's own resources (a run's 404 is not a connector's).
    ``beside``: for a route whose own answer is not JSON (server-sent events, text), where
    FastAPI would file a model under the route's media type: the error shape is named under
    ``application/json``, which is what an error answer is.
    """
    reasons = {**_WHY, **why} if why else _WHY
    if beside:
        shape = {"application/json": {"schema": {"$ref": _ERROR_REF}}}
        return {status: {"description": reasons[status], "content": shape} for status in statuses}
    return {status: {"model": ErrorOut, "description": reasons[status]} for status in statuses}


_ERROR_REF = f"#/components/schemas/{ErrorOut.__name__}"
