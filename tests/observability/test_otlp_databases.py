"""A batch run from and into PostgreSQL exports no database password, in any span or metric.

The suite's throw-away PostgreSQL cluster is reached with a URL that carries a password (the
cluster trusts 127.0.0.1, so any password connects); the run reads a query and writes a table
with that URL, one row failing, while its spans and metrics go to a real OTLP/HTTP receiver on
127.0.0.1. Every exported byte is searched for the password and for the URL.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from openai_compat.testing import MockServer, error_reply
from tests.batch.test_batch_sql import PASSWORD, TEMPLATE, query, seed
from tests.conftest import CANARY, make_config
from tests.observability.otlp_receiver import OTLPReceiver
from tests.observability.test_otlp_export import otel_env, run_cli


def test_a_database_run_exports_no_password(
    postgres: Any, server: MockServer, tmp_path: Path
) -> None:
    plain = postgres.create_database(f"b_{uuid.uuid4().hex[:12]}")
    url = plain.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    assert PASSWORD in url
    seed(url, 6)
    (tmp_path / "c.json").write_text(json.dumps(make_config(server.url, request_format=TEMPLATE)))
    server.enqueue(error_reply(400, "bad row"))  # one failed row: its error path too
    with OTLPReceiver() as receiver:
        done = run_cli(
            otel_env(receiver),
            "batch", "--config", str(tmp_path / "c.json"), "--input", url,
            "--query", "SELECT id, body FROM tickets ORDER BY id", "--key", "id",
            "--output", url, "--output-table", "summaries", "--rate", "off",
            "--concurrency", "1", "--progress", "lines",
        )  # fmt: skip
        assert done.returncode == 1, done.stderr  # a row failed
        assert "5 ok, 1 failed" in done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        got = receiver.wait_for(
            lambda r: (
                any(s.name == "openai_compat.batch.run" for s in r.spans)
                and len([s for s in r.spans if s.name == "openai_compat.batch.row"]) == 6
                and {p.metric for p in r.points}
                >= {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}
            )
        )
    [run] = [s for s in got.spans if s.name == "openai_compat.batch.run"]
    assert run.attributes["openai_compat.batch.rows.ok"] == 5
    assert run.attributes["openai_compat.batch.rows.failed"] == 1
    assert len(query(url, "SELECT id FROM summaries")) == 6
    assert got.raw and any(b"openai_compat.batch.row" in body for body in got.raw)
    for body in got.raw:  # every span, every metric point, every resource attribute
        for secret in (PASSWORD, url, url.replace("postgresql://", "postgresql+psycopg://")):
            assert secret.encode() not in body, "the database password was exported"
        assert CANARY.encode() not in body
