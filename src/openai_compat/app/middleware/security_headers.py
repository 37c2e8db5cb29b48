"""``SECURITY_HEADERS`` added to every response (the page, its static files, the docs, the
API, the gate's refusals)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..http import SECURITY_HEADERS

__all__ = ["SecurityHeaders"]


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to each response that lacks them."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS if headers is None else headers
        # Encoded once, as ``MutableHeaders.setdefault`` encodes them on every response.
        self._raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # What MutableHeaders(scope=message).setdefault does for each, in one pass.
                headers = list(message.get("headers", ()))
                present = {name for name, _ in headers}
                headers += [item for item in self._raw if item[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
