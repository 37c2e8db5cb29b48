"""Build the FastAPI application: credentials, database, routes, the web page, the docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .. import resources as spec_resources
from .._transports import aiohttp_transport, default_limits, hooked_client_factory
from ..connector import OpenAICompatibleConnector
from .connectors.services import ConnectorServices
from .connectors.store import ConnectorStore
from .db.database import database_url, describe_url, migrate, open_engine
from .dependencies import Container, require_token
from .egress.policy import AddressPolicy
from .http.page_headers import SecurityHeaders
from .http.problems import install_handlers
from .metrics import CONTENT_TYPE, AppMetrics, ExecuteMetrics
from .middleware.execute_lane import ExecuteLane
from .middleware.gate import (
    BodyTooLarge,
    RequestGate,
    bearer_matches,
    body_too_large,
    sign_in_required,
)
from .routers.connectors import router
from .routers.mapping_preview import router as mapping_preview_router
from .routers.runs import runs_router
from .runs.executor import RunExecutor
from .runs.store import RunStore
from .runs.uploads import too_large
from .secrets.credentials import (
    KeyCipher,
    Provisioned,
    owner_only_dir,
    provision_secret_key,
    provision_token,
    weak_token_warning,
)
from .secrets.fields import SecretFields, secret_paths
from .settings import AppSettings

__all__ = ["StartupReport", "create_app"]

_STATIC = Path(str(resources.files(__package__).joinpath("static")))
_log = logging.getLogger("openai_compat.app")


@dataclass(frozen=True)
class StartupReport:
    """What the start did, for the banner: where the data is and how to sign in."""

    database: str
    token: Provisioned
    secret_key: Provisioned


def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def _upload_refusal(limit: int) -> Any:
    # The gate's cap has the multipart slack in it; the answer names the file's cap.
    return too_large(limit - 64 * 1024)


def create_app(
    settings: AppSettings, *, on_start: Callable[[StartupReport], None] | None = None
) -> FastAPI:
    """The application for ``settings``: provisions credentials and migrates the database now.

    ``on_start`` receives the ``StartupReport`` (the CLI prints it once).
    """
    owner_only_dir(settings.data_dir)
    token = provision_token(settings.data_dir, settings.token)
    warning = weak_token_warning(token)
    if warning:
        _log.warning("%s", warning)
    secret = provision_secret_key(settings.data_dir, settings.secret_key)
    url = database_url(settings.database_url, settings.sqlite_path)
    engine = open_engine(url)
    migrate(engine)
    policy = AddressPolicy(
        allow_link_local=settings.allow_link_local, refuse_private=settings.refuse_private
    )
    connector = OpenAICompatibleConnector()
    properties = spec_resources.spec()["connection_specification"]["properties"]
    services = ConnectorServices(
        store=ConnectorStore(engine),
        cipher=KeyCipher(secret.value),
        policy=policy,
        connector=connector,
        secret_fields=SecretFields(secret_paths(properties)),
    )
    metrics = AppMetrics()
    run_store = RunStore(engine)
    metrics.watch_runs(run_store.counts_by_status)
    executor = RunExecutor(
        run_store,
        services,
        metrics,
        settings.data_dir,
        max_runs=settings.max_runs,
        lease_s=settings.run_lease_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # aiohttp's pool, as batch runs use: about half the CPU of httpx's client a request.
        # The policy holds at each connection (a DNS answer can change after the check).
        limit = default_limits().max_connections or 100
        transport = aiohttp_transport(limit, policy.allowed_addresses)
        connector.client = transport
        # Configurations with TLS or proxy options get their own client: guarded too.
        connector.client_factory = hooked_client_factory(policy.allowed_addresses)
        executor.start()
        try:
            yield
        finally:
            executor.stop()
            connector.client = None
            await transport.aclose()
            engine.dispose()

    app = FastAPI(
        title="openai-compat",
        version=__version__,
        summary="Configure, check, save and run OpenAI-compatible endpoint connectors.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # The bundled Swagger UI (4.x) renders 3.0 documents; FastAPI's output is compatible.
    app.openapi_version = "3.0.3"
    app.state.container = Container(
        settings=settings,
        services=services,
        run_store=run_store,
        executor=executor,
        metrics=metrics,
        token=token.value,
    )
    install_handlers(app)
    upload_path = "/api/v1/uploads"

    async def on_too_large(request: Request, exc: Exception) -> JSONResponse:
        if request.url.path == upload_path:
            return too_large(settings.max_upload_bytes).response()
        limit = exc.limit if isinstance(exc, BodyTooLarge) else settings.max_body_bytes
        return body_too_large(limit).response()

    app.add_exception_handler(413, on_too_large)
    # The token and the body cap, before any body byte is read. Added last is outermost:
    # the security headers go on the gate's refusals too.
    # Innermost: the hot route's fast lane, behind everything below.
    app.add_middleware(ExecuteLane, services=services)
    # Only the requests the gate let through are counted.
    app.add_middleware(ExecuteMetrics, metrics=metrics)
    app.add_middleware(
        RequestGate,
        token=token.value,
        max_body_bytes=settings.max_body_bytes,
        # The multipart framing around the file is not counted against the upload's cap.
        larger_bodies={upload_path: (settings.max_upload_bytes + 64 * 1024, _upload_refusal)},
    )
    app.add_middleware(SecurityHeaders)
    app.include_router(router)
    app.include_router(mapping_preview_router)
    app.include_router(runs_router)

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics_text(request: Request) -> Response:
        """Prometheus metrics (the token, or ``OPENAI_COMPAT_METRICS_TOKEN``)."""
        allowed = bearer_matches(request.headers, token.value) or (
            settings.metrics_token is not None
            and bearer_matches(request.headers, settings.metrics_token)
        )
        if not allowed:
            raise sign_in_required()
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness check (no token needed)."""
        return {"status": "ok"}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Annotated[None, Depends(require_token)]) -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        # A static page; it fetches /openapi.json with the token the web page stored.
        return FileResponse(_STATIC / "docs.html")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(_STATIC / "index.html")

    app.mount("/static/swagger", StaticFiles(directory=_swagger_dir()), name="swagger")
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    if on_start is not None:
        on_start(StartupReport(describe_url(url), token, secret))
    return app
