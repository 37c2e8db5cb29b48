"""Input rows from a database: a query with bound parameters, or a whole table, streamed.

`DatabaseRows` runs the query on a server-side cursor (SQLAlchemy's ``stream_results`` with
``yield_per``): the driver hands over a few hundred rows at a time, so memory stays flat
however many rows the query returns (PostgreSQL: a named cursor; SQLite steps its cursor
row by row). The row engine reads it on a thread, as it reads files. Values the payload
cannot hold as JSON (dates, decimals, UUIDs, bytes) become JSON values on the way.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .sql_url import (
    Connecting,
    DatabaseError,
    failure_text,
    open_database,
    parse_database_url,
    shown_url,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql.expression import Executable

__all__ = ["DEFAULT_FETCH_ROWS", "DatabaseRows", "database_rows", "split_table_name"]

# Rows fetched from the server at a time (the cursor's ``yield_per``).
DEFAULT_FETCH_ROWS = 1000
_PLAIN = (str, int, float, bool, type(None))


def split_table_name(name: str, field: str) -> tuple[str | None, str]:
    """``"schema.table"`` or ``"table"`` as (schema, table).

    >>> split_table_name("analytics.tickets", "table")
    ('analytics', 'tickets')
    """
    schema, _, table = name.strip().rpartition(".")
    if not table:
        raise ConfigurationError(f"{name!r} is not a table name", field=field)
    return schema or None, table


def _json_value(value: Any) -> Any:
    """A database value as a JSON value (a date as ISO text, a decimal as a number)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, uuid.UUID | dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


