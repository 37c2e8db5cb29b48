"""Where a run's rows come from: an uploaded file (a database query comes later)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..batch.readers import RowSource
from ..errors import ConfigurationError, OpenAICompatError
from .run_store import RunStore
from .uploads import upload_path

__all__ = ["RunInputError", "open_input"]


class RunInputError(OpenAICompatError):
    """The run's input cannot be read (the upload was removed, the file is damaged)."""


def open_input(spec: dict[str, Any], data_dir: Path, store: RunStore) -> RowSource:
    """The rows of the run's ``input``, streamed. Blocking: call it in a worker thread."""
    upload_id = spec.get("upload_id")
    if not isinstance(upload_id, str):
        raise RunInputError("the run's input has no upload_id")
    row = store.upload(upload_id)
    if row is None:
        raise RunInputError(f"the upload {upload_id} is gone; upload the file again")
    path = upload_path(data_dir, row.id, row.format, row.compressed)
    try:
        return RowSource(path)
    except ConfigurationError as exc:
        shown = exc.message.replace(str(path), row.filename)
        raise RunInputError(f"the upload {upload_id} cannot be read: {shown}") from None
