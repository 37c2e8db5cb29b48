"""An embeddings run into a PostgreSQL ``real[]`` column, killed with SIGKILL mid-run and
resumed: every key once, every vector whole."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from openai_compat.testing import MockServer, embedding_vector
from tests.batch.test_batch_cli import batch_args, run_cli, spawn  # noqa: F401
from tests.conftest import make_config

ROWS = 1200


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM vectors")).scalar_one())
    except Exception:  # the table is created by the run: not there yet
        return 0
    finally:
        engine.dispose()


def test_a_killed_embeddings_run_into_real_arrays_resumes_with_every_key_once(
    postgres: Any,
    server: MockServer,
    tmp_path: Path,
    spawn: Any,  # noqa: F811
) -> None:
    url = postgres.create_database(f"e_{uuid.uuid4().hex[:12]}")
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    config = tmp_path / "conn.json"
    request_format = json.dumps({"model": "mock-model", "input": "{{text}}"})
    config.write_text(
        json.dumps(
            make_config(
                server.base_url + "/v1/embeddings?latency_ms=40", request_format=request_format
            )
        )
    )
    source = tmp_path / "rows.jsonl"
    texts = {f"k{i}": f"text of row {i}" for i in range(ROWS)}
    source.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in texts.items()))
    args = batch_args(
        config, source, url, "--output-table", "vectors", "--key", "id",
        "--rows-per-request", "16", "--concurrency", "2",
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": "src"}
    proc = spawn(args, env=env)
    deadline = time.monotonic() + 60
    while _count(sa_url) < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    written = _count(sa_url)
    assert 0 < written < ROWS, written
    resumed = run_cli([*args, "--resume"], env=env)
    assert resumed.returncode == 0, resumed.stderr
    engine = create_engine(sa_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, embedding, error_message FROM vectors")).all()
        kind = conn.execute(
            text(
                "SELECT udt_name FROM information_schema.columns "
                "WHERE table_name = 'vectors' AND column_name = 'embedding'"
            )
        ).scalar_one()
    engine.dispose()
    assert kind == "_float4"
    assert sorted(r[0] for r in rows) == sorted(texts)  # every key once
    assert all(r[2] is None for r in rows)
    assert all(r[1] == embedding_vector(texts[r[0]]) for r in rows)
