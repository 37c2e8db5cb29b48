"""The web page (``/``), the API docs page (``/docs``) and the OpenAPI document
(``/openapi.json``, with the token): none of them in the document itself."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from ..dependencies import require_token

__all__ = ["OPENAPI_PATH", "STATIC_DIR", "router"]

STATIC_DIR = Path(str(resources.files("openai_compat.app").joinpath("static")))
"""The page's files (HTML, scripts, style sheets), served under ``/static``."""

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request, _: Annotated[None, Depends(require_token)]) -> dict[str, Any]:
    document: dict[str, Any] = request.app.openapi()
    return document


OPENAPI_PATH = str(router.url_path_for("openapi"))
"""The OpenAPI document's path (it needs the token, as the API does)."""


@router.get("/docs")
async def docs() -> FileResponse:
    # A static page; it fetches /openapi.json with the token the web page stored.
    return FileResponse(STATIC_DIR / "docs.html")


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")
