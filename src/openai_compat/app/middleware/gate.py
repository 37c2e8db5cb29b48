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
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..http import ApiError, BodyTooLarge, body_too_large, sign_in_required
from ..routers import is_protected
from ..secrets import bearer_matches

__all__ = ["LargerBodies", "RequestGate", "too_large_handler"]

LargerBodies = Mapping[str, tuple[int, Callable[[int], ApiError]]]
"""Paths that take larger bodies (uploads): their cap, and the answer past it."""


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
        larger_bodies: LargerBodies | None = None,
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


def too_large_handler(
    max_body_bytes: int, larger_bodies: LargerBodies | None = None
) -> Callable[[Request, Exception], Any]:
    """The application's 413 handler: the answer of the cap the request's path has, as the
    gate gives it (a body read past its cap raises `BodyTooLarge` inside the app)."""
    larger = dict(larger_bodies or {})

    async def on_too_large(request: Request, exc: Exception) -> Response:
        found = larger.get(request.url.path)
        if found is not None:
            cap, refusal = found
            return refusal(cap).response()
        limit = exc.limit if isinstance(exc, BodyTooLarge) else max_body_bytes
        return body_too_large(limit).response()

    return on_too_large
