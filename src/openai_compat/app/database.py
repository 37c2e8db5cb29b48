"""Open the database (embedded SQLite file or PostgreSQL) and bring its schema up to date.

The schema is managed by Alembic; the migrations ship inside the package
(``openai_compat/app/migrations``) and run at every start, so a new version of the
application upgrades an older database in place.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

__all__ = ["database_url", "describe_url", "migrate", "open_engine"]


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


def open_engine(url: URL) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout for concurrent use."""
    if url.get_backend_name() == "sqlite":
        if url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (creates it on an empty database)."""
    config = Config()
    config.set_main_option("script_location", "openai_compat.app:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
