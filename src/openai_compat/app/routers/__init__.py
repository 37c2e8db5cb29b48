"""The HTTP routes: one module per resource, each an ``APIRouter`` that owns its paths.

``definitions`` (the connector's spec, a configuration tested before saving), ``connectors``
(the saved connectors, ``execute_model``), ``capabilities`` (what a saved connector's
server supports, measured), ``mapping_preview``, ``uploads``,
``input_formats`` (what a run's input may be), ``queries``, ``runs`` (a connector's runs,
and the runs with their events and results), ``health`` (``/health``, ``/metrics``),
``openai_files`` and ``openai_batches`` (OpenAI's Files and Batches API under ``/v1``),
``pages`` (the web page, the docs page, the OpenAPI document) and ``guide`` (the
documentation site under ``/guide/``). `ROUTERS` is every router in
the order the application includes them; the paths the middlewares watch come from here
(`EXECUTE_PATH`, `UPLOADS_PATH`, `is_protected`), never written again by hand.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..batches.errors import OPENAI_ROOT
from . import (
    capabilities,
    connectors,
    definitions,
    guide,
    health,
    input_formats,
    mapping_preview,
    openai_batches,
    openai_files,
    pages,
    queries,
    runs,
    uploads,
)
from ._common import API_ROOT
from .connectors import EXECUTE_PATH
from .openai_files import FILES_PATH
from .pages import OPENAPI_PATH, STATIC_DIR
from .uploads import UPLOADS_PATH

__all__ = ["EXECUTE_PATH", "FILES_PATH", "ROUTERS", "STATIC_DIR", "UPLOADS_PATH", "is_protected"]

ROUTERS: tuple[APIRouter, ...] = (
    definitions.router,
    connectors.router,
    capabilities.router,
    mapping_preview.router,
    uploads.router,
    input_formats.router,
    queries.router,
    runs.connector_runs,
    runs.router,
    openai_files.router,
    openai_batches.router,
    health.router,
    pages.router,
    guide.router,
)


def is_protected(path: str) -> bool:
    """Whether ``path`` needs the token: the API (any version), OpenAI's API under ``/v1``
    (the token is its API key) and the OpenAPI document.

    >>> [is_protected(p) for p in ("/api/v1/connectors", "/openapi.json", "/", "/health")]
    [True, True, False, False]
    >>> is_protected("/v1/batches")
    True
    """
    return (
        path in (OPENAPI_PATH, API_ROOT, OPENAI_ROOT)
        or path.startswith(f"{API_ROOT}/")
        or path.startswith(f"{OPENAI_ROOT}/")
    )
