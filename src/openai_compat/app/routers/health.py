"""``/health`` (liveness, no token) and ``/metrics`` (Prometheus, the token or the metrics
token)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from ..dependencies import ContainerDep
from ..http import HealthOut, error_responses, json_answer, sign_in_required
from ..metrics import CONTENT_TYPE
from ..secrets import bearer_matches

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get(
    "/metrics", response_class=PlainTextResponse, responses=error_responses(401, beside=True)
)
async def metrics_text(request: Request, container: ContainerDep) -> Response:
    """Prometheus metrics (the token, or ``OPENAI_COMPAT_METRICS_TOKEN``)."""
    metrics_token = container.settings.metrics_token
    allowed = bearer_matches(request.headers, container.token) or (
        metrics_token is not None and bearer_matches(request.headers, metrics_token)
    )
    if not allowed:
        raise sign_in_required()
    return Response(container.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/health", response_model=HealthOut)
async def health() -> Response:
    """Liveness check (no token needed)."""
    return json_answer({"status": "ok"})
