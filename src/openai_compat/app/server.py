"""``openai-compat serve``: start the application with uvicorn and say how to sign in."""

from __future__ import annotations

import sys
from typing import TextIO

import uvicorn

from ..observability import instrument_app
from .application import StartupReport, create_app
from .settings import AppSettings

__all__ = ["banner", "serve"]


def banner(report: StartupReport, host: str, port: int) -> str:
    """The start message: address, database, and how to sign in (the token only once)."""
    shown_host = f"[{host}]" if ":" in host else host
    lines = [
        f"openai-compat application on http://{shown_host}:{port}/",
        f"  database:   {report.database}",
        f"  API docs:   http://{shown_host}:{port}/docs",
    ]
    token = report.token
    if token.generated:
        lines += [
            f"  sign in with this token (shown once; kept in {token.source}):",
            f"    {token.value}",
        ]
    elif token.source == "OPENAI_COMPAT_TOKEN":
        lines.append("  sign in with the token set in OPENAI_COMPAT_TOKEN")
    else:
        lines.append(f"  sign in with the token kept in {token.source} (cat {token.source})")
    if report.secret_key.generated:
        lines.append(
            f"  API keys are encrypted with a new key in {report.secret_key.source} "
            "(keep it with the database)"
        )
    lines.append(
        "  no model endpoint at hand? `openai-compat mock-server --port 8080` answers at "
        "http://127.0.0.1:8080/v1/chat/completions"
    )
    return "\n".join(lines)


def serve(
    settings: AppSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    out: TextIO | None = None,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Run the application in the foreground until interrupted.

    The access log is off unless asked for: one formatted line per request costs about as
    much CPU as the rest of a simple request.
    """
    stream = out or sys.stderr

    def announce(report: StartupReport) -> None:
        print(banner(report, host, port), file=stream, flush=True)

    app = create_app(settings, on_start=announce)
    instrument_app(app)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        access_log=access_log,
    )
