"""Build the FastAPI application: it only assembles what the rooms make.

The settings, the credentials and the database (migrated at start), the one dependency
container, the middlewares (outermost last), the routers, and the static files.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .. import resources as spec_resources
from ..connector import OpenAICompatibleConnector
from .batches import BatchKeeper, BatchService, OpenAIErrors
from .connectors import ConnectorServices, ConnectorStore
from .db import database_url, describe_url, migrate, open_engine
from .dependencies import Container
from .egress import AddressPolicy, guarded_client_factory, shared_pool
from .http import ApiError, install_handlers
from .metrics import AppMetrics
from .middleware import ExecuteLane, ExecuteMetrics, RequestGate, SecurityHeaders, too_large_handler
from .routers import FILES_PATH, ROUTERS, STATIC_DIR, UPLOADS_PATH
from .routers.openai_files import file_too_large
from .runs import (
    MULTIPART_SLACK,
    RunExecutor,
    RunStore,
    sweep_orphan_uploads,
    upload_body_cap,
)
from .secrets import (
    KeyCipher,
    Provisioned,
    SecretFields,
    owner_only_dir,
    provision_secret_key,
    provision_token,
    secret_paths,
    weak_token_warning,
)
from .settings import AppSettings

__all__ = ["StartupReport", "create_app"]

_log = logging.getLogger("openai_compat.app")
# An upload file without a row is an orphan once it is this old (seconds).
_ORPHAN_GRACE_S = 3600.0


@dataclass(frozen=True)
class StartupReport:
    """What the start did, for the banner: where the data is and how to sign in."""

    database: str
    token: Provisioned
    secret_key: Provisioned


def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def _file_too_large(cap: int) -> ApiError:
    return file_too_large(cap - MULTIPART_SLACK)


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
    # Instances sharing a PostgreSQL database share the data directory: a file another one
    # is receiving right now has no row yet.
    swept = sweep_orphan_uploads(
        settings.data_dir,
        run_store.upload_ids,
        older_than_s=_ORPHAN_GRACE_S if run_store.postgres else 0.0,
    )
    if swept:
        _log.info("removed %d upload files that no upload names", len(swept))
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
        transport = shared_pool(policy)
        connector.client = transport
        # Configurations with TLS or proxy options get their own client: guarded too.
        connector.client_factory = guarded_client_factory(policy)
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
    # The batches' checks, finalizing and expiry run on the executor's loop, without a read.
    app.state.batch_service = BatchService(app.state.container)
    executor.add_chore(BatchKeeper(app.state.batch_service))
    install_handlers(app)
    # The multipart framing around the file is not counted against the upload's cap.
    larger_bodies = {
        UPLOADS_PATH: upload_body_cap(settings.max_upload_bytes),
        FILES_PATH: (settings.batch_max_file_bytes + MULTIPART_SLACK, _file_too_large),
    }
    app.add_exception_handler(413, too_large_handler(settings.max_body_bytes, larger_bodies))
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
        larger_bodies=larger_bodies,
    )
    # OpenAI's error object on /v1, the gate's refusals included.
    app.add_middleware(OpenAIErrors)
    app.add_middleware(SecurityHeaders)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static/swagger", StaticFiles(directory=_swagger_dir()), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if on_start is not None:
        on_start(StartupReport(describe_url(url), token, secret))
    return app
