"""Structured runs into a real PostgreSQL table: the column each JSON Schema type becomes,
nulls for the rows that never validate, and the values read back typed.

The suite's throw-away cluster (``postgres``) is reached with a URL that carries a password
no output may show; every answer comes from the scripted server.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from openai_compat.cli import main
from openai_compat.testing import chat_completion, json_reply
from tests.conftest import CANARY, make_config

PASSWORD = "pg-pass-77c1-NEVER-SHOWN"
TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'
SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["bug", "question"]},
        "urgency": {"type": "integer"},
        "score": {"type": "number"},
        "done": {"type": "boolean"},
        "summary": {"type": "string"},
        "due": {"type": "string", "format": "date"},
        "seen": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "who": {"type": "object", "properties": {"name": {"type": "string"}}},
        "extra": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "level": {"enum": [1, 2, 3]},
    },
    "required": ["label", "urgency"],
}
GOOD = {
    "label": "bug",
    "urgency": 2,
    "score": 1.5,
    "done": True,
    "summary": "héllo 'quoted'",
    "due": "2026-12-07",
    "seen": "2026-12-07T22:40:00Z",
    "tags": ["a", "b"],
    "who": {"name": "Ann"},
    "extra": "free text",
    "level": 3,
}
# The types PostgreSQL reports for each output column (information_schema.columns).
DECLARED = {
    "label": "text",
    "urgency": "bigint",
    "score": "double precision",
    "done": "boolean",
    "summary": "text",
    "due": "text",
    "seen": "text",
    "tags": "jsonb",
    "who": "jsonb",
    "extra": "jsonb",
    "level": "bigint",
}


@pytest.fixture
def pg_url(postgres: Any) -> str:
    """A fresh database of the suite's cluster, its URL with a password in it."""
    plain = postgres.create_database(f"s_{uuid.uuid4().hex[:12]}")
    return plain.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def _run(tmp_path: Path, server: Any, url: str, *extra: str) -> int:
    (tmp_path / "conn.json").write_text(
        json.dumps(make_config(server.url, request_format=TEMPLATE))
    )
    (tmp_path / "in.csv").write_text("id,text\nt1,printer\nt2,vpn\nt3,none\n")
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    return main(
        [
            "batch", "--config", str(tmp_path / "conn.json"), "--input", str(tmp_path / "in.csv"),
            "--key", "id", "--concurrency", "1", "--rate", "off",
            "--schema", str(tmp_path / "schema.json"), "--schema-mode", "json_schema",
            "--output", url, "--output-table", "tickets", *extra,
        ]
    )  # fmt: skip


def _read(url: str, sql: str) -> list[Any]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)))
    finally:
        engine.dispose()


def test_structured_run_writes_typed_postgresql_columns(
    tmp_path: Path, server: Any, capsys: Any, pg_url: str
) -> None:
    sparse = {"label": "question", "urgency": 7, "extra": 12}
    never = json_reply(chat_completion(json.dumps({"label": "soon", "urgency": "x"})))
    server.enqueue(
        json_reply(chat_completion(json.dumps(GOOD))),
        json_reply(chat_completion(json.dumps(sparse))),
        never,
        never,
    )
    code = _run(tmp_path, server, pg_url, "--reasks", "1")
    out, err = capsys.readouterr()
    assert code == 1, err  # one row never validated
    assert "schema mode json_schema: 2 valid first, 0 after re-asks, 1 invalid" in err
    assert PASSWORD not in out + err and CANARY not in out + err
    assert len(server.requests) == 4

    declared = dict(
        _read(
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'tickets'",
        )
    )
    assert {name: declared[name] for name in DECLARED} == DECLARED
    names = ", ".join(DECLARED)
    rows = {
        row[0]: row[1:]
        for row in _read(pg_url, f"SELECT id, {names}, error_message FROM tickets ORDER BY id")
    }
    assert rows["t1"] == (*GOOD.values(), None)
    assert rows["t2"] == (
        "question", 7, None, None, None, None, None, None, None, 12, None, None,
    )  # fmt: skip
    *outputs, message = rows["t3"]
    assert outputs == [None] * len(DECLARED)
    assert message.startswith("after 2 attempts: $.")
    # The JSON columns are JSONB: the database itself can reach into them.
    assert _read(pg_url, "SELECT who->>'name', tags->>1, extra #>> '{}' FROM tickets "
                 "WHERE id = 't1'") == [("Ann", "b", "free text")]  # fmt: skip


def test_retry_failed_fills_the_invalid_row_in_place(
    tmp_path: Path, server: Any, capsys: Any, pg_url: str
) -> None:
    never = json_reply(chat_completion(json.dumps({"label": "soon"})))
    good = json_reply(chat_completion(json.dumps(GOOD)))
    server.enqueue(good, good, never)
    assert _run(tmp_path, server, pg_url, "--reasks", "0") == 1
    server.enqueue(good)
    assert _run(tmp_path, server, pg_url, "--retry-failed") == 0, capsys.readouterr().err
    rows = _read(pg_url, "SELECT id, urgency, who, error_message FROM tickets ORDER BY id")
    assert rows == [(key, 2, {"name": "Ann"}, None) for key in ("t1", "t2", "t3")]
