"""A batch run into a database table: the table is the checkpoint (`sinks.table.TableResults`).

`arun_batch_to_table` is `arun_batch_to_file` with a table for the file: the table is
created or checked and read back per ``mode`` (its keys are the rows to skip), results go
in by batched upsert transactions, and the run is driven as a file's is (`run.drive`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Unpack

from ..config import SourceConfig
from ..errors import ConfigurationError
from ._options import BatchFileOptions, split_file_options
from ._sql_reader import DatabaseRows, split_table_name
from ._sql_writer import TableOutput
from .engine import BatchRun, Rows
from .results import BatchResult, BatchSummary
from .run import Notices, drive
from .sinks.table import TableResults

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["arun_batch_to_table"]


async def arun_batch_to_table(
    config: SourceConfig | dict[str, Any] | str,
    rows: Rows,
    output: str | os.PathLike[str],
    *,
    on_result: Callable[[BatchResult], None] | None = None,
    **options: Unpack[BatchFileOptions],
) -> BatchSummary:
    """Run a batch into the table ``output_table`` of the database ``output`` (a URL).

    The table is created when missing (the key as primary key, one column per output, then
    the flat result columns); ``mode`` is as for a file: ``new`` refuses a table with rows,
    ``overwrite`` empties it, ``resume`` runs the keys it lacks, ``retry-failed`` also the
    rows whose ``error_message`` is set. Results are committed in small upsert transactions,
    so after a crash at any moment a resumed run writes every key exactly once. The other
    options are `arun_batch_to_file`'s (``output_format`` does not apply).
    """
    file_options, row_options = split_file_options(options)
    table = file_options.get("output_table")
    if not table:
        raise ConfigurationError(
            "a database output needs a table: pass --output-table NAME (created when missing)",
            field="output_table",
        )
    if file_options.get("error_file"):
        raise ConfigurationError(
            "--error-file is for openai-batch output files; a table keeps failed rows with "
            "their error_message",
            field="error_file",
        )
    if file_options.get("output_format"):
        raise ConfigurationError(
            "--output-format is for files; a table holds one column per result field",
            field="output_format",
        )
    if row_options.get("include_input"):
        raise ConfigurationError(
            "--include-input is for file outputs; a table keeps the key: join it with the input",
            field="include_input",
        )
    notices = Notices()
    run = BatchRun(config, rows, on_notice=notices, **row_options)
    target = TableOutput(
        output,
        table,
        key_column=run.key,
        output_names=run.output_names,
        include_response=run.include_response,
        types=run.spec.output_types,
    )
    try:
        _refuse_output_over_input(run.rows, target)
    except BaseException:
        target.close()
        raise
    sink = TableResults(target, run.output_names, include_response=run.include_response)
    return await drive(run, sink, file_options, notices, shown=target.name, on_result=on_result)


def _refuse_output_over_input(rows: Any, target: TableOutput) -> None:
    """Refuse writing results into the very table the rows are read from.

    Judged by what the URLs lead to, not by how they are spelled: the same SQLite file (by
    its real path, as SQLite reports it), the same PostgreSQL table (by its oid on the same
    server and database, as the server resolves the name), else the same host, port,
    database and schema-qualified table.
    """
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(rows, DatabaseRows) or rows.table is None:
        return
    engine = rows.engine
    if engine is None:
        return
    try:
        same = _table_identity(engine, rows.table) == _table_identity(target.engine, target.name)
    except SQLAlchemyError:
        same = False  # cannot be asked: the writes themselves will say what is wrong
    if same:
        raise ConfigurationError(
            f"--output-table {target.name!r} is the input table: writing results there would "
            "destroy the rows; choose another --output-table",
            field="output_table",
        )


def _table_identity(engine: Engine, name: str) -> tuple[Any, ...] | None:
    """What the table ``name`` of ``engine``'s database is, whatever the spelling; None
    when it does not exist (PostgreSQL) or the database is in memory (SQLite)."""
    from sqlalchemy import table, text

    schema, table_name = split_table_name(name, "output_table")
    dialect = engine.dialect
    with engine.connect() as connection:
        if dialect.name == "sqlite":
            files = {r[1]: r[2] for r in connection.exec_driver_sql("PRAGMA database_list")}
            path = files.get(schema or "main")
            if not path:
                return None
            # SQLite's names are case-blind (ASCII).
            return ("sqlite", os.path.realpath(path), table_name.lower())
        if dialect.name == "postgresql":
            quoted = dialect.identifier_preparer.format_table(table(table_name, schema=schema))
            found = connection.execute(
                text(
                    "SELECT to_regclass(:name)::oid, current_database(), "
                    "pg_postmaster_start_time(), inet_server_port()"
                ),
                {"name": quoted},
            ).first()
            if found is None or found[0] is None:
                return None
            return ("postgresql", *found)
    url = engine.url
    default = dialect.default_schema_name
    return (
        url.get_backend_name(),
        (url.host or "").lower(),
        url.port,
        url.database,
        schema or default,
        table_name,
    )
