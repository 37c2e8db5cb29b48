"""``/api/v1/connectors``: the saved connectors, shaped after the original platform's routes.

List, create, read, update and delete; check a saved connector's connection, discover its
catalog, and send a payload through it (``execute_model``, the hot route: `EXECUTE_PATH`
is its path for the middlewares, its fast lane and its metrics). Every route requires the
bearer token. Connector configurations are validated per field (422 with the field path
and reason); stored secrets (the API key, secret headers, the proxy) never leave the server.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..connectors import (
    ConnectorServices,
    Unstorable,
    execute_saved,
    moved_secrets,
    validate_configuration,
    validate_name,
)
from ..dependencies import ServicesDep
from ..http import (
    ID_PATTERN,
    JSON_OBJECT_OR_TEXT,
    NAME_SCHEMA,
    ApiError,
    CatalogOut,
    ConnectionStatusOut,
    ConnectorOut,
    ConnectorPageOut,
    CursorText,
    ExecuteOut,
    FieldError,
    PathConnectorId,
    configuration_schema,
    declared_as,
    decode_cursor,
    encode_cursor,
    error_responses,
    json_answer,
    json_response,
)
from ..secrets import env_ref_name
from ._common import api_router

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EXECUTE_PATH",
    "MAX_PAGE_SIZE",
    "ConnectorIn",
    "ExecuteIn",
    "router",
]

DEFAULT_PAGE_SIZE = 100
# A page's masked views cost one decryption per stored secret: bounded per request.
MAX_PAGE_SIZE = 500

router = api_router("/connectors", tags=["connectors"])


def _declare_update(schema: dict[str, Any]) -> None:
    # The route checks these itself (with its own messages); the document says them.
    schema["properties"]["name"] = {"anyOf": [NAME_SCHEMA, {"type": "null"}], "title": "Name"}
    schema["properties"]["configuration"] = {
        "anyOf": [configuration_schema(api_key=False), {"type": "null"}],
        "title": "Configuration",
    }


class ConnectorIn(BaseModel):
    """A connector to save. On update, a left-out (or masked) secret keeps the stored one."""

    model_config = ConfigDict(json_schema_extra=_declare_update)

    name: str | None = None
    configuration: dict[str, Any] | None = None


def _declare_new_connector(schema: dict[str, Any]) -> None:
    # The route checks these itself (with its own messages); the document says them.
    schema["required"] = ["name", "configuration"]
    schema["properties"]["name"] = {**NAME_SCHEMA, "title": "Name"}
    schema["properties"]["configuration"] = configuration_schema(api_key=True)


class NewConnectorIn(ConnectorIn):
    """A connector to create: a name, and a configuration with its API key."""

    model_config = ConfigDict(json_schema_extra=_declare_new_connector)


class ExecuteIn(BaseModel):
    """The request body to send: a JSON object, or a string holding one."""

    payload: dict[str, Any] | str = Field(json_schema_extra=declared_as(JSON_OBJECT_OR_TEXT))


@router.get(
    "",
    response_model=ConnectorPageOut,
)
async def list_connectors(
    services: ServicesDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="connectors per page")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        CursorText | None,
        Query(description="the previous page's next_cursor, for the next page"),
    ] = None,
) -> Response:
    """The saved connectors, oldest first, a page at a time (keys masked).

    ``{"data": [...], "total": n, "next_cursor": "..." | null}``: pass ``next_cursor`` as
    ``cursor`` for the next page; it is null on the last one. A row that cannot be shown
    (written by something else than this application) is listed as ``{"id": n, "error":
    "..."}``: delete it or save it again.
    """
    after = 0
    if cursor is not None:
        found = decode_cursor(cursor)
        if found is None:
            raise ApiError.invalid(
                [FieldError("cursor", "is not a next_cursor given by this list; leave it out")]
            )
        after = found
    # Reading, decrypting and rendering a page is all blocking work: in a worker thread,
    # so that the event loop keeps answering other requests meanwhile.
    body = await run_in_threadpool(_render_page, services, after, limit)
    return json_response(body)


def _render_page(services: ConnectorServices, after: int, limit: int) -> bytes:
    page = services.store.page(after, limit)
    last = page.items[-1].id if page.items else None
    # Each item is rendered on its own, so that one that cannot be shown is marked, not
    # fatal to the page; the items are then joined as JSONResponse would render the list.
    items = b",".join(services.listed(item) for item in page.items)
    cursor = encode_cursor(last) if page.more and last is not None else None
    return b'{"data":[%s],"total":%d,"next_cursor":%s}' % (
        items,
        page.total,
        json.dumps(cursor).encode("ascii"),
    )


async def _validated(
    services: ConnectorServices, name: Any, configuration: Any, *, require_api_key: bool
) -> dict[str, Any]:
    errors: list[FieldError] = validate_name(name)
    clean, config_errors = validate_configuration(configuration, require_api_key=require_api_key)
    errors += config_errors
    url = clean.get("url")
    url_ok = all(e["field"] != "configuration.url" for e in config_errors)
    if url_ok and isinstance(url, str) and env_ref_name(url) is None:
        try:
            await services.check_address(url, "configuration.url")
        except ApiError as exc:
            errors += exc.body.get("errors", [])
    if errors:
        raise ApiError.invalid(errors)
    return clean


def _unstorable(exc: Unstorable) -> ApiError:
    # Validation refuses what it knows cannot be stored; this is the net under it.
    return ApiError.invalid([FieldError("body", f"cannot be saved: it {exc}; nothing was written")])


@router.post(
    "",
    status_code=201,
    response_model=ConnectorOut,
    responses=error_responses(400),
)
async def create_connector(body: NewConnectorIn, services: ServicesDep) -> Response:
    """Save a new connector.

    Everything is validated first; the row is written and its answer rendered in one
    transaction, so a request that fails writes nothing.
    """
    clean = await _validated(services, body.name, body.configuration, require_api_key=True)
    public, secrets = services.secret_fields.split(clean)
    assert body.name is not None
    try:
        shown = await run_in_threadpool(
            services.store.create,
            body.name.strip(),
            public,
            services.encrypt_secrets(secrets),
            services.shown,
        )
    except Unstorable as exc:
        raise _unstorable(exc) from None
    return json_response(shown, status_code=201)


@router.get(
    "/{connector_id}",
    response_model=ConnectorOut,
    responses=error_responses(404, 409),
)
async def get_connector(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """One saved connector (key masked); 409 for a row that cannot be shown."""
    return json_response(services.shown_or_refusal(await services.load(connector_id)))


@router.put(
    "/{connector_id}",
    response_model=ConnectorOut,
    responses=error_responses(400, 404, 409),
)
async def update_connector(
    connector_id: PathConnectorId, body: ConnectorIn, services: ServicesDep
) -> Response:
    """Replace a connector's name and configuration; a left-out (or masked) secret is kept.

    A kept secret stays with the endpoint it was saved for: when the URL moves to another
    origin (scheme, host, port), a 422 names the secrets to give again. Nothing is written
    unless the whole update is valid and its answer can be shown.
    """
    stored = await services.load(connector_id)
    name = body.name if body.name is not None else stored.name
    configuration = (
        dict(body.configuration) if body.configuration is not None else dict(stored.configuration)
    )
    public, given = services.secret_fields.split(configuration)
    # Validate with the secrets that will be used: the stored ones, replaced by those given.
    kept = services.stored_secrets(stored, skip=given)
    moved = moved_secrets(stored, public.get("url"), kept)
    merged = services.secret_fields.merge(public, {**kept, **given})
    try:
        clean = await _validated(services, name, merged, require_api_key=False)
    except ApiError as exc:
        if moved:
            raise ApiError.invalid([*moved, *exc.body.get("errors", [])]) from None
        raise
    if moved:
        raise ApiError.invalid(moved)
    public, secrets = services.secret_fields.split(clean)
    encrypted = {
        path: services.cipher.encrypt(value) if path in given else stored.secrets_encrypted[path]
        for path, value in secrets.items()
    }
    try:
        updated = await run_in_threadpool(
            services.store.update, connector_id, name.strip(), public, encrypted, services.shown
        )
    except Unstorable as exc:
        raise _unstorable(exc) from None
    # The next request reads the new version anyway; this only frees the old entry.
    services.cache.discard(connector_id)
    if updated is None:
        raise ApiError(404, f"there is no connector with id {connector_id}")
    return json_response(updated)


@router.delete(
    "/{connector_id}",
    status_code=204,
    responses=error_responses(404),
)
async def delete_connector(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """Delete a saved connector."""
    deleted = await run_in_threadpool(services.store.delete, connector_id)
    services.cache.discard(connector_id)
    if not deleted:
        raise ApiError(404, f"there is no connector with id {connector_id}")
    return Response(status_code=204)


@router.post(
    "/{connector_id}/check",
    response_model=ConnectionStatusOut,
    responses=error_responses(404, 409),
)
async def check_saved(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """Check a saved connector's connection: a ``connection_status``."""
    config = await services.usable_saved(connector_id)
    return json_answer((await services.connector.acheck_connection(config)).to_dict())


