"""Where a run's rows come from: an uploaded file, or a database query.

A database input's URL may hold a password: the run keeps it encrypted with the
application's key (as connector secrets are), and shows and stores it elsewhere only with
the password hidden. The rows come from the batch core's `database_rows` (a server-side
cursor), as ``openai-compat batch --input <url> --query ...`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..batch import database_rows
from ..batch._sql_url import parse_database_url, shown_url
from ..batch.readers import RowSource
from ..errors import ConfigurationError, OpenAICompatError
from .credentials import KeyCipher
from .run_store import RunStore
from .uploads import SAMPLE_ROWS, upload_path

__all__ = ["DatabaseProbe", "RunInputError", "open_input", "probe_database"]

# The fields of a database input's ConfigurationError, as the API names them.
_FIELDS = {"input": "input.database", "query": "input.query", "param": "input.params"}


class RunInputError(OpenAICompatError):
    """The run's input cannot be read (the upload was removed, the database refuses)."""


@dataclass(frozen=True)
class DatabaseProbe:
    """A database input, checked: the URL as shown, its columns, first rows and count."""

    shown: str
    host: str | None
    columns: list[str] | None
    sample: list[dict[str, Any]]
    rows_estimate: int | None


def api_field(exc: ConfigurationError) -> str:
    """The API's field for a database input's `ConfigurationError`."""
    return _FIELDS.get(exc.field or "input", "input.database")


def probe_database(url: str, query: str, params: dict[str, Any] | None) -> DatabaseProbe:
    """Connect, run the query for its first rows, count them. ``ConfigurationError`` when
    the URL, the query or its parameters are wrong. Blocking: call it in a worker thread."""
    parsed = parse_database_url(url, "input")
    if parsed.get_backend_name() == "sqlite":
        raise ConfigurationError(
            "a SQLite file cannot be a run's input: it would read a file on the application's "
            "machine; upload the rows as a file, or use a database server",
            field="input",
        )
    rows = database_rows(url, query, params=params)
    sample: list[dict[str, Any]] = []
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
        sample.append(row)
        if len(sample) >= SAMPLE_ROWS:
            break
    return DatabaseProbe(
        shown=shown_url(parsed),
        host=parsed.host,
        columns=columns if sample else None,
        sample=sample,
        rows_estimate=database_rows(url, query, params=params).count() if sample else 0,
    )


def open_input(spec: dict[str, Any], data_dir: Path, store: RunStore, cipher: KeyCipher) -> Any:
    """The rows of the run's ``input``, streamed. Blocking: call it in a worker thread."""
    given = spec.get("input") or {}
    if "database" in given:
        return _database(spec, cipher)
    upload_id = given.get("upload_id")
    if not isinstance(upload_id, str):
        raise RunInputError("the run's input has no upload_id")
    row = store.upload(upload_id)
    if row is None:
        raise RunInputError(f"the upload {upload_id} is gone; upload the file again")
    path = upload_path(data_dir, row.id, row.format, row.compressed)
    try:
        return RowSource(path)
    except ConfigurationError as exc:
        shown = exc.reason.replace(str(path), row.filename)
        raise RunInputError(f"the upload {upload_id} cannot be read: {shown}") from None


def _database(spec: dict[str, Any], cipher: KeyCipher) -> Any:
    given = spec["input"]
    try:
        url = cipher.decrypt(spec["database_url_encrypted"])
    except (KeyError, ValueError):
        raise RunInputError(
            "the run's database URL cannot be decrypted (the application's secret key "
            "changed); create the run again"
        ) from None
    try:
        return database_rows(url, given.get("query"), params=given.get("params"))
    except ConfigurationError as exc:
        raise RunInputError(f"the database input cannot be read: {exc.reason}") from None
