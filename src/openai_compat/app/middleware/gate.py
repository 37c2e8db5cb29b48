"""Refuse a request before its body is read: no token (401), a body too large (413).

FastAPI reads and parses a JSON body before it runs a route's dependencies, so a token
checked in a dependency comes too late: an anonymous client could make the server hold a
171 MB body. ``RequestGate`` is plain ASGI and answers from the headers alone, before the
application is called. A body that does not declare its size (chunked) is counted as it
arrives, and refused as soon as it passes the cap.

(FastAPI's own ``max_body_size`` sits outside every middleware and turns any answer to a
request with a large ``Content-Length``, the 401 included, into a plain-text 413.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import OpenAICompatError
from ..http.problems import ApiError
from ..secrets.credentials import tokens_match

__all__ = ["BodyTooLarge", "RequestGate", "body_too_large", "is_protected", "sign_in_required"]


class BodyTooLarge(HTTPException, OpenAICompatError):
    """Raised from ``receive`` once a body passes the cap (FastAPI passes an
    ``HTTPException`` on, unwrapped, to the 413 handler)."""

    def __init__(self, limit: int) -> None:
        message = f"the request body is larger than {limit} bytes"
        HTTPException.__init__(self, 413, message)
        self.message = message
        self.limit = limit


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


def is_protected(path: str) -> bool:
    """Whether ``path`` needs the token: the API and its OpenAPI document.

    >>> [is_protected(p) for p in ("/api/v1/connectors", "/openapi.json", "/", "/health")]
    [True, True, False, False]
    """
    return path == "/openapi.json" or path == "/api" or path.startswith("/api/")


def bearer_matches(headers: Headers, token: str) -> bool:
    """Whether ``headers`` carry ``Authorization: Bearer <token>``."""
    scheme, credentials = get_authorization_scheme_param(headers.get("authorization"))
    return scheme.lower() == "bearer" and tokens_match(credentials, token)


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    # The server (h11 or httptools) has already refused a malformed length.
    return int(value) if value is not None and value.isdigit() else None


class RequestGate:
    """ASGI middleware: 401 for a protected path without the token, 413 for a body declared
    larger than ``max_body_bytes``; both before the application reads a byte of the body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        max_body_bytes: int,
        protected: Callable[[str], bool] = is_protected,
        larger_bodies: Mapping[str, tuple[int, Callable[[int], ApiError]]] | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.protected = protected
        # Paths that take larger bodies (uploads): their cap, and the answer past it.
        self.larger_bodies = dict(larger_bodies or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal: ApiError | None = None
        limit, too_large = self.larger_bodies.get(
            scope["path"], (self.max_body_bytes, body_too_large)
        )
        if self.protected(scope["path"]) and not bearer_matches(headers, self.token):
            refusal = sign_in_required()
        else:
            length = _declared_length(headers)
            if length is not None and length > limit:
                refusal = too_large(limit)
        if refusal is not None:
            # The body is left unread: the server discards it as it comes.
            await refusal.response()(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            # The app's handlers answer it as a rule; this is for a body read elsewhere.
            if started:
                raise
            await too_large(limit).response()(scope, receive, send)
