"""Database inputs and outputs judged by what they are, not how they are written.

The output table is refused when it is the input table however either URL spells it (a
relative or absolute SQLite path, a symlink, ``main.``; another host name, scheme or schema
for PostgreSQL); every key goes into a table and comes back as itself (a NUL, a U+FFFD, the
escape's own mark), so a resumed run sends nothing twice and no two keys share a row; a
password in a query parameter is never shown. On SQLite and the suite's PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from openai_compat.batch.keys import read_key
from openai_compat.testing import MockServer
from tests.app_support import free_port
from tests.batch.test_batch_sql import (
    OUTPUT,
    PASSWORD,
    db,  # noqa: F401 - the fixture
    db_args,
    query,
    run_db_cli,
    seed,
    write_config,
)
from tests.conftest import CANARY

# -- the output table is the input table ------------------------------------------------------


def _results_table(config: Path, url: str) -> list[tuple[Any, ...]]:
    """``tickets`` (3 rows) run into the results table ``res``: its rows."""
    seed(url, 3)
    args = db_args(config, url, url, "--table", "tickets", "--key", "id", "--output-table", "res")
    assert run_db_cli(args).returncode == 0
    return sorted(query(url, f'SELECT id, "{OUTPUT}" FROM res'))


def _refused_over_input(
    config: Path, url_in: str, url_out: str, table_out: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    # A results table read again (its own columns fit the run): --overwrite would empty it.
    args = db_args(
        config, url_in, url_out, "--table", "res", "--key", "id",
        "--output-table", table_out, "--overwrite",
    )  # fmt: skip
    return run_db_cli(args, **kw)


def test_another_spelling_of_the_same_sqlite_table_is_the_input_table(
    server: MockServer, tmp_path: Path
) -> None:
    data = tmp_path / "x.db"
    absolute = f"sqlite:///{data}"
    config = write_config(tmp_path, server)
    before = _results_table(config, absolute)
    server.clear()
    (tmp_path / "link.db").symlink_to(data)
    spellings = [
        (absolute, "main.res", {}),
        ("sqlite:///x.db", "res", {"cwd": tmp_path}),
        ("sqlite:///./sub/../x.db", "RES", {"cwd": tmp_path}),
        (f"sqlite:///{tmp_path / 'link.db'}", "res", {}),
    ]
    (tmp_path / "sub").mkdir()
    for url_out, table_out, kw in spellings:
        result = _refused_over_input(config, absolute, url_out, table_out, **kw)
        assert result.returncode == 2, (url_out, table_out, result.stderr)
        assert "is the input table" in result.stderr
    assert sorted(query(absolute, f'SELECT id, "{OUTPUT}" FROM res')) == before
    assert server.requests == []
    # Another table is still an output.
    other = _refused_over_input(config, absolute, absolute, "main.again")
    assert other.returncode in (0, 1), other.stderr


def test_another_spelling_of_the_same_postgresql_table_is_the_input_table(
    postgres: Any, server: MockServer, tmp_path: Path
) -> None:
    import uuid

    plain = postgres.create_database(f"b_{uuid.uuid4().hex[:12]}")
    url = plain.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    config = write_config(tmp_path, server)
    before = _results_table(config, url)
    server.clear()
    spellings = [
        (url, "public.res"),
        (url.replace("127.0.0.1", "localhost"), "res"),
        (url.replace("postgresql://", "postgres://"), "public.res"),
        (plain.replace("postgresql://", "postgresql+psycopg://"), "res"),
    ]
    for url_out, table_out in spellings:
        result = _refused_over_input(config, url, url_out, table_out)
        assert result.returncode == 2, (url_out, table_out, result.stderr)
        assert "is the input table" in result.stderr
    assert sorted(query(url, f'SELECT id, "{OUTPUT}" FROM res')) == before
    assert server.requests == []


# -- keys come back as themselves ---------------------------------------------------------------

_KEYS = ["a\x00b", "a\ufffdb", '\ufffd"a\\u0000b"', "\ufffd", "plain"]


def test_every_key_round_trips_through_a_table_and_resume_sends_nothing(
    db: str,  # noqa: F811 - the fixture
    server: MockServer,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, server)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"id": k, "body": f"b{i}"}) + "\n" for i, k in enumerate(_KEYS))
    )
    args = db_args(config, str(rows), db, "--output-table", "res", "--key", "id")
    first = run_db_cli(args)
    assert first.returncode == 0, first.stderr
    assert f"{len(_KEYS)} ok, 0 failed" in first.stderr
    stored = dict(query(db, f'SELECT id, "{OUTPUT}" FROM res'))
    assert len(stored) == len(_KEYS)  # no two keys share a row
    assert {read_key(k): v for k, v in stored.items()} == {
        k: f"You said: b{i}" for i, k in enumerate(_KEYS)
    }
    server.clear()
    again = run_db_cli([*args, "--resume"])
    assert again.returncode == 0, again.stderr
    assert f"0 ok, 0 failed, {len(_KEYS)} skipped" in again.stderr
    assert server.requests == []


# -- passwords in query parameters ------------------------------------------------------------------


def test_a_password_in_a_query_parameter_is_never_shown_by_the_cli(
    server: MockServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, server)
    port = free_port()
    dead = f"postgresql://app@127.0.0.1:{port}/w?password={CANARY}&sslpassword={PASSWORD}"
    result = run_db_cli(db_args(config, dead, str(tmp_path / "o.jsonl"), "--table", "t"))
    assert result.returncode == 2
    assert "password=***" in result.stderr and "sslpassword=***" in result.stderr
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": 1, "body": "x"}\n')
    out = run_db_cli(db_args(config, str(rows), dead, "--output-table", "t"))
    assert out.returncode == 2 and "password=***" in out.stderr
    for text in (result.stdout, result.stderr, out.stdout, out.stderr):
        assert CANARY not in text and PASSWORD not in text
    assert server.requests == []
