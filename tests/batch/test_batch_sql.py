"""Batch runs from and into databases (SQLAlchemy URLs), on SQLite and a real PostgreSQL.

Each test that takes ``db`` runs on both: a SQLite file, and a database of the suite's
throw-away PostgreSQL cluster reached with a URL that carries a password (the cluster
trusts 127.0.0.1, so any password connects), which no output may show. The crash test
kills ``openai-compat batch`` with SIGKILL at random moments and resumes: every key must
end up in the table exactly once, whole.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from openai_compat.batch import (
    BatchResult,
    DatabaseRows,
    database_rows,
    run_batch,
    run_batch_sync,
)
from openai_compat.batch._sql_writer import TableOutput
from openai_compat.errors import ConfigurationError
from openai_compat.testing import MockServer
from tests.app_support import free_port
from tests.batch.test_batch_cli import run_cli
from tests.conftest import CANARY, make_config

PASSWORD = "pg-pass-5e1f-NEVER-SHOWN"
TEMPLATE = json.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "{{body}}"}]}
)
OUTPUT = "choices.0.message.content"
FLAT = [
    "error_status",
    "error_message",
    "attempts",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: its URL (PostgreSQL's with a password in it)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data.db'}"
    plain = request.getfixturevalue("postgres").create_database(f"b_{uuid.uuid4().hex[:12]}")
    return plain.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def execute(url: str, *statements: str, **params: Any) -> None:
    engine = create_engine(sa_url(url))
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)
    engine.dispose()


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(sa_url(url))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql), params)]
    engine.dispose()
    return rows


def seed(url: str, n: int, *, table: str = "tickets") -> None:
    """``table`` (id, body, day) with ``n`` rows; odd ids on 2026-12-01, even on 2026-12-02."""
    execute(url, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body TEXT, day TEXT)")
    engine = create_engine(sa_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO {table} (id, body, day) VALUES (:id, :body, :day)"),
            [
                {"id": i, "body": f"row {i}", "day": "2026-12-01" if i % 2 else "2026-12-02"}
                for i in range(n)
            ],
        )
    engine.dispose()


def write_config(tmp_path: Path, server: MockServer, query_string: str = "") -> Path:
    path = tmp_path / "conn.json"
    path.write_text(json.dumps(make_config(server.url + query_string, request_format=TEMPLATE)))
    return path


def db_args(config: Path, url_in: str, url_out: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "openai_compat", "batch", "--config", str(config),
        "--input", url_in, "--output", url_out, "--rate", "off", *extra,
    ]  # fmt: skip


def run_db_cli(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    result = run_cli(args, **kw)
    assert PASSWORD not in result.stdout + result.stderr, "the database password was shown"
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Popen that never outlives the test, whatever fails."""
    started: list[subprocess.Popen[str]] = []

    def start(args: list[str], **kw: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(args, text=True, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


QUERY_ALL = ["--query", "SELECT id, body FROM tickets ORDER BY id", "--key", "id"]


# -- end to end --------------------------------------------------------------------------------


def test_a_query_runs_into_a_new_typed_table_with_the_flat_result_columns(
    db: str, server: MockServer, tmp_path: Path
) -> None:
    seed(db, 40)
    config = write_config(tmp_path, server)
    args = db_args(
        config, db, db,
        "--query", "SELECT id, body FROM tickets WHERE day = :day", "--param", "day=2026-12-01",
        "--output-table", "summaries", "--key", "id", "--progress", "lines",
    )  # fmt: skip
    result = run_db_cli(args)
    assert result.returncode == 0, result.stderr
    assert "20 ok, 0 failed, 0 skipped" in result.stderr
    engine = create_engine(sa_url(db))
    columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("summaries")}
    primary = inspect(engine).get_pk_constraint("summaries")["constrained_columns"]
    engine.dispose()
    assert list(columns) == ["id", OUTPUT, *FLAT]
    assert primary == ["id"]
    kinds = {name: type(kind).__name__.upper() for name, kind in columns.items()}
    assert kinds["id"] == kinds[OUTPUT] == kinds["error_message"] == "TEXT"
    assert {kinds[n] for n in ("attempts", "error_status", "total_tokens")} == {"BIGINT"}
    assert kinds["latency_ms"] in ("FLOAT", "DOUBLE_PRECISION", "DOUBLE")
    rows = query(db, f'SELECT id, "{OUTPUT}", error_message, attempts, total_tokens FROM summaries')
    assert sorted(int(r[0]) for r in rows) == list(range(1, 40, 2))
    assert all(r[1] == f"You said: row {r[0]}" and r[2] is None and r[3] == 1 for r in rows)
    assert all(isinstance(r[4], int) and r[4] > 0 for r in rows)
    # The query's parameter was bound: the server saw only the rows of that day.
    assert sorted(r.json["messages"][0]["content"] for r in server.requests) == sorted(
        f"row {i}" for i in range(1, 40, 2)
    )


def test_a_parameter_is_bound_never_pasted_into_the_sql(
    db: str, server: MockServer, tmp_path: Path
) -> None:
    seed(db, 6)
    config = write_config(tmp_path, server)
    hostile = "2026-12-01' OR '1'='1"
    args = db_args(
        config, db, db, "--query", "SELECT id, body FROM tickets WHERE day = :day",
        "--param", f"day={hostile}", "--output-table", "out", "--key", "id",
    )  # fmt: skip
    result = run_db_cli(args)
    assert result.returncode == 0, result.stderr
    assert "0 ok, 0 failed, 0 skipped" in result.stderr  # the quote matched nothing
    assert server.requests == []
    assert query(db, "SELECT count(*) FROM tickets") == [(6,)]


def test_a_whole_table_runs_into_a_json_lines_file(
    db: str, server: MockServer, tmp_path: Path
) -> None:
    seed(db, 12)
    config = write_config(tmp_path, server)
    out = tmp_path / "out.jsonl"
    result = run_db_cli(db_args(config, db, str(out), "--table", "tickets", "--key", "id"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["key"] for line in lines) == list(range(12))
    assert all(line["output"][OUTPUT] == f"You said: row {line['key']}" for line in lines)


def test_a_file_runs_into_a_table(db: str, server: MockServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, server)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": f"t{i}", "body": f"b{i}"}) + "\n" for i in range(9)))
    result = run_db_cli(db_args(config, str(rows), db, "--output-table", "res", "--key", "id"))
    assert result.returncode == 0, result.stderr
    got = dict(query(db, f'SELECT id, "{OUTPUT}" FROM res'))
    assert got == {f"t{i}": f"You said: b{i}" for i in range(9)}


def test_retry_failed_runs_again_exactly_the_rows_whose_error_message_is_set(
    db: str, server: MockServer, tmp_path: Path
) -> None:
    seed(db, 10)
    execute(db, "CREATE TABLE flaky (id INTEGER PRIMARY KEY)", "INSERT INTO flaky VALUES (3), (7)")
    broken = tmp_path / "broken"
    broken.mkdir()
    failing = write_config(broken, server, "?scenario=404")
    good = write_config(tmp_path, server)
    base = ["--output-table", "out", "--key", "id"]
    # Rows 3 and 7 go to the failing endpoint; the others succeed.
    bad_rows = ["--query", "SELECT t.id, t.body FROM tickets t JOIN flaky f ON f.id = t.id"]
    good_rows = ["--query", "SELECT id, body FROM tickets WHERE id NOT IN (3, 7)"]
    assert run_db_cli(db_args(good, db, db, *good_rows, *base)).returncode == 0
    first = run_db_cli(db_args(failing, db, db, *bad_rows, *base, "--resume"))
    assert first.returncode == 1, first.stderr
    failed = query(db, "SELECT id, error_status FROM out WHERE error_message IS NOT NULL")
    assert sorted((int(k), s) for k, s in failed) == [(3, 404), (7, 404)]
    server.clear()
    everything = ["--query", "SELECT id, body FROM tickets ORDER BY id"]
    again = run_db_cli(db_args(good, db, db, *everything, *base, "--retry-failed"))
    assert again.returncode == 0, again.stderr
    assert "2 ok, 0 failed, 8 skipped" in again.stderr
    assert sorted(r.json["messages"][0]["content"] for r in server.requests) == ["row 3", "row 7"]
    rows = query(db, f'SELECT id, "{OUTPUT}", error_message, error_status FROM out')
    assert len(rows) == 10
    assert all(r[1] == f"You said: row {r[0]}" and r[2] is None and r[3] is None for r in rows)


# -- refusals before anything is sent ----------------------------------------------------------


def test_an_existing_table_with_other_columns_is_refused_before_anything_is_sent(
    db: str, server: MockServer, tmp_path: Path
) -> None:
    seed(db, 5)
    execute(db, "CREATE TABLE out (id TEXT PRIMARY KEY, summary TEXT, note TEXT)")
    config = write_config(tmp_path, server)
    result = run_db_cli(db_args(config, db, db, *QUERY_ALL, "--output-table", "out"))
    assert result.returncode == 2
    assert "exists with other columns" in result.stderr
    assert "summary, note besides" in result.stderr and OUTPUT in result.stderr
    assert server.requests == []


def test_a_table_with_results_needs_resume_or_overwrite(
    db: str, server: MockServer, tmp_path: Path
) -> None:
    seed(db, 4)
    config = write_config(tmp_path, server)
    args = db_args(config, db, db, *QUERY_ALL, "--output-table", "out")
    assert run_db_cli(args).returncode == 0
    server.clear()
    again = run_db_cli(args)
    assert again.returncode == 2 and "already has 4 results" in again.stderr
    assert server.requests == []
    over = run_db_cli([*args, "--overwrite"])
    assert over.returncode == 0 and "4 ok" in over.stderr
    assert query(db, "SELECT count(*) FROM out") == [(4,)]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--query", "SELECT id FROM tickets WHERE day = :day"], "--param day=VALUE"),
        (["--query", "SELECT id FROM tickets", "--param", "day=1"], "the query has no :day"),
        (["--query", "SELECT id FROM tickets", "--table", "tickets"], "not both"),
        (["--table", "nope"], "has no table 'nope' (its tables: tickets)"),
        (["--query", "SELEKT id FROM tickets"], "the query failed on"),
        ([], "say what to read with --query"),
        (["--param", "x"], "write it NAME=VALUE"),
    ],
)
def test_unusable_database_arguments_are_clear_errors(
    server: MockServer, tmp_path: Path, extra: list[str], words: str
) -> None:
    url = f"sqlite:///{tmp_path / 'in.db'}"
    seed(url, 3)
    config = write_config(tmp_path, server)
    out = f"sqlite:///{tmp_path / 'out.db'}"
    result = run_db_cli(db_args(config, url, out, "--output-table", "t", *extra))
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert server.requests == []


