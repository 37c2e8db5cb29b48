"""The application's one dependency container, and the FastAPI dependencies that read it.

`create_app` makes everything a route uses once, and keeps it in one `Container` on
``app.state.container``: the settings, the saved connectors' services, the run store and
executor, the metrics and the token. A route takes what it needs through the dependencies
here (``SettingsDep``, ``ServicesDep``, ``RunStoreDep``, ``ExecutorDep``, ``MetricsDep``);
every API router checks the token with `require_token`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .connectors import ConnectorServices
from .http import sign_in_required
from .metrics import AppMetrics
from .runs import RunExecutor, RunStore
from .secrets import tokens_match
from .settings import AppSettings

__all__ = [
    "Container",
    "ContainerDep",
    "ExecutorDep",
    "MetricsDep",
    "RunStoreDep",
    "ServicesDep",
    "SettingsDep",
    "container_of",
    "require_token",
]


@dataclass(frozen=True)
class Container:
    """What the routes share, one per application."""

    settings: AppSettings
    services: ConnectorServices
    run_store: RunStore
    executor: RunExecutor
    metrics: AppMetrics
    token: str


_bearer = HTTPBearer(auto_error=False, description="The token printed at first start")


# The dependencies are async on purpose: FastAPI runs sync ones in a worker thread.
async def container_of(request: Request) -> Container:
    """The app's `Container`."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(container_of)]


async def _settings(request: Request) -> AppSettings:
    return (await container_of(request)).settings


async def _services(request: Request) -> ConnectorServices:
    return (await container_of(request)).services


async def _run_store(request: Request) -> RunStore:
    return (await container_of(request)).run_store


async def _executor(request: Request) -> RunExecutor:
    return (await container_of(request)).executor


async def _metrics(request: Request) -> AppMetrics:
    return (await container_of(request)).metrics


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request carries ``Authorization: Bearer <token>``."""
    # RequestGate has refused a request without the token already, before reading its
    # body; this check stays for an app mounted without the gate, and for the OpenAPI
    # document's security scheme.
    expected = (await container_of(request)).token
    if credentials is None or not tokens_match(credentials.credentials, expected):
        raise sign_in_required()


SettingsDep = Annotated[AppSettings, Depends(_settings)]
ServicesDep = Annotated[ConnectorServices, Depends(_services)]
RunStoreDep = Annotated[RunStore, Depends(_run_store)]
ExecutorDep = Annotated[RunExecutor, Depends(_executor)]
MetricsDep = Annotated[AppMetrics, Depends(_metrics)]
