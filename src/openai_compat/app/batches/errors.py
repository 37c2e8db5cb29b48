"""OpenAI's error object on every answer under ``/v1``, so the SDKs raise their own errors.

OpenAI answers ``{"error": {"message", "type", "param", "code"}}``; a request it cannot
take is 400 (never 422). `openai_error` makes such an answer; `OpenAIErrors` (ASGI)
rewrites every other error answer of a ``/v1`` path (the gate's 401 and 413, a 404 of no
route, a parameter FastAPI refused) to that shape, keeping its message.

>>> openai_error(404, "No such file").body
{'message': 'No such file', 'type': 'invalid_request_error', 'param': None, 'code': None}
>>> shaped(422, {"error": {"message": "m", "errors": [{"field": "limit", "message": "x"}]}})
(400, {'error': {'message': 'm', 'type': 'invalid_request_error', 'param': 'limit', 'code': None}})
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..http import ApiError

__all__ = ["OPENAI_ROOT", "OpenAIErrors", "openai_error", "shaped"]

OPENAI_ROOT = "/v1"
"""Where OpenAI's API is served (the SDK's ``base_url`` ends with it)."""


def _type_of(status: int) -> str:
    if status >= 500:
        return "server_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error"


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> ApiError:
    """An error answer in OpenAI's shape."""
    return ApiError(status, message, type=_type_of(status), param=param, code=code)


def shaped(status: int, body: Any) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI's error object of an error answer of the application."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"message": json.dumps(body) if body is not None else "error"}
    param = error.get("param")
    listed = error.get("errors")
    if param is None and isinstance(listed, list) and listed and isinstance(listed[0], dict):
        param = listed[0].get("field")
    if status == 422:
        status = 400
    code = error.get("code")
    if status == 401 and code is None:
        code = "invalid_api_key"
    return status, {
        "error": {
            "message": str(error.get("message", "error")),
            "type": error.get("type") or _type_of(status),
            "param": param,
            "code": code,
        }
    }


class OpenAIErrors:
    """ASGI middleware: every error answer of a ``/v1`` path in OpenAI's shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == OPENAI_ROOT or path.startswith(OPENAI_ROOT + "/")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        parts: list[bytes] = []

        async def reshaping_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None:
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            try:
                body = json.loads(b"".join(parts) or b"null")
            except ValueError:
                body = {"error": {"message": b"".join(parts).decode("utf-8", "replace")}}
            status, error = shaped(start["status"], body)
            data = json.dumps(error).encode("utf-8")
            headers = [
                (name, value)
                for name, value in start.get("headers", [])
                if name.lower() not in (b"content-length", b"content-type")
            ]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode("ascii")),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data})

        await self.app(scope, receive, reshaping_send)
