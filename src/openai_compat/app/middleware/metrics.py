"""The ``execute_model`` requests counted and timed, as they are answered (`AppMetrics`)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import AppMetrics
from ..routers import EXECUTE_PATH

__all__ = ["ExecuteMetrics"]


class ExecuteMetrics:
    """ASGI middleware: ``execute_model`` requests counted by connector and outcome (the
    answer's status: 2xx ``ok``, else ``failed``), timed to the answer's last byte."""

    def __init__(self, app: ASGIApp, *, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = EXECUTE_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if found is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        label = found.group(1)
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                outcome = "ok" if 200 <= status < 300 else "failed"
                self.metrics.requests.labels(label, "execute_model", outcome).inc()
                self.metrics.latency.labels(label, "execute_model").observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self.app(scope, receive, watched)
