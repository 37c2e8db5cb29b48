"""The fast lane of the application's hot route, ``POST /api/v1/connectors/{id}/execute_model``.

A well-formed request (a canonical connector id, a JSON body that is an object whose
``payload`` is an object or a string, sent as ``application/json``) is answered here, by the
route's own body (`execute_saved`), without FastAPI's routing, dependency solving and body
validation: together they cost about as much CPU as the connector's whole request (see
``docs/performance.md``). Anything else (a body that is not JSON, is not an object, has no
payload, holds NaN or a lone surrogate escape, another content type...) goes on to FastAPI's
route with the body as it was read, so every error is the route's own answer, word for word.

It sits behind the token gate, the body cap, the security headers and the metrics, so those
hold for both ways in; the route keeps the OpenAPI description.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..connectors import ConnectorServices, execute_saved
from ..http import ApiError, parse_connector_id
from ..routers import EXECUTE_PATH

__all__ = ["ExecuteLane"]

_decode = msgspec.json.Decoder().decode


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:  # ASGI servers give the names in lower case
            return bytes(value)
    return None


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def _payload_of(body: bytes) -> dict[str, Any] | str | None:
    """The body's ``payload`` when the route's model would take it as it is, else None.

    msgspec refuses what Python's ``json`` would read differently or not at all (NaN,
    lone surrogate escapes, numbers out of range, a BOM, other encodings): those go to
    the route, which reads them as it always did.
    """
    try:
        decoded = _decode(body)
    except (msgspec.MsgspecError, RecursionError):
        return None
    if type(decoded) is not dict:
        return None
    payload = decoded.get("payload")
    return payload if type(payload) is dict or type(payload) is str else None


class ExecuteLane:
    """ASGI middleware: answers well-formed ``execute_model`` requests itself (see the
    module's docstring); every other request goes to ``app`` untouched."""

    def __init__(self, app: ASGIApp, *, services: ConnectorServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            EXECUTE_PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        connector_id = parse_connector_id(found.group(1)) if found is not None else None
        if connector_id is None or not _is_json(_header(scope, b"content-type")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was in: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        payload = _payload_of(body)
        if payload is None:
            await self.app(scope, _replay(body, receive), send)
            return
        accept = (_header(scope, b"accept") or b"").decode("latin-1")
        try:
            response = await execute_saved(self.services, connector_id, payload, accept)
        except ApiError as exc:
            response = exc.response()
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` first, whole, then what ``receive`` gives."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
