"""Migration 0005 (structured counts) on a database holding a run from before it: the run gets zero
counts and no mode, and its view says so."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from openai_compat.app.db.database import database_url, migrate, open_engine
from openai_compat.app.runs.store import RunStore
from openai_compat.app.runs.views import run_view


def test_a_run_stored_before_the_counts_has_zero_counts(tmp_path: Path) -> None:
    engine = open_engine(database_url("", tmp_path / "old.db"))
    config = Config()
    config.set_main_option("script_location", "openai_compat.app.db:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            text(
                "insert into runs (connector_id, status, spec, output_names, ok, failed, "
                "skipped, requests, prompt_tokens, completion_tokens, total_tokens, active_s, "
                "live, created_at, updated_at) values (1, 'succeeded', :spec, '[]', 2, 0, 0, "
                "2, 0, 0, 0, 1.0, '{}', '2026-01-01', '2026-01-01')"
            ),
            {"spec": '{"input": {"upload_id": "u"}, "schema": {"type": "object"}}'},
        )
    migrate(engine)
    row = RunStore(engine).get(1)
    assert row is not None
    assert run_view(row)["structured"] == {
        "mode": None,
        "valid_first": 0,
        "valid_after_reasks": 0,
        "invalid": 0,
    }
    engine.dispose()
