"""What every router of the API shares: the API's prefix and the way its routers are made."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends

from ..dependencies import require_token
from ..http import error_responses

__all__ = ["API_ROOT", "API_V1", "RUNS_WHY", "api_router"]

API_ROOT = "/api"
"""Every path of the API is under it (and needs the token), whatever its version."""
API_V1 = f"{API_ROOT}/v1"

# The error statuses of the runs' resources (uploads, queries, runs), in their words.
RUNS_WHY = {
    400: "the body cannot be read",
    404: "there is no run (or upload, or connector) with this id",
    409: "the run is not in a status that allows this, or its connector cannot be used",
    413: "the upload is over OPENAI_COMPAT_MAX_UPLOAD_BYTES",
    415: "the upload is not multipart/form-data",
}


def api_router(path: str, tags: Sequence[str] | None = None) -> APIRouter:
    """The router of the API's resource at ``path`` (under ``API_V1``): the token is
    required on every route, and every route may answer 401 (the gate, before the route),
    413 (a body over the cap, on any request) and 422 (a parameter or the body is wrong)."""
    return APIRouter(
        prefix=f"{API_V1}{path}",
        tags=list(tags) if tags else None,
        dependencies=[Depends(require_token)],
        responses=error_responses(401, 413, 422),
    )
