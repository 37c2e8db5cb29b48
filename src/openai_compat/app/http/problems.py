"""The application's error answers: one JSON shape, a clear message, never a stack trace.

Every error is ``{"error": {"message": "...", ...}}``; validation errors add
``"errors": [{"field": "configuration.url", "message": "..."}]`` (status 422), endpoint
failures add the provider's status and message (status 502, or 504 on a timeout).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..._json import MAX_DEPTH
from ...errors import (
    ConfigurationError,
    EndpointError,
    FieldProblem,
    OpenAICompatError,
    StreamError,
    TimeoutError,
)

__all__ = [
    "ApiError",
    "BodyTooLarge",
    "FieldError",
    "body_too_large",
    "endpoint_error_body",
    "install_handlers",
    "sign_in_required",
]

_log = logging.getLogger("openai_compat.app")


class FieldError(dict[str, str]):
    """``{"field": "configuration.url", "message": "..."}``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


class ApiError(OpenAICompatError):
    """An error answer: HTTP ``status`` and the ``{"error": {...}}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **extra}
        if errors:
            self.body["errors"] = errors
        self.headers = headers

    @classmethod
    def invalid(cls, errors: list[FieldError]) -> ApiError:
        """422: the request is well-formed JSON but some fields are wrong."""
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return cls(422, f"invalid request: {summary}", errors=errors)

    @classmethod
    def from_config_error(cls, exc: ConfigurationError, prefix: str) -> ApiError:
        """422 listing every problem of ``exc``, each field under ``prefix`` (``url`` becomes
        ``configuration.url``; a problem of ``prefix`` itself, or of no field, is ``prefix``)."""
        problems = exc.problems or (FieldProblem(prefix, exc.reason),)
        return cls.invalid(
            [
                FieldError(prefix if p.field == prefix else f"{prefix}.{p.field}", p.message)
                for p in problems
            ]
        )

    def response(self) -> JSONResponse:
        body = {"error": self.body}
        try:
            return JSONResponse(body, status_code=self.status, headers=self.headers)
        except UnicodeEncodeError:
            # A message or a field path quoting text with a lone surrogate: the error is
            # still answered, with the surrogate written as its escape.
            return JSONResponse(_escaped(body), status_code=self.status, headers=self.headers)


def sign_in_required() -> ApiError:
    """The 401 answer of a request without the right bearer token."""
    return ApiError(
        401,
        "sign in: send the application's token as 'Authorization: Bearer <token>' "
        "(OPENAI_COMPAT_TOKEN, or the token file in the data directory)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def body_too_large(limit: int) -> ApiError:
    """The 413 answer of a request body over ``limit`` bytes."""
    return ApiError(
        413,
        f"the request body is too large: at most {limit} bytes are accepted "
        "(OPENAI_COMPAT_MAX_BODY_BYTES)",
        max_body_bytes=limit,
    )


class BodyTooLarge(HTTPException, OpenAICompatError):
    """Raised from ``receive`` once a body passes the cap (FastAPI passes an
    ``HTTPException`` on, unwrapped, to the 413 handler)."""

    def __init__(self, limit: int) -> None:
        message = f"the request body is larger than {limit} bytes"
        HTTPException.__init__(self, 413, message)
        self.message = message
        self.limit = limit


def _escaped(value: Any) -> Any:
    """``value`` with every lone surrogate of its strings (keys too) written as an escape."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


def endpoint_error_body(exc: OpenAICompatError) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for a failure of the model endpoint (or of reaching it)."""
    # The family's name: a status's own class (RateLimitError...) is an EndpointError here.
    kind = EndpointError.__name__ if isinstance(exc, EndpointError) else type(exc).__name__
    body: dict[str, Any] = {"message": str(exc), "kind": kind}
    status = 502
    if isinstance(exc, EndpointError):
        body.update(
            provider_status=exc.status,
            provider_message=exc.provider_message,
            provider_type=exc.type,
            provider_code=exc.code,
            request_id=exc.request_id,
        )
    elif isinstance(exc, StreamError):
        body["provider_code"] = exc.code
    elif isinstance(exc, TimeoutError):
        status = 504
    elif isinstance(exc, ConfigurationError):
        status = 422
    body["attempts"] = exc.attempts
    return status, body


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors: list[FieldError] = []
    for err in exc.errors():
        kind = err.get("type", "")
        if kind == "json_invalid":
            ctx = err.get("ctx") or {}
            where = err.get("loc", ("body", 0))
            reason = ctx.get("error", "invalid JSON")
            message = f"the request body is not valid JSON ({reason} at character {where[-1]})"
            return ApiError(400, message).response()
        if kind == "missing" and tuple(err.get("loc", ())) == ("body",):
            return ApiError(400, "the request needs a JSON body").response()
        errors.append(FieldError(_field_path(err.get("loc", ())), str(err.get("msg", "invalid"))))
    return ApiError.invalid(errors).response()


async def _on_api_error(request: Request, exc: ApiError) -> JSONResponse:
    return exc.response()


async def _on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        # FastAPI's parser gave up on the body (its cause is kept): say why.
        detail = (
            "the request body is nested too deeply to be read; JSON values may nest at most "
            f"{MAX_DEPTH} levels (objects and arrays inside each other)"
        )
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # Starlette names the methods of the first route matching the path only; a path
        # served by several routes (GET and DELETE /runs/{id}) takes all of theirs.
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return ApiError(exc.status_code, detail, headers=headers).response()


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the application takes at the request's path."""
    path = request.scope.get("path", "")
    allowed: set[str] = set()
    for route in _routes(request.app.router.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            allowed.update(getattr(route, "methods", None) or ())
    return sorted(allowed)


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    # An included router is one entry of the application's routes: its own routes are inside.
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The type only: an exception's text could carry configuration values.
    _log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return ApiError(
        500, f"internal error ({type(exc).__name__}); the server log has the request"
    ).response()


def install_handlers(app: FastAPI) -> None:
    """Make every error answer use the ``{"error": {...}}`` shape."""
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)
