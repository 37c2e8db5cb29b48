"""The HTTP API, shaped after the original platform's routes (all under ``/api/v1``).

Every route here requires the bearer token. Connector configurations are validated per
field (422 with the field path and reason); stored secrets (the API key, secret headers,
the proxy) never leave the server.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...connector import OpenAICompatibleConnector
from ..connectors.execution import execute_saved
from ..connectors.services import ConnectorServices
from ..connectors.store import CONNECTOR_NAME, StoredConnector, Unstorable
from ..connectors.validation import validate_configuration, validate_name
from ..dependencies import ServicesDep, require_token
from ..http.ids import BodyConnectorId, PathConnectorId, decode_cursor, encode_cursor
from ..http.problems import ApiError, FieldError
from ..http.schemas import (
    CatalogOut,
    ConnectionStatusOut,
    ConnectorOut,
    ConnectorPageOut,
    DefinitionOut,
    ExecuteOut,
    error_responses,
)
from ..secrets.env_refs import env_ref_name
from ..secrets.reuse import moved_secret_problems

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "router"]

DEFAULT_PAGE_SIZE = 100
# A page's masked views cost one decryption per stored secret: bounded per request.
MAX_PAGE_SIZE = 500

# Every route may answer 401 (the gate, before the route), 413 (a body over the cap, on
# any request) and 422 (a parameter or the body is wrong).
router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    responses=error_responses(401, 413, 422),
)


class CheckConnectionIn(BaseModel):
    """A configuration to test before saving it."""

    configuration: dict[str, Any]
    connector_id: BodyConnectorId | None = Field(
        default=None,
        description="a saved connector whose stored secrets (API key, secret headers, proxy) "
        "are used for those left out",
    )


class ConnectorIn(BaseModel):
    """A connector to save. On update, a left-out (or masked) secret keeps the stored one."""

    name: str | None = None
    configuration: dict[str, Any] | None = None


class ExecuteIn(BaseModel):
    """The request body to send: a JSON object, or a string holding one."""

    payload: dict[str, Any] | str


def _json(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


def _ok(model: type[Any], *errors: int) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model}, **error_responses(*errors)}


@router.get(
    "/connector_definitions/openai_compatible",
    tags=["definitions"],
    response_model=None,
    responses=_ok(DefinitionOut),
)
async def connector_definition(services: ServicesDep) -> dict[str, Any]:
    """The connector's specification and meta data."""
    return _definition(services.connector)


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
    "/connector_definitions/check_connection",
    tags=["definitions"],
    response_model=None,
    responses=_ok(ConnectionStatusOut, 400, 404, 409),
)
async def check_connection(body: CheckConnectionIn, services: ServicesDep) -> dict[str, Any]:
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
        errors += _moved_secrets(stored, public.get("url"), kept)
        raw = services.secret_fields.merge(public, {**kept, **given})
    _, config_errors = validate_configuration(raw, require_api_key=False)
    errors += config_errors
    if errors:
        raise ApiError.invalid(errors)
    config = await services.usable(raw)
    return (await services.connector.acheck_connection(config)).to_dict()


def _moved_secrets(stored: StoredConnector, new_url: Any, kept: dict[str, str]) -> list[FieldError]:
    """The stored secrets (with a value) a request would reuse for another endpoint origin."""
    reused = [path for path, value in kept.items() if value]
    return moved_secret_problems(stored.configuration.get("url"), new_url, reused, "configuration")


@router.get(
    "/connectors",
    tags=["connectors"],
    response_model=None,
    responses={200: {"model": ConnectorPageOut}},
)
async def list_connectors(
    services: ServicesDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="connectors per page")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(description="the previous page's next_cursor, for the next page")
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
    return _json(body)


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
    "/connectors",
    status_code=201,
    tags=["connectors"],
    response_model=None,
    responses={201: {"model": ConnectorOut}, **error_responses(400)},
)
async def create_connector(body: ConnectorIn, services: ServicesDep) -> Response:
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
    return _json(shown, status_code=201)


@router.get(
    "/connectors/{connector_id}",
    tags=["connectors"],
    response_model=None,
    responses=_ok(ConnectorOut, 404, 409),
)
async def get_connector(connector_id: PathConnectorId, services: ServicesDep) -> Response:
    """One saved connector (key masked); 409 for a row that cannot be shown."""
    return _json(services.shown_or_refusal(await services.load(connector_id)))


@router.put(
    "/connectors/{connector_id}",
    tags=["connectors"],
    response_model=None,
    responses=_ok(ConnectorOut, 400, 404, 409),
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
    moved = _moved_secrets(stored, public.get("url"), kept)
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
    return _json(updated)


@router.delete(
    "/connectors/{connector_id}",
    status_code=204,
    tags=["connectors"],
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
    "/connectors/{connector_id}/check",
    tags=["connectors"],
    response_model=None,
    responses=_ok(ConnectionStatusOut, 404, 409),
)
async def check_saved(connector_id: PathConnectorId, services: ServicesDep) -> dict[str, Any]:
    """Check a saved connector's connection: a ``connection_status``."""
    config = await services.usable_saved(connector_id)
    return (await services.connector.acheck_connection(config)).to_dict()


@router.get(
    "/connectors/{connector_id}/discover",
    tags=["connectors"],
    response_model=None,
    responses=_ok(CatalogOut, 404, 409),
)
async def discover(connector_id: PathConnectorId, services: ServicesDep) -> dict[str, Any]:
    """The saved connector's catalog."""
    stored = await services.load(connector_id)
    return services.connector.discover(services.raw_config(stored)).to_dict()


@router.post(
    "/connectors/{connector_id}/execute_model",
    tags=["connectors"],
    response_model=None,
    responses={
        200: {"model": ExecuteOut, "content": {"text/event-stream": {}}},
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