class DatabaseRows:
    """The rows of a database query (or table) as dicts, streamed; iterate it once.

    The URL is resolved and connected to, the query's parameters checked, and a table's
    existence confirmed when it is made, so a mistake is a `ConfigurationError` before
    anything is sent. ``fetch_rows``: rows fetched from the server at a time.
    ``connecting``: a hook asked at each connection, and time limits (`sql_url.Connecting`).
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        query: str | None = None,
        *,
        table: str | None = None,
        params: Mapping[str, Any] | None = None,
        fetch_rows: int = DEFAULT_FETCH_ROWS,
        environment: bool = True,
        connecting: Connecting | None = None,
    ) -> None:
        if (query is None) == (table is None):
            raise ConfigurationError(
                "a database input needs --query 'SELECT ...' or --table NAME (one of them)",
                field="input",
            )
        if fetch_rows < 1:
            raise ConfigurationError(f"must be 1 or more, got {fetch_rows}", field="fetch_rows")
        self.url = parse_database_url(os.fspath(url), "input", environment=environment)
        self.shown = shown_url(self.url)
        self.query = query
        self.table = table
        self.params = dict(params or {})
        self.fetch_rows = fetch_rows
        self.connecting = connecting
        self._statement = self._build_statement()
        self._engine: Engine | None = open_database(self.url, "input", connecting=connecting)
        if table is not None:
            self._check_table(table)

    @property
    def engine(self) -> Engine | None:
        """The engine the rows are read with; None once they are being read."""
        return self._engine

    def _build_statement(self) -> Executable:
        from sqlalchemy import literal_column, select, table, text

        if self.query is not None:
            if not self.query.strip():
                raise ConfigurationError("is empty; give a SELECT statement", field="query")
            statement = text(self.query)
            wanted = set(statement._bindparams)
            missing = sorted(wanted - set(self.params))
            unused = sorted(set(self.params) - wanted)
            if missing:
                raise ConfigurationError(
                    f"the query uses {', '.join(':' + n for n in missing)}: give each a value "
                    f"with --param {missing[0]}=VALUE",
                    field="query",
                )
            if unused:
                raise ConfigurationError(
                    f"--param {', '.join(unused)}: the query has no "
                    f"{', '.join(':' + n for n in unused)} (parameters are written :name)",
                    field="param",
                )
            return statement.bindparams(**self.params)
        if self.params:
            raise ConfigurationError(
                "--param binds the parameters of --query; --table reads the whole table",
                field="param",
            )
        assert self.table is not None
        schema, name = split_table_name(self.table, "table")
        return select(literal_column("*")).select_from(table(name, schema=schema))

    def _check_table(self, name: str) -> None:
        from sqlalchemy import inspect
        from sqlalchemy.exc import SQLAlchemyError

        assert self._engine is not None
        schema, table = split_table_name(name, "table")
        try:
            inspector = inspect(self._engine)
            if inspector.has_table(table, schema=schema):
                return
            tables = inspector.get_table_names(schema=schema)
        except SQLAlchemyError as exc:
            raise ConfigurationError(
                f"cannot read the tables of {self.shown}: {failure_text(exc, self.url)}",
                field="table",
            ) from None
        known = ", ".join(tables[:20]) or "none"
        raise ConfigurationError(
            f"{self.shown} has no table {name!r} (its tables: {known})", field="table"
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._engine
        if engine is None:
            raise RuntimeError("the rows of a DatabaseRows are read once")
        self._engine = None
        started = False
        try:
            with engine.connect() as connection:
                # yield_per implies stream_results (a server-side cursor). The partition size
                # is given too: partitions() without one, with both options set, buffers the
                # whole result (seen with SQLAlchemy 2.0 and psycopg's server cursor).
                result = connection.execution_options(yield_per=self.fetch_rows).execute(
                    self._statement
                )
                started = True
                columns = list(result.keys())
                for partition in result.partitions(self.fetch_rows):
                    for row in partition:
                        yield {c: _json_value(v) for c, v in zip(columns, row, strict=True)}
        except SQLAlchemyError as exc:
            what = "the query" if self.query is not None else f"the table {self.table!r}"
            message = f"{what} failed on {self.shown}: {failure_text(exc, self.url)}"
            if not started:  # nothing read, nothing sent: the query itself is wrong
                field = "query" if self.query is not None else "table"
                raise ConfigurationError(message, field=field) from None
            raise DatabaseError(message) from None
        finally:
            engine.dispose()

    def count(self) -> int | None:
        """The number of rows of a ``table`` (for the progress ETA); None for a query.

        A query is not counted: counting it would run it twice, and a warehouse query may be
        the expensive part of the run.
        """
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        if self.query is not None:
            return None
        engine = open_database(self.url, "input", connecting=self.connecting)
        try:
            inner = self._statement.subquery("rows")  # type: ignore[attr-defined]
            with engine.connect() as connection:
                value = connection.execute(select(func.count()).select_from(inner)).scalar()
            return int(value) if value is not None else None
        except SQLAlchemyError:
            return None
        finally:
            engine.dispose()

    def __repr__(self) -> str:
        what = f"query={self.query!r}" if self.query is not None else f"table={self.table!r}"
        return f"DatabaseRows({self.shown!r}, {what})"


def database_rows(
    url: str,
    query: str | None = None,
    *,
    table: str | None = None,
    params: Mapping[str, Any] | None = None,
    fetch_rows: int = DEFAULT_FETCH_ROWS,
    environment: bool = True,
    connecting: Connecting | None = None,
) -> DatabaseRows:
    """The rows of a database query (or of a whole ``table``), streamed as dicts.

    ``url``: any SQLAlchemy URL (``sqlite:///rows.db``, ``postgresql://user@host/db``; a
    password is never shown in messages; ``ENV["NAME"]`` is read from the environment, whole
    or in a part). ``query``: a SQL statement whose ``:name`` parameters are bound from
    ``params`` (never formatted into the text). Rows come from a server-side cursor,
    ``fetch_rows`` at a time, so memory stays flat. Iterate the result once (in any thread);
    `run_batch` takes it as its rows and reads it on a thread. ``environment=False``: an
    ``ENV["NAME"]`` in ``url`` is refused instead of read (for URLs from other people).
    ``connecting``: a hook asked at every connection, and time limits (`sql_url.Connecting`).

    A URL that cannot be connected to, a missing table, or a parameter without a value is a
    `ConfigurationError` here, before any row is read.

    >>> import sqlite3, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "doc.db")
    >>> with sqlite3.connect(path) as db:
    ...     _ = db.execute("CREATE TABLE t (id INTEGER, body TEXT, day TEXT)")
    ...     _ = db.execute("INSERT INTO t VALUES (1, 'hi', '2026-12-01'), (2, 'yo', '2026-12-02')")
    >>> rows = database_rows(f"sqlite:///{path}", "SELECT id, body FROM t WHERE day = :day",
    ...                      params={"day": "2026-12-01"})
    >>> list(rows)
    [{'id': 1, 'body': 'hi'}]
    """
    return DatabaseRows(
        url,
        query,
        table=table,
        params=params,
        fetch_rows=fetch_rows,
        environment=environment,
        connecting=connecting,
    )
