"""What the Files and Batches routes do: a file received, a batch created as a run.

A batch is created as OpenAI creates one: its endpoint, window, metadata and connector are
checked at once (400, OpenAI's error), and it is answered ``validating``. Its input file is
checked in the background (`validate`, by the executor's chores, `BatchKeeper`): a file with
problems makes the batch ``failed`` with OpenAI's ``errors`` list, as OpenAI does; a good
file becomes a run of the run engine on the batch's connector (``metadata.connector``, by id
or name, else the one connector whose ``request_format`` names the lines' model), whose
results are OpenAI's output lines, and the batch is ``in_progress``: it is durable, taken
over by another instance, and stores every ``custom_id`` exactly once.

The connector is chosen from the first line's model alone; when it cannot be chosen, the
whole file is checked at once, so that a file with problems still ends ``failed`` with its
``errors`` (its own problems come first), and a good file is the 400.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...errors import OpenAICompatError
from ..connectors import ConnectorServices
from ..dependencies import Container, container_of
from ..http import ApiError
from ..runs import RunStore
from ..runs.openai_lines import OPENAI_LINES
from ..runs.stored import StoredRun
from ..runs.uploads import upload_path
from .checks import InputCheck, check_lines, first_model
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
        """Create a batch: ``validating`` (its file is checked in the background)."""
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
        if not await run_in_threadpool(self.input_path(file_row).is_file):
            raise openai_error(
                400,
                f"the content of the file {file_row.id} was deleted (with its upload, through "
                "/api/v1): upload the file again",
                param="input_file_id",
            )
        connector_id = await self._connector_at_creation(metadata, file_row, body.endpoint)
        now = _now()
        values: dict[str, Any] = {
            "id": new_id("batch_"),
            "input_file_id": file_row.id,
            "endpoint": body.endpoint,
            "completion_window": body.completion_window,
            "batch_metadata": body.metadata,
            "model": None,
            "status": "validating",
            "connector_id": connector_id,
            "total": 0,
            "created_at": now,
            "expires_at": now + window,
        }
        row = await run_in_threadpool(self.store.add_batch, values)
        self.container.executor.wake()
        return row, None

    async def _connector_at_creation(
        self, metadata: dict[str, str], file_row: Any, endpoint: str
    ) -> int | None:
        """The batch's connector, chosen as it is created (400 when none can be); None when
        the file has problems its check will report."""
        model = await run_in_threadpool(self._first_model, file_row)
        try:
            if model is None and "connector" not in metadata:
                return None  # the first line names no model: the file's check says why
            connector_id = await self._connector_id(metadata, model)
            await self._stored_run(connector_id, metadata, endpoint, file_row.upload_id)
        except ApiError:
            found = await run_in_threadpool(self._check, file_row, endpoint)
            if found.errors:
                return None
            raise
        return connector_id

    def _first_model(self, file_row: Any) -> str | None:
        with open(self.input_path(file_row), "rb") as stream:
            return first_model(stream)

    async def validate(self, row: Any) -> bool:
        """Check a ``validating`` batch's file: ``failed`` with its errors, or ``in_progress``
        as a new run; True when a run was queued. A connector that cannot be used any more
        (deleted, changed) fails the batch with the reason."""
        file_row = await asyncio.to_thread(self.store.file, row.input_file_id)
        if file_row is None or file_row.upload_id is None:
            return await self._fail(
                row, "input_file_deleted", f"the input file {row.input_file_id} was deleted"
            )
        try:
            found = await asyncio.to_thread(self._check, file_row, row.endpoint)
        except FileNotFoundError:
            return await self._fail(
                row, "input_file_deleted", f"the content of {row.input_file_id} was deleted"
            )
        model = found.models[0] if found.models else None
        if found.errors:
            await asyncio.to_thread(
                self.store.fail_validation, row.id, found.errors, total=found.total, model=model
            )
            return False
        assert model is not None  # a file without problems names its one model
        metadata = dict(row.batch_metadata or {})
        try:
            connector_id = row.connector_id or await self._connector_id(metadata, model)
            stored = await self._stored_run(
                connector_id, metadata, row.endpoint, file_row.upload_id
            )
        except ApiError as exc:
            return await self._fail(row, "invalid_request", str(exc.body["message"]))
        run = await asyncio.to_thread(
            self.store.start,
            row.id,
            lambda connection: self.runs.create_in(
                connection, connector_id, stored, [], found.total
            ),
            connector_id=connector_id,
            total=found.total,
            model=model,
        )
        return run is not None

    async def _fail(self, row: Any, code: str, message: str) -> bool:
        error = {"code": code, "message": message, "param": None, "line": None}
        await asyncio.to_thread(self.store.fail_validation, row.id, [error])
        return False

    def _check(self, file_row: Any, endpoint: str) -> InputCheck:
        with open(self.input_path(file_row), "rb") as stream:
            return check_lines(stream, endpoint, max_lines=self.settings.batch_max_lines)

    async def _connector_id(self, metadata: dict[str, str], model: str | None) -> int:
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

    async def _stored_run(
        self, connector_id: int, metadata: dict[str, str], endpoint: str, upload_id: str
    ) -> StoredRun:
        """The run of a batch on the connector: 400 when the connector does not speak the
        batch's endpoint, or the metadata's run options do not fit it."""
        config = await self.services.usable_saved(connector_id)
        dialect = endpoint_dialect(endpoint)
        if dialect is None or config.dialect.name != dialect.name:
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
        return stored


async def batch_service(request: Request) -> BatchService:
    """The application's `BatchService` (made at its first use)."""
    service: BatchService | None = getattr(request.app.state, "batch_service", None)
    if service is None:
        service = BatchService(await container_of(request))
        request.app.state.batch_service = service
    return service
