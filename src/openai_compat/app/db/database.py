"""Open the database (embedded SQLite file or PostgreSQL) and bring its schema up to date.

The schema is managed by Alembic; the migrations ship inside the package
(``openai_compat/app/db/migrations``) and run at every start, so a new version of the
application upgrades an older database in place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

__all__ = ["database_url", "describe_url", "migrate", "open_engine", "owner_only_sqlite"]

# SQLite gives the -wal and -shm files the database file's mode: the file is made first.
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def database_url(configured: str, sqlite_path: Path) -> URL:
    """The SQLAlchemy URL: ``configured`` (PostgreSQL), or the SQLite file by default.

    ``postgresql://`` and ``postgres://`` URLs are given the psycopg (v3) driver.
    """
    if not configured:
        return URL.create("sqlite+pysqlite", database=str(sqlite_path))
    url = make_url(configured.replace("postgres://", "postgresql://", 1))
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def describe_url(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def owner_only_sqlite(path: Path) -> None:
    """Create the SQLite file ``path`` owner-only (0600), and tighten it and its companions.

    SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode, so a
    database file made 0600 here keeps them 0600 too; older, looser ones are tightened.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for suffix in _SQLITE_SUFFIXES:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.chmod(companion, 0o600)


def _strict_json(value: Any) -> str:
    # Not json.dumps's default ensure_ascii, which writes a lone surrogate as the escape
    # "\\ud800" that both databases accept: the driver's UTF-8 encoding refuses it instead,
    # so a value that cannot be shown is never stored.
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _lenient_text(data: bytes) -> str:
    # A SQLite TEXT value that is not UTF-8 (written by another tool) must not make a whole
    # page unreadable: its bad bytes become lone surrogates, which that one row's rendering
    # refuses (valid UTF-8 decodes as usual).
    return data.decode("utf-8", "surrogateescape")


def open_engine(url: URL) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout for concurrent use.

    A SQLite file is owner-only (0600), as are its ``-wal`` and ``-shm`` files.
    """
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            owner_only_sqlite(Path(url.database))
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=_strict_json,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.text_factory = _lenient_text
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_serializer=_strict_json
    )


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (creates it on an empty database)."""
    config = Config()
    config.set_main_option("script_location", "openai_compat.app.db:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
