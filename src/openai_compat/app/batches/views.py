"""File and batch objects exactly as OpenAI's API writes them (times in Unix seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["batch_object", "file_object", "list_object"]

_EVENTS = (
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
)


def _unix(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite: written in UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def file_object(row: Any) -> dict[str, Any]:
    """OpenAI's file object of a file row."""
    return {
        "id": row.id,
        "object": "file",
        "bytes": int(row.bytes),
        "created_at": _unix(row.created_at),
        "filename": row.filename,
        "purpose": row.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def batch_object(row: Any, run: Any | None) -> dict[str, Any]:
    """OpenAI's batch object of a batch row and its run's figures (None: it has no run)."""
    ok = int(run.ok) if run is not None else 0
    failed = int(run.failed) if run is not None else 0
    errors = row.errors
    data: dict[str, Any] = {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "model": row.model,
        "errors": {"object": "list", "data": list(errors)} if errors else None,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "created_at": _unix(row.created_at),
        "expires_at": _unix(row.expires_at),
    }
    for event in _EVENTS:
        data[f"{event}_at"] = _unix(getattr(row, f"{event}_at"))
    data["request_counts"] = {"total": int(row.total), "completed": ok, "failed": failed}
    data["usage"] = {
        "input_tokens": int(run.prompt_tokens) if run is not None else 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": int(run.completion_tokens) if run is not None else 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": int(run.total_tokens) if run is not None else 0,
    }
    data["metadata"] = row.batch_metadata
    return data


def list_object(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's list object of a page."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
