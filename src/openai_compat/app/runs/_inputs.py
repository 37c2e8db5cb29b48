"""Where a run's rows come from: an uploaded file, or a database query.

A database input's URL may hold a password: the run keeps it encrypted with the
application's key (as connector secrets are), and shows and stores it elsewhere only with
the password hidden. The rows come from the batch core's `database_rows` (a server-side
cursor), as ``openai-compat batch --input <url> --query ...`` reads them.

Such a URL comes from whoever holds the application's token, so it never reaches the
application's own secrets: ``ENV["NAME"]`` is refused in it (never read from the server's
environment), and a database that holds an application's tables (its encrypted keys) is
refused as an input, however its URL is spelled: that is checked on the connection itself,
before the query runs. Every connection is judged by the address policy when it is made
(`egress.DatabaseGuard`: every host the driver would try, pinned to the addresses judged),
and has time limits: a server that accepts and never answers fails a preview in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...batch import database_rows
from ...batch.sources import RowSource
from ...batch.sql_url import (
    Connecting,
    failure_text,
    open_database,
    parse_database_url,
    shown_url,
)
from ...errors import ConfigurationError, OpenAICompatError
from ..egress import AddressPolicy, DatabaseGuard
from ..secrets import KeyCipher
from .store import RunStore
from .stored import StoredRun
from .uploads import SAMPLE_ROWS, upload_path

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "PREVIEW_CONNECT_TIMEOUT_S",
    "PREVIEW_STATEMENT_TIMEOUT_S",
    "DatabaseProbe",
    "RunInputError",
    "database_host",
    "open_input",
    "probe_database",
    "refuse_application_database",
]

# A column only an application's database has: where connectors' keys are kept encrypted.
_APPLICATION_MARK = """
SELECT 1 FROM information_schema.columns
WHERE table_name = 'connectors' AND column_name = 'secrets_encrypted'
"""

# A preview is answered while someone waits: a server that accepts and never answers fails
# it in seconds (a statement, on a server that answers, may take longer).
PREVIEW_CONNECT_TIMEOUT_S = 10
PREVIEW_STATEMENT_TIMEOUT_S = 15
# A run's query may be a long warehouse query: only its connections are limited.
_RUN_CONNECT_TIMEOUT_S = 30

# The fields of a database input's ConfigurationError, as the API names them.
_FIELDS = {"input": "input.database", "query": "input.query", "param": "input.params"}


class RunInputError(OpenAICompatError):
    """The run's input cannot be read (the upload was removed, the database refuses)."""


@dataclass(frozen=True)
class DatabaseProbe:
    """A database input, checked: the URL as shown, its columns and first rows (and a row
    count: 0 when it has none, else None: a query is not run twice to count it)."""

    shown: str
    host: str | None
    columns: list[str] | None
    sample: list[dict[str, Any]]
    rows_estimate: int | None


def api_field(exc: ConfigurationError) -> str:
    """The API's field for a database input's `ConfigurationError`."""
    return _FIELDS.get(exc.field or "input", "input.database")


def database_host(url: str) -> str | None:
    """The host a database URL connects to (checked against the address policy before any
    connection). ``ConfigurationError`` for a URL that cannot be read, or a SQLite file."""
    parsed = parse_database_url(url, "input", environment=False)
    if parsed.get_backend_name() == "sqlite":
        raise ConfigurationError(
            "a SQLite file cannot be a run's input: it would read a file on the application's "
            "machine; upload the rows as a file, or use a database server",
            field="input",
        )
    host: str | None = parsed.host
    return host


def _preview_connecting(guard: DatabaseGuard) -> Connecting:
    """How a preview's connections are made: judged by ``guard``, with a preview's limits."""
    return Connecting(guard, PREVIEW_CONNECT_TIMEOUT_S, PREVIEW_STATEMENT_TIMEOUT_S)


def refuse_application_database(url: URL, connecting: Connecting) -> None:
    """``ConfigurationError`` when ``url`` connects to an application's database (this
    one's, or another instance's): asked of the database itself, so that no spelling of its
    URL (another host name, port form or scheme) gets through. Blocking."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    engine = open_database(url, "input", connecting=connecting)
    try:
        with engine.connect() as connection:
            marked = connection.execute(text(_APPLICATION_MARK)).first() is not None
    except SQLAlchemyError as exc:
        # Unchecked is refused: the check is what keeps the keys out of reach.
        raise ConfigurationError(
            f"cannot check that {shown_url(url)} is not the application's own database "
            f"(its information_schema cannot be read: {failure_text(exc, url)}); "
            "use a database server whose information_schema the user can read",
            field="input",
        ) from None
    finally:
        engine.dispose()
    if marked:
        raise ConfigurationError(
            "is the application's own database (it holds the connectors' encrypted keys), "
            "which is never a run's input; give the database that holds your rows",
            field="input",
        )


def probe_database(
    url: str, query: str, params: dict[str, Any] | None, guard: DatabaseGuard
) -> DatabaseProbe:
    """Judge every host of the URL, connect, run the query for its first rows.
    ``ConfigurationError`` (`egress.EgressRefused` for a refused host) when the URL, the
    query or its parameters are wrong. Blocking: call it in a worker thread."""
    host = database_host(url)
    parsed = parse_database_url(url, "input", environment=False)
    guard.check_url(parsed)
    connecting = _preview_connecting(guard)
    refuse_application_database(parsed, connecting)
    rows = database_rows(url, query, params=params, environment=False, connecting=connecting)
    sample: list[dict[str, Any]] = []
    columns: dict[str, None] = {}  # in the order first seen; linear in the names
    for row in rows:
        columns.update(dict.fromkeys(row))
        sample.append(row)
        if len(sample) >= SAMPLE_ROWS:
            break
    return DatabaseProbe(
        shown=shown_url(parsed),
        host=host,
        columns=list(columns) if sample else None,
        sample=sample,
        # A query is not counted (that would run it twice: the batch core's choice too);
        # the run's total is exact once it has read every row.
        rows_estimate=None if sample else 0,
    )


def open_input(
    stored: StoredRun,
    data_dir: Path,
    store: RunStore,
    cipher: KeyCipher,
    guard: DatabaseGuard | None = None,
) -> Any:
    """The rows of the run's ``input``, streamed; a database's every connection judged by
    ``guard`` (the default address policy when None). Blocking: call it in a worker thread."""
    given = stored.input
    if "database" in given:
        return _database(stored, cipher, guard or DatabaseGuard(AddressPolicy()))
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


def _database(stored: StoredRun, cipher: KeyCipher, guard: DatabaseGuard) -> Any:
    given = stored.input
    try:
        if stored.database_url_encrypted is None:
            raise ValueError("no database URL")
        url = cipher.decrypt(stored.database_url_encrypted)
    except ValueError:
        raise RunInputError(
            "the run's database URL cannot be decrypted (the application's secret key "
            "changed); create the run again"
        ) from None
    connecting = Connecting(guard, _RUN_CONNECT_TIMEOUT_S)
    try:
        parsed = parse_database_url(url, "input", environment=False)
        guard.check_url(parsed)
        refuse_application_database(parsed, connecting)
        return database_rows(
            url,
            given.get("query"),
            params=given.get("params"),
            environment=False,
            connecting=connecting,
        )
    except ConfigurationError as exc:
        raise RunInputError(f"the database input cannot be read: {exc.reason}") from None