@router.get(
    "/{connector_id}/discover",
    response_model=CatalogOut,
    responses=error_responses(404, 409),
)
async def discover(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """The saved connector's catalog."""
    stored = await services.load(connector_id)
    return json_answer(services.connector.discover(services.raw_config(stored)).to_dict())


_EXECUTE = "/{connector_id}/execute_model"


@router.post(
    _EXECUTE,
    response_model=ExecuteOut,
    responses={
        200: {"content": {"text/event-stream": {}}},
        **error_responses(400, 404, 409, 502, 504),
    },
)
async def execute_model(
    connector_id: PathConnectorId, body: ExecuteIn, request: Request, services: ServicesDep
) -> Response:
    """Send a payload through the saved connector.

    JSON: ``{"data": [records], "answer": {...}, "warnings": []}``. With
    ``Accept: text/event-stream`` and a streaming connector: server-sent events
    ``record`` ..., ``answer``, then ``done``.
    """
    return await execute_saved(
        services, connector_id, body.payload, request.headers.get("accept", "")
    )


EXECUTE_PATH = re.compile(
    re.escape(router.prefix + _EXECUTE).replace(re.escape("{connector_id}"), f"({ID_PATTERN})")
)
"""The path of ``execute_model``, the connector id (canonical decimal) as its group."""