def test_an_output_url_needs_a_table_and_a_table_needs_an_output_url(
    server: MockServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'in.db'}"
    seed(url, 2)
    config = write_config(tmp_path, server)
    no_table = run_db_cli(db_args(config, url, url, *QUERY_ALL))
    assert no_table.returncode == 2 and "--output-table NAME" in no_table.stderr
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": 1, "body": "x"}\n')
    not_db = run_db_cli(
        db_args(config, str(rows), str(tmp_path / "o.jsonl"), "--output-table", "t")
    )
    assert not_db.returncode == 2 and "--output must be its URL" in not_db.stderr
    same = run_db_cli(db_args(config, url, url, "--table", "tickets", "--output-table", "tickets"))
    assert same.returncode == 2 and "is the input table" in same.stderr
    assert query(url, "SELECT count(*) FROM tickets") == [(2,)]
    assert server.requests == []


# -- passwords and ENV[...] --------------------------------------------------------------------


def test_a_connection_failure_is_a_clear_error_without_the_password(
    server: MockServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, server)
    port = free_port()
    dead = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/warehouse"
    result = run_db_cli(db_args(config, dead, str(tmp_path / "o.jsonl"), "--table", "t"))
    assert result.returncode == 2
    assert f"cannot connect to the database postgresql+psycopg://app:***@127.0.0.1:{port}" in (
        result.stderr
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": 1, "body": "x"}\n')
    out = run_db_cli(db_args(config, str(rows), dead, "--output-table", "t"))
    assert out.returncode == 2 and "app:***@" in out.stderr
    unknown = run_db_cli(db_args(config, f"nosuchdb://u:{PASSWORD}@h/d", "o.jsonl", "--table", "t"))
    assert (
        unknown.returncode == 2 and "no SQLAlchemy dialect or driver 'nosuchdb'" in unknown.stderr
    )
    assert server.requests == []


def test_env_references_work_for_the_whole_url_and_for_its_password(
    postgres: Any, server: MockServer, tmp_path: Path
) -> None:
    plain = postgres.create_database(f"b_{uuid.uuid4().hex[:12]}")
    seed(plain, 6)
    config = write_config(tmp_path, server)
    with_ref = plain.replace("postgres@", 'postgres:ENV["OC_TEST_PGPASS"]@')
    env = {**os.environ, "OC_TEST_DB_URL": plain.replace("postgres@", f"postgres:{PASSWORD}@"),
           "OC_TEST_PGPASS": PASSWORD}  # fmt: skip
    args = db_args(
        config, 'ENV["OC_TEST_DB_URL"]', with_ref, *QUERY_ALL,
        "--output-table", "out", "--progress", "lines", "--progress-interval", "0.01",
    )  # fmt: skip
    result = run_db_cli(args, env=env)
    assert result.returncode == 0, result.stderr
    assert query(plain, "SELECT count(*) FROM out") == [(6,)]
    missing = run_db_cli(db_args(config, 'ENV["OC_TEST_NOT_SET"]', "o.jsonl", "--table", "t"))
    assert missing.returncode == 2
    assert 'ENV["OC_TEST_NOT_SET"]' in missing.stderr and "not set" in missing.stderr


def test_the_summary_and_the_progress_never_show_the_password(
    postgres: Any, server: MockServer, tmp_path: Path
) -> None:
    url = postgres.create_database(f"b_{uuid.uuid4().hex[:12]}").replace(
        "postgres@", f"postgres:{PASSWORD}@"
    )
    seed(url, 5)
    config = write_config(tmp_path, server, "?scenario=500")
    args = db_args(config, url, url, *QUERY_ALL, "--output-table", "out", "--progress", "lines")
    result = run_db_cli(args)  # the failed rows' messages and the notices: no password
    assert result.returncode == 1
    assert query(url, "SELECT count(*) FROM out WHERE error_status = 500") == [(5,)]
    for (message,) in query(url, "SELECT error_message FROM out"):
        assert PASSWORD not in message and CANARY not in message


# -- exactly once, after kill -9 ----------------------------------------------------------------


def count_rows(url: str, table: str) -> int:
    try:
        return int(query(url, f"SELECT count(*) FROM {table}")[0][0])
    except Exception:  # not created yet
        return 0


def test_sigkill_at_random_moments_then_resume_writes_every_key_exactly_once(
    db: str, server: MockServer, tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    n = 1500
    seed(db, n)
    config = write_config(tmp_path, server, "?latency_ms=20")
    args = db_args(
        config, db, db, *QUERY_ALL, "--output-table", "out", "--concurrency", "8", "--quiet"
    )
    seed_value = int(os.environ.get("BATCH_CRASH_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed_value)
    for kill in range(4):
        before = count_rows(db, "out")
        proc = spawn(args + (["--resume"] if kill else []), stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while count_rows(db, "out") <= before:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the batch wrote nothing"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        assert proc.poll() is None, f"kill {kill} came after the run ended (seed {seed_value})"
        proc.kill()
        proc.wait(timeout=10)
    assert count_rows(db, "out") < n, f"seed {seed_value}"
    final = run_db_cli([*args, "--resume"])
    assert final.returncode == 0, final.stderr
    rows = query(db, f'SELECT id, "{OUTPUT}", error_message, attempts, total_tokens FROM out')
    keys = [int(r[0]) for r in rows]
    assert len(keys) == len(set(keys)) == n, f"duplicates or gaps (seed {seed_value})"
    assert set(keys) == set(range(n))
    for key, output, error, attempts, tokens in rows:  # no torn row: every column whole
        assert output == f"You said: row {key}" and error is None
        assert attempts == 1 and tokens is not None and tokens > 0


# -- memory: the rows are streamed -------------------------------------------------------------

_MEASURE = """
import resource, sys
from openai_compat.batch import database_rows
rows = database_rows(sys.argv[1], "SELECT id, body FROM big ORDER BY id")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = sum(1 for _ in rows)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(count, (after - before) // 1024)
"""


def test_database_rows_stream_with_flat_memory(db: str, tmp_path: Path) -> None:
    n = 150_000  # 1 KB bodies: 150 MB if the rows were fetched whole
    execute(db, "CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT)")
    if db.startswith("sqlite"):
        execute(
            db,
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :n) "
            "INSERT INTO big SELECT i, printf('%.1000d', i) FROM s",
            n=n,
        )
    else:
        execute(
            db,
            "INSERT INTO big SELECT i, lpad(i::text, 1000, '0') FROM generate_series(0, :n - 1) i",
            n=n,
        )
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, db],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    count, grown_mb = map(int, done.stdout.split())
    assert count == n
    assert grown_mb < 25, f"reading {n:,} rows of 1 KB grew the peak RSS by {grown_mb} MB"


# -- the Python API -----------------------------------------------------------------------------


def test_run_batch_sync_reads_a_query_and_writes_a_table(
    db: str, config: dict[str, Any], tmp_path: Path
) -> None:
    seed(db, 8)
    config["request_format"] = TEMPLATE
    summary = run_batch_sync(
        config,
        db,
        db,
        query="SELECT id, body FROM tickets WHERE day = :day",
        params={"day": "2026-12-02"},
        key="id",
        output_table="results",
        outputs=[{"name": OUTPUT, "as": "summary"}],
        rate=None,
    )
    assert (summary.ok, summary.failed) == (4, 0)
    assert sorted(query(db, "SELECT id, summary FROM results")) == [
        (str(i), f"You said: row {i}") for i in (0, 2, 4, 6)
    ]
    again = run_batch_sync(
        config, db, db, table="tickets", key="id", output_table="results", mode="resume",
        outputs=[{"name": OUTPUT, "as": "summary"}], rate=None,
    )  # fmt: skip
    assert (again.ok, again.skipped) == (4, 4)
    assert query(db, "SELECT count(*) FROM results") == [(8,)]


async def test_run_batch_takes_database_rows(db: str, config: dict[str, Any]) -> None:
    seed(db, 5)
    config["request_format"] = TEMPLATE
    rows = database_rows(db, "SELECT id, body FROM tickets WHERE id < :top", params={"top": 3})
    assert isinstance(rows, DatabaseRows) and PASSWORD not in repr(rows)
    results: list[BatchResult] = []
    async with run_batch(config, rows, key="id", rate=None) as run:
        async for result in run:
            results.append(result)
    assert sorted((r.key, r.output[OUTPUT]) for r in results) == [
        (i, f"You said: row {i}") for i in range(3)
    ]


def test_database_rows_turn_database_values_into_json_values(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    execute(url, "CREATE TABLE v (d DATE, n NUMERIC, b BLOB, f REAL)")
    execute(url, "INSERT INTO v VALUES ('2026-12-01', 2.5, x'6869', 1.25)")
    engine = create_engine(url)
    from sqlalchemy import Column, Date, LargeBinary, MetaData, Numeric, Table, select

    table = Table(
        "v", MetaData(), Column("d", Date), Column("n", Numeric), Column("b", LargeBinary)
    )
    with engine.connect() as conn:
        typed = conn.execute(select(table)).one()
    engine.dispose()
    from openai_compat.batch._sql_reader import _json_value

    assert [_json_value(v) for v in typed] == ["2026-12-01", 2.5, "hi"]
    assert list(database_rows(url, table="v")) == [
        {"d": "2026-12-01", "n": 2.5, "b": "hi", "f": 1.25}
    ]


def test_database_rows_refuse_a_missing_parameter_before_reading(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    seed(url, 1)
    with pytest.raises(ConfigurationError, match=r"--param day=VALUE"):
        database_rows(url, "SELECT * FROM tickets WHERE day = :day")
    with pytest.raises(ConfigurationError, match=re.escape("--query 'SELECT ...' or --table NAME")):
        database_rows(url)


def test_the_generic_upsert_replaces_a_row_in_one_transaction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    output = TableOutput(url, "res", key_column="id", output_names=["s"])
    output._upsert = None  # the path of a dialect without a native upsert
    output.prepare("new")

    def row(key: str, value: str, error: str | None = None) -> dict[str, Any]:
        result = BatchResult(key=key, index=0, output={"s": value}, attempts=1)
        if error:
            result.error = {"status": 500, "message": error}
        return output.row(result, ["s"], False)

    output.write_rows([row("a", "1", "boom"), row("b", "2")])
    output.write_rows([row("a", "3"), row("c", "4\x00\ud800")])
    got = sorted(query(url, "SELECT id, s, error_message FROM res"))
    output.close()
    assert got == [("a", "3", None), ("b", "2", None), ("c", "4\ufffd\ufffd", None)]


def test_resume_reads_back_the_keys_and_retry_failed_leaves_out_the_failed(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    output = TableOutput(url, "res", key_column=None, output_names=["s"])
    output.prepare("new")
    ok = BatchResult(key=0, index=0, output={"s": "x"}, attempts=1)
    bad = BatchResult(key=1, index=1, error={"status": None, "message": "no"}, attempts=1)
    output.write_rows([output.row(ok, ["s"], False), output.row(bad, ["s"], False)])
    resumed = output.prepare("resume")
    retried = output.prepare("retry-failed")
    output.close()
    assert (resumed.done, resumed.ok, resumed.failed) == ({"0", "1"}, 1, 1)
    assert (retried.done, retried.removed_failed) == ({"0"}, 1)
