"""What the Files and Batches routes do: a file received, a batch created as a run.

A batch is created whole or not at all: its endpoint, window and metadata are checked
(400, OpenAI's error), its input file is read and checked (`checks`); a file with problems
makes a batch that is ``failed`` with OpenAI's ``errors`` list, as OpenAI does. A good file
becomes a run of the run engine on the batch's connector (``metadata.connector``, by id or
name, else the one connector whose ``request_format`` names the lines' model), whose
results are OpenAI's output lines: it is durable, taken over by another instance, and
stores every ``custom_id`` exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...errors import OpenAICompatError
from ..connectors import ConnectorServices
from ..dependencies import Container, container_of
from ..runs import RunStore
from ..runs.openai_lines import OPENAI_LINES
from ..runs.stored import StoredRun
from ..runs.uploads import upload_path
from .checks import InputCheck, check_lines
from .endpoints import BATCH_ENDPOINTS, endpoint_dialect
from .errors import openai_error
from .store import BatchStore, keys_of, new_id

__all__ = ["BatchIn", "BatchService", "batch_service"]

_WINDOWS = {"24h": timedelta(hours=24)}
_METADATA_KEYS = 16


def _one_of(values: list[str]) -> dict[str, Any]:
    return {"enum": values}


class BatchIn(BaseModel):
    """The body of ``POST /v1/batches``."""

    model_config = ConfigDict(extra="ignore")

    # Typed loosely so that each problem is answered in OpenAI's words; the document says
    # the rules.
    input_file_id: str = Field(description="the id of a file uploaded with purpose batch")
    endpoint: str = Field(
        description=f"one of {', '.join(sorted(BATCH_ENDPOINTS))}",
        json_schema_extra=_one_of(sorted(BATCH_ENDPOINTS)),
    )
    completion_window: str = Field(description='"24h"', json_schema_extra=_one_of(sorted(_WINDOWS)))
    metadata: dict[str, str] | None = Field(
        default=None,
        description="up to 16 pairs; connector (id or name), concurrency, rate, max_cost, "
        "max_tokens, prices set the run",
        json_schema_extra={"maxProperties": _METADATA_KEYS},
    )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Target:
    connector_id: int
    stored: StoredRun


def _model_of(configuration: dict[str, Any]) -> Any:
    request = configuration.get("request_format")
    if isinstance(request, str):
        try:
            request = json.loads(request)
        except ValueError:
            return None
    return request.get("model") if isinstance(request, dict) else None


def _number(metadata: dict[str, str], name: str, kind: type) -> Any:
    raw = metadata.get(name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise openai_error(
            400, f"metadata.{name} must be a {kind.__name__} (got {raw!r})", param="metadata"
        ) from None


class BatchService:
    """The files and batches of one application."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.settings = container.settings
        self.runs: RunStore = container.run_store
        self.services: ConnectorServices = container.services
        self.store = BatchStore(container.run_store.engine)

    # -- files -----------------------------------------------------------------------------
    def input_path(self, file_row: Any) -> Path:
        """Where an input file's bytes are (its upload's file)."""
        return upload_path(self.settings.data_dir, file_row.upload_id, "jsonl", False)

    def input_lines(self, file_id: str) -> Iterator[bytes]:
        """The lines of an input file (blocking)."""
        row = self.store.file(file_id)
        if row is None or row.upload_id is None:
            return
        with open(self.input_path(row), "rb") as stream:
            yield from stream

    # -- batches ---------------------------------------------------------------------------
    def refresh(self, batch_id: str) -> tuple[Any, Any] | None:
        """The batch and its run, its status up to date (blocking)."""
        return self.store.refresh(batch_id, lambda file_id: keys_of(self.input_lines(file_id)))

    async def create(self, body: BatchIn) -> tuple[Any, Any]:
        """Create a batch (failed at once when its input file has problems)."""
        dialect = endpoint_dialect(body.endpoint)
        if dialect is None:
            raise openai_error(
                400,
                f"endpoint {body.endpoint!r} is not supported: a batch may run "
                f"{', '.join(sorted(BATCH_ENDPOINTS))}",
                param="endpoint",
            )
        window = _WINDOWS.get(body.completion_window)
        if window is None:
            raise openai_error(
                400,
                f"completion_window {body.completion_window!r} is not supported: use '24h'",
                param="completion_window",
            )
        metadata = dict(body.metadata or {})
        if len(metadata) > _METADATA_KEYS:
            raise openai_error(
                400, f"metadata has {len(metadata)} keys; at most 16", param="metadata"
            )
        file_row = await run_in_threadpool(self.store.file, body.input_file_id)
        if file_row is None:
            raise openai_error(
                404, f"No such File object: {body.input_file_id}", param="input_file_id"
            )
        if file_row.purpose != "batch" or file_row.upload_id is None:
            raise openai_error(
                400,
                f"the file {body.input_file_id} has purpose {file_row.purpose!r}; a batch's "
                "input file is uploaded with purpose 'batch'",
                param="input_file_id",
            )
        found = await run_in_threadpool(self._check, file_row, body.endpoint)
        now = _now()
        values: dict[str, Any] = {
            "id": new_id("batch_"),
            "input_file_id": file_row.id,
            "endpoint": body.endpoint,
            "completion_window": body.completion_window,
            "batch_metadata": body.metadata,
            "model": found.models[0] if found.models else None,
            "total": found.total,
            "created_at": now,
            "expires_at": now + window,
        }
        if found.errors:
            values.update(status="failed", errors=found.errors, failed_at=now)
            row = await run_in_threadpool(self.store.add_batch, values)
            return row, None
        target = await self._target(metadata, found.models[0], dialect.name, file_row.upload_id)

        def create() -> tuple[Any, Any]:
            run = self.runs.create(target.connector_id, target.stored, [], found.total)
            values.update(
                status="in_progress",
                run_id=run.id,
                connector_id=target.connector_id,
                in_progress_at=now,
            )
            return self.store.add_batch(values), run

        created = await run_in_threadpool(create)
        self.container.executor.wake()
        return created

    def _check(self, file_row: Any, endpoint: str) -> InputCheck:
        with open(self.input_path(file_row), "rb") as stream:
            return check_lines(stream, endpoint, max_lines=self.settings.batch_max_lines)

    async def _connector_id(self, metadata: dict[str, str], model: str) -> int:
        connectors = await run_in_threadpool(self.services.store.list)
        named = metadata.get("connector")
        if named is not None:
            chosen = [c for c in connectors if str(c.id) == named.strip() or c.name == named]
            if not chosen:
                raise openai_error(
                    400,
                    f"metadata.connector {named!r} names no saved connector (give a "
                    "connector's id or name)",
                    param="metadata",
                )
            if len(chosen) > 1:
                raise openai_error(
                    400,
                    f"metadata.connector {named!r} names {len(chosen)} saved connectors "
                    f"(ids {', '.join(str(c.id) for c in chosen)}); give its id",
                    param="metadata",
                )
            return chosen[0].id
        chosen = [c for c in connectors if _model_of(c.configuration) == model]
        if len(chosen) == 1:
            return chosen[0].id
        if not chosen:
            raise openai_error(
                400,
                f"no saved connector's request_format has the model {model!r} of the "
                "batch's lines: name the connector with metadata.connector (its id or name)",
                param="metadata",
            )
        raise openai_error(
            400,
            f"{len(chosen)} saved connectors have the model {model!r} "
            f"({', '.join(f'{c.id} {c.name!r}' for c in chosen)}): name one with "
            "metadata.connector (its id or name)",
            param="metadata",
        )

    async def _target(
        self, metadata: dict[str, str], model: str, dialect: str, upload_id: str
    ) -> _Target:
        connector_id = await self._connector_id(metadata, model)
        config = await self.services.usable_saved(connector_id)
        if config.dialect.name != dialect:
            raise openai_error(
                400,
                f"the connector {connector_id} speaks {config.dialect.label}, not this "
                "batch's endpoint; choose a connector whose URL is that endpoint",
                param="endpoint",
            )
        options: dict[str, Any] = {
            "concurrency": _number(metadata, "concurrency", int),
            "max_cost": _number(metadata, "max_cost", float),
            "max_tokens": _number(metadata, "max_tokens", int),
            "rate": metadata.get("rate"),
            "prices": metadata.get("prices"),
        }
        given = {name: value for name, value in options.items() if value is not None}
        stored = StoredRun(input={"upload_id": upload_id}, result_lines=OPENAI_LINES, **given)
        try:
            stored.run_spec(config)
        except OpenAICompatError as exc:
            raise openai_error(400, f"metadata: {exc}", param="metadata") from None
        return _Target(connector_id, stored)


async def batch_service(request: Request) -> BatchService:
    """The application's `BatchService` (made at its first use)."""
    service: BatchService | None = getattr(request.app.state, "batch_service", None)
    if service is None:
        service = BatchService(await container_of(request))
        request.app.state.batch_service = service
    return service
