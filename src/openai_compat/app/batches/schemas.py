"""The OpenAPI document's models of the Files and Batches API (OpenAI's own shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "BatchListOut",
    "BatchOut",
    "FileDeletedOut",
    "FileListOut",
    "FileOut",
    "OpenAIErrorOut",
    "openai_responses",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FileOut(_Open):
    """OpenAI's file object."""

    id: str
    object: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str


class FileListOut(_Open):
    """A page of files."""

    object: str
    data: list[FileOut]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeletedOut(_Open):
    """A file deleted."""

    id: str
    object: str
    deleted: bool


class _Counts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchOut(_Open):
    """OpenAI's batch object."""

    id: str
    object: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: str
    created_at: int
    output_file_id: str | None
    error_file_id: str | None
    errors: dict[str, Any] | None
    request_counts: _Counts
    metadata: dict[str, str] | None


class BatchListOut(_Open):
    """A page of batches."""

    object: str
    data: list[BatchOut]
    first_id: str | None
    last_id: str | None
    has_more: bool


class _ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorOut(BaseModel):
    """OpenAI's error object."""

    error: _ErrorBody


def openai_responses(*statuses: int | str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error statuses in OpenAI's shape (``"4XX"``: any other
    client error; declared, FastAPI adds no 422 of its own, which ``/v1`` answers as 400)."""
    words = {
        400: "the request or its body is wrong",
        401: "no application token (the API key) or a wrong one",
        404: "there is no such file or batch",
        409: "the file or batch is not in a state that allows this",
        413: "the file is larger than the cap",
        "4XX": "any other error of the request",
    }
    return {status: {"model": OpenAIErrorOut, "description": words[status]} for status in statuses}
