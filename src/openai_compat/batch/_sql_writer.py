"""Results into a database table, exactly once by transaction; the table is the checkpoint.

The table has the key as its primary key (text: a row without a key gets ``row:<n>``; a key
no database text can hold is stored escaped, see `stored_key`), one column per output, then
the flat result columns of `results.flat_columns` (the columns of the Ray engine's rows),
typed by their kind. It is created when missing; an existing table
with other columns, or another primary key, is a `ConfigurationError` before anything is sent.

Results are written in small batches, each in one transaction, as an upsert on the key
(``INSERT ... ON CONFLICT DO UPDATE`` on SQLite and PostgreSQL, ``ON DUPLICATE KEY UPDATE``
on MySQL/MariaDB, delete-then-insert in one transaction on any other dialect). A row is in
the table whole or not at all, whenever the process dies; a resumed run reads the keys the
table holds and runs the rest, so every key ends up there exactly once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import operator
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ._sql_reader import split_table_name
from .checkpoint import MODES
from .keys import key_token, read_key, stored_key
from .results import BatchResult, flat_columns
from .sql_url import DatabaseError, failure_text, open_database, parse_database_url, shown_url

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Connection, Engine

__all__ = ["TableCheckpoint", "TableOutput", "TableWriter"]

# A batch is committed when it has this many rows, or its first row waited this long.
BATCH_ROWS = 200
BATCH_DELAY_S = 0.2
_KEY_READ_ROWS = 10_000
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def _clean_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and no UTF-8 driver can encode a lone surrogate: both
    # become U+FFFD, so one odd answer never fails a whole transaction.
    return value if value.isascii() and "\x00" not in value else _NOT_TEXT.sub("\ufffd", value)


@dataclass(slots=True)
class TableCheckpoint:
    """What the table already holds: the keys to skip, and the counts for the notices."""

    done: set[str] = field(default_factory=set)
    ok: int = 0
    failed: int = 0
    removed_failed: int = 0


class TableOutput:
    """One output table: checked or created, read back for a resume, written by upsert."""

    def __init__(
        self,
        url: str | os.PathLike[str],
        table: str,
        *,
        key_column: str | None,
        output_names: Sequence[str],
        include_response: bool = False,
        types: Mapping[str, Any] | None = None,
    ) -> None:
        self.url: URL = parse_database_url(os.fspath(url), "output")
        # With a schema: the outputs' types (`RunSpec.output_types`); lists, structs and
        # the rest are JSON columns holding JSON text.
        self.types = dict(types or {})
        self.shown = shown_url(self.url)
        self.name = table
        self.schema, self.table_name = split_table_name(table, "output_table")
        self.key_column = key_column or "key"
        self.columns = [
            (self.key_column, "text"),
            *flat_columns(output_names, include_response=include_response, types=self.types),
        ]
        self._check_names()
        self.engine: Engine = open_database(self.url, "output", wal=True)
        # Vectors are arrays where the database has them, JSON text elsewhere.
        self._arrays = self.engine.dialect.name == "postgresql"
        self._check_identifier_lengths()
        self.table = self._table()
        self._upsert = self._upsert_statement()
        self._upsert_sql = self._driver_upsert()
        self._in_order = operator.itemgetter(*(c.name for c in self.table.columns))

    # -- the schema --------------------------------------------------------------------------
    def _check_names(self) -> None:
        names = [name for name, _ in self.columns]
        clashes = sorted({name for name in names if names.count(name) > 1})
        if clashes:
            raise ConfigurationError(
                f"the result column(s) {', '.join(map(repr, clashes))} of the table would "
                "appear twice (the key column, an output and the result columns share one "
                'table): rename the outputs ({"name": ..., "as": ...})',
                field="outputs",
            )

    def _check_identifier_lengths(self) -> None:
        limit = self.engine.dialect.max_identifier_length
        long = [name for name, _ in self.columns if len(name) > limit]
        if long:
            raise ConfigurationError(
                f"the column name(s) {', '.join(map(repr, long))} are longer than the "
                f"{limit} characters {self.engine.dialect.name} allows: give the outputs "
                'shorter names ({"name": ..., "as": "summary"})',
                field="outputs",
            )

    def _table(self) -> Table:
        from sqlalchemy import (
            JSON,
            REAL,
            BigInteger,
            Boolean,
            Column,
            Float,
            MetaData,
            String,
            Table,
            Text,
        )
        from sqlalchemy.dialects.postgresql import ARRAY, JSONB

        # JSONB on PostgreSQL: the database can index and reach into the values.
        as_json = JSON().with_variant(JSONB(), "postgresql")
        kinds: dict[str, Any] = {
            "text": Text(),
            "integer": BigInteger(),
            "decimal": Float(precision=53),
            # A vector: real[] in PostgreSQL (pgvector casts it with ::vector), a JSON
            # array as text elsewhere.
            "vector": Text().with_variant(ARRAY(REAL()), "postgresql"),
            "boolean": Boolean(),
            "list": as_json,
            "struct": as_json,
            "json": as_json,
        }
        # MySQL cannot index TEXT without a length: the key is a VARCHAR there.
        key_type = Text().with_variant(String(255), "mysql", "mariadb")
        columns = [Column(self.key_column, key_type, primary_key=True)]
        columns += [Column(name, kinds[kind]) for name, kind in self.columns[1:]]
        return Table(self.table_name, MetaData(), *columns, schema=self.schema)

    def _upsert_statement(self) -> Any:
        # Only the dialect in use is imported: each costs as much as a few thousand rows.
        dialect = self.engine.dialect.name
        others = [c.name for c in self.table.columns if c.name != self.key_column]
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
            statement = insert(self.table)
            return statement.on_conflict_do_update(
                index_elements=[self.key_column],
                set_={name: statement.excluded[name] for name in others},
            )
        if dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            on_mysql = mysql.insert(self.table)
            return on_mysql.on_duplicate_key_update(
                {name: on_mysql.inserted[name] for name in others}
            )
        return None  # the generic path: delete the batch's keys, insert it, in one transaction

    def _driver_upsert(self) -> str | None:
        """The SQLite / PostgreSQL upsert as the driver's own SQL, positional parameters.

        Sent with the driver's ``executemany``: SQLAlchemy's per-row parameter handling
        costs more than the commit itself (these columns need no conversion).
        """
        dialect = self.engine.dialect
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        names = [c.name for c in self.table.columns]
        if dialect.name not in ("sqlite", "postgresql") or marker is None:
            return None
        if marker == "%s" and any("%" in n for n in [*names, self.table_name]):
            return None  # a % would need escaping: the statement above does it
        quote = dialect.identifier_preparer.quote
        table = dialect.identifier_preparer.format_table(self.table)
        key = quote(self.key_column)
        updates = ", ".join(
            f"{quote(n)} = excluded.{quote(n)}" for n in names if n != self.key_column
        )
        return (
            f"INSERT INTO {table} ({', '.join(map(quote, names))}) "
            f"VALUES ({', '.join(marker for _ in names)}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )

    def _shown_columns(self, names: Sequence[str]) -> str:
        return ", ".join(names) or "none"

    def _check_existing(self, connection: Connection) -> None:
        from sqlalchemy import inspect

        inspector = inspect(connection)
        have = [c["name"] for c in inspector.get_columns(self.table_name, schema=self.schema)]
        want = [name for name, _ in self.columns]
        missing = [name for name in want if name not in have]
        extra = [name for name in have if name not in want]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks {self._shown_columns(missing)}")
            if extra:
                parts.append(f"has {self._shown_columns(extra)} besides")
            raise ConfigurationError(
                f"the table {self.name!r} of {self.shown} exists with other columns than this "
                f"run writes: it {' and '.join(parts)}; the run writes "
                f"{self._shown_columns(want)}. Choose another --output-table, or use the same "
                "--key, outputs and --include-response as the run that made it",
                field="output_table",
            )
        primary = inspector.get_pk_constraint(self.table_name, schema=self.schema)
        if list(primary.get("constrained_columns") or []) != [self.key_column]:
            raise ConfigurationError(
                f"the table {self.name!r} of {self.shown} does not have {self.key_column!r} as "
                "its primary key, which exactly-once writing needs: choose another "
                "--output-table (it is created with the key as primary key)",
                field="output_table",
            )

    # -- preparing ---------------------------------------------------------------------------
    def prepare(self, mode: str) -> TableCheckpoint:
        """Create or check the table and get it ready per ``mode`` (one of `checkpoint.MODES`).

        ``new`` refuses a table that has rows; ``overwrite`` empties it; ``resume`` skips
        the keys it holds; ``retry-failed`` skips only those whose ``error_message`` is
        empty (the failed rows are run again and overwritten by the upsert).
        """
        from sqlalchemy import func, inspect, select
        from sqlalchemy.exc import SQLAlchemyError

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        state = TableCheckpoint()
        try:
            with self.engine.begin() as connection:
                if not inspect(connection).has_table(self.table_name, schema=self.schema):
                    self.table.create(connection)
                    return state
                self._check_existing(connection)
                rows = connection.execute(select(func.count()).select_from(self.table)).scalar()
                if not rows:
                    return state
                if mode == "new":
                    raise ConfigurationError(
                        f"the table {self.name!r} of {self.shown} already has {rows} results: "
                        "pass --resume to finish that run, --retry-failed to also run its "
                        "failed rows again, or --overwrite to start over",
                        field="output_table",
                    )
                if mode == "overwrite":
                    connection.execute(self.table.delete())
                    return state
            for token, failed in self._written(self.engine):
                if failed:
                    state.failed += 1
                    if mode == "retry-failed":
                        continue
                else:
                    state.ok += 1
                state.done.add(token)
        except SQLAlchemyError as exc:
            raise ConfigurationError(
                f"cannot prepare the table {self.name!r} of {self.shown}: "
                f"{failure_text(exc, self.url)}",
                field="output_table",
            ) from None
        if mode == "retry-failed":
            state.removed_failed, state.failed = state.failed, 0
        return state

    def _written(self, engine: Engine) -> Iterator[tuple[str, bool]]:
        """Each key the table holds, and whether its row failed (streamed)."""
        from sqlalchemy import select

        key = self.table.c[self.key_column]
        failed = self.table.c["error_message"].is_not(None)
        with engine.connect() as connection:
            result = connection.execution_options(yield_per=_KEY_READ_ROWS).execute(
                select(key, failed)
            )
            for partition in result.partitions(_KEY_READ_ROWS):
                for token, is_failed in partition:
                    yield key_token(read_key(token)), bool(is_failed)

    # -- writing -----------------------------------------------------------------------------
    def row(
        self, result: BatchResult, output_names: Sequence[str], include_response: bool
    ) -> dict[str, Any]:
        """The table row of ``result``."""
        flat = result.to_flat(output_names, include_response=include_response, types=self.types)
        for name, column in self.types.items():
            value = flat.get(name)
            if column.kind in ("list", "struct") and value is not None:
                flat[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        row: dict[str, Any] = {self.key_column: stored_key(key_token(result.key))}
        for name, value in flat.items():
            if isinstance(value, list) and not self._arrays:
                value = json.dumps(value, separators=(",", ":"))
            row[name] = _clean_text(value) if isinstance(value, str) else value
        return row

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Upsert ``rows`` in one transaction (blocking: the writer runs it on its thread)."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as connection:
                if self._upsert_sql is not None:
                    connection.exec_driver_sql(self._upsert_sql, list(map(self._in_order, rows)))
                    return
                if self._upsert is not None:
                    connection.execute(self._upsert, rows)
                    return
                key = self.table.c[self.key_column]
                connection.execute(
                    self.table.delete().where(key.in_([r[self.key_column] for r in rows]))
                )
                connection.execute(self.table.insert(), rows)
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"writing {len(rows)} results into the table {self.name!r} of {self.shown} "
                f"failed: {failure_text(exc, self.url)}; the rows written before are kept: "
                "run again with --resume"
            ) from None

    def close(self) -> None:
        """Close the connections."""
        self.engine.dispose()


class TableWriter:
    """Batches results and commits each batch on a thread of its own (one at a time).

    A batch goes when it has `BATCH_ROWS` rows or its first row has waited `BATCH_DELAY_S`;
    the event loop never waits on the database unless the previous commit is still running
    when the next batch is due (back pressure). A failed commit raises `DatabaseError` at the
    next `write` or at `aclose`.
    """

    def __init__(
        self,
        output: TableOutput,
        output_names: Sequence[str],
        *,
        include_response: bool = False,
        batch_rows: int = BATCH_ROWS,
        batch_delay_s: float = BATCH_DELAY_S,
    ) -> None:
        self.output = output
        self._names = list(output_names)
        self._include_response = include_response
        self._batch_rows = batch_rows
        self._delay = batch_delay_s
        self._buffer: list[dict[str, Any]] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "batch-sql-writer")
        self._pending: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.written = 0

    async def write(self, result: BatchResult) -> None:
        """Add ``result`` to the current batch; commit the batch when it is due."""
        if not self._buffer:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._delay, self._flush_soon)
        self._buffer.append(self.output.row(result, self._names, self._include_response))
        if len(self._buffer) >= self._batch_rows:
            await self.flush()

    def _flush_soon(self) -> None:
        # The timer of a batch that filled slowly: commit it without waiting for a next row.
        self._timer = None
        if not self._buffer:
            return
        pending = self._pending
        if pending is not None and not pending.done():
            # The commit before is still running: look again shortly.
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._flush_soon)
            return
        if pending is not None and (pending.cancelled() or pending.exception() is not None):
            return  # the next write (or aclose) raises that failure
        self._start_commit()

    def _start_commit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._buffer = self._buffer, []
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(self._executor, self.output.write_rows, batch)
        self._pending.add_done_callback(lambda f: self._count(f, len(batch)))

    def _count(self, future: asyncio.Future[None], rows: int) -> None:
        if not future.cancelled() and future.exception() is None:
            self.written += rows

    async def _wait_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def flush(self) -> None:
        """Commit the current batch (after the one in flight, if any)."""
        await self._wait_pending()
        if self._buffer:
            self._start_commit()

    async def aclose(self) -> None:
        """Commit what is left and wait for it; then close the connections."""
        try:
            await self.flush()
            await self._wait_pending()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._executor.shutdown(wait=True)
            self.output.close()
