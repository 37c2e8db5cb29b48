"""Migration 0006 (a connector's measured capabilities) on a database holding a connector
saved before it: the connector has none measured, and measuring stores them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from openai_compat.app.connectors.measured import read_capabilities, store_capabilities
from openai_compat.app.connectors.store import ConnectorStore
from openai_compat.app.db.database import database_url, migrate, open_engine


def test_a_connector_saved_before_has_none_measured(tmp_path: Path) -> None:
    engine = open_engine(database_url("", tmp_path / "old.db"))
    config = Config()
    config.set_main_option("script_location", "openai_compat.app.db:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(
            text(
                "insert into connectors (name, connector_name, configuration, "
                "secrets_encrypted, created_at, updated_at) values ('old', "
                "'openai_compatible', '{}', '{}', '2026-01-01 00:00:00.000000', "
                "'2026-01-01 00:00:00.000000')"
            )
        )
    migrate(engine)
    measured = read_capabilities(engine, 1)
    assert measured is not None
    assert (measured.capabilities, measured.measured_at) == (None, None)
    assert read_capabilities(engine, 2) is None
    stored = ConnectorStore(engine).get(1)
    assert stored is not None
    # Stored only on the version measured: an older version stores nothing.
    assert store_capabilities(engine, 1, datetime(2025, 1, 1, tzinfo=UTC), {"tools": "x"}) is None
    assert store_capabilities(engine, 1, stored.updated_at, {"tools": "accepted"}) is not None
    again = read_capabilities(engine, 1)
    assert again is not None and again.capabilities == {"tools": "accepted"}
    assert again.answer()["measured_at"].endswith("+00:00")
    engine.dispose()
