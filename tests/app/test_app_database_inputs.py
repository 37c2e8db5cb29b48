"""Database inputs of the application, against real servers on loopback.

Every host a URL names is judged before anything connects, and again at each connection of
a run; a URL's password is never shown, wherever it is written (userinfo, ``?password=``,
``?sslpassword=``); a database that accepts connections and never answers fails a preview
in bounded time while the rest of the API keeps answering; and a dataset of 20,000 columns
is listed in linear time.
"""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from openai_compat.app.egress import AddressPolicy, DatabaseGuard
from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

_REQUEST = '{"model": "m", "messages": [{"role": "user", "content": "{{body}}"}]}'
_MAPPING = [{"name": "messages.0.content", "value": "body", "value_type": "dynamic"}]
_OUTPUTS = [{"name": "choices.0.message.content", "as": "reply"}]
# A second secret, for the second secret parameter (the first is the suite's canary).
_SSL_CANARY = "sslpass-canary-2b8e0d-NEVER-SHOWN"


class Listener:
    """A TCP server on 127.0.0.1 that counts connections; ``hold``: keeps each open and
    never answers (a database that hangs), else closes it at once."""

    def __init__(self, *, hold: bool) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.hold = hold
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.hold:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener(hold=False)
    yield server
    server.close()


@pytest.fixture(scope="module")
def pg_app(postgres: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The application on PostgreSQL: every store route goes through the thread pool."""
    database = postgres.create_database(f"dbin_app_{uuid.uuid4().hex[:8]}")
    proc = AppProcess(tmp_path_factory.mktemp("dbin") / "data", database=database)
    yield proc
    proc.stop()
    log = proc.log_text()
    assert CANARY not in log and _SSL_CANARY not in log


@pytest.fixture(scope="module")
def tickets(postgres: Any) -> str:
    """A database with a tickets table: its URL, without a password (trust auth)."""
    import psycopg

    url: str = postgres.create_database(f"dbin_rows_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE tickets (id TEXT PRIMARY KEY, body TEXT)")
        for i in range(4):
            conn.execute("INSERT INTO tickets VALUES (%s, %s)", (f"t-{i}", f"ticket {i}"))
    return url


# -- every host is judged, before any connection ------------------------------------------------


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    proc = AppProcess(
        tmp_path_factory.mktemp("dbin-strict") / "data", extra_args=("--refuse-private",)
    )
    yield proc
    proc.stop()


@pytest.mark.parametrize(
    "spelling",
    [
        "postgresql://u:pw@/db?host=127.0.0.1&port={port}",
        "postgresql://u:pw@/db?host=127.0.0.1:{port}",
        "postgresql://u:pw@/db?hostaddr=127.0.0.1&port={port}",
        "postgresql://u:pw@/db?host=localhost&port={port}",
    ],
)
def test_a_host_given_as_a_parameter_is_judged_before_any_connection(
    strict_app: AppProcess, listener: Listener, spelling: str
) -> None:
    with strict_app.client() as client:
        refused = client.post(
            "/api/v1/queries",
            json={"database": spelling.format(port=listener.port), "query": "SELECT 1"},
        )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]["errors"][0]
    assert error["field"] == "database" and "refuse-private" in error["message"]
    assert listener.accepted == 0


def test_a_socket_directory_is_refused_from_the_api(pg_app: AppProcess, postgres: Any) -> None:
    # The cluster listens on a socket in its own directory too: a path reaches it.
    socket_dir = str(postgres.root)
    with pg_app.client() as client:
        for url in (
            f"postgresql://postgres@/postgres?host={socket_dir}&port={postgres.port}",
            f"postgresql://postgres@/postgres?port={postgres.port}",
        ):
            answer = client.post("/api/v1/queries", json={"database": url, "query": "SELECT 1"})
            assert answer.status_code == 422, answer.text
            assert "Unix socket" in answer.json()["error"]["errors"][0]["message"]


# -- checked at every connection of a run ---------------------------------------------------------


def _stored_run(url: str, cipher: Any) -> Any:
    from openai_compat.app.runs.stored import StoredRun

    return StoredRun.model_validate(
        {
            "input": {"database": "shown", "query": "SELECT id, body FROM tickets ORDER BY id"},
            "database_url_encrypted": cipher.encrypt(url),
        }
    )


def test_a_run_reconnecting_is_judged_by_the_policy_of_now(
    tmp_path: Path, tickets: str, listener: Listener
) -> None:
    from openai_compat.app.runs._inputs import RunInputError, open_input
    from openai_compat.app.secrets.credentials import KeyCipher

    cipher = KeyCipher(Fernet.generate_key().decode())
    # Allowed when the run was created (loopback, default policy): its rows are read, over
    # a connection pinned to the address the guard judged (localhost's).
    allowed = DatabaseGuard(AddressPolicy())
    via_name = tickets.replace("127.0.0.1", "localhost")
    rows = open_input(_stored_run(via_name, cipher), tmp_path, None, cipher, allowed)  # type: ignore[arg-type]
    assert [row["id"] for row in rows] == ["t-0", "t-1", "t-2", "t-3"]
    # The application restarted with --refuse-private: resuming the run connects nowhere.
    stricter = DatabaseGuard(AddressPolicy(refuse_private=True))
    url = f"postgresql://u:pw@127.0.0.1:{listener.port}/db"
    with pytest.raises(RunInputError, match="refuse-private"):
        open_input(_stored_run(url, cipher), tmp_path, None, cipher, stricter)  # type: ignore[arg-type]
    hidden = f"postgresql://u:pw@/db?host=127.0.0.2:{listener.port}&host=127.0.0.1:{listener.port}"
    with pytest.raises(RunInputError, match="refuse-private"):
        open_input(_stored_run(hidden, cipher), tmp_path, None, cipher, stricter)  # type: ignore[arg-type]
    assert listener.accepted == 0


# -- secrets in the URL ------------------------------------------------------------------------------


def _assert_no_secret(text: str) -> None:
    assert CANARY not in text and _SSL_CANARY not in text


def test_a_password_in_a_query_parameter_is_never_shown(pg_app: AppProcess, tickets: str) -> None:
    base = tickets.replace("postgres@", f"postgres:{CANARY}@")
    url = f"{base}?password={CANARY}&sslpassword={_SSL_CANARY}&application_name=oc-test"
    query = "SELECT id, body FROM tickets ORDER BY id"
    answers: list[httpx.Response] = []
    with MockServer(api_key=CANARY) as endpoint, pg_app.client() as client:
        preview = client.post("/api/v1/queries", json={"database": url, "query": query})
        assert preview.status_code == 200, preview.text
        shown = preview.json()["database"]
        assert "postgres:***@" in shown and "password=***" in shown
        assert "sslpassword=***" in shown and "application_name=oc-test" in shown
        config = make_config(endpoint.url, request_format=_REQUEST)
        created = client.post(
            "/api/v1/connectors", json={"name": "dbin-secrets", "configuration": config}
        )
        assert created.status_code == 201, created.text
        connector_id = created.json()["id"]
        body = {
            "input": {"database": url, "query": query},
            "mapping": _MAPPING,
            "outputs": _OUTPUTS,
            "key": "id",
            "rate": None,
        }
        run = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
        assert run.status_code == 201, run.text
        assert "password=***" in run.json()["input"]["database"]
        run_id = run.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/runs/{run_id}").json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.2)
        view = client.get(f"/api/v1/runs/{run_id}")
        assert view.json()["status"] == "succeeded", view.text
        bad = client.post(
            "/api/v1/queries", json={"database": url, "query": "SELECT nope FROM tickets"}
        )
        assert bad.status_code == 422 and "nope" in bad.text
        dead = client.post(
            "/api/v1/queries",
            json={"database": url.replace(str(_port(tickets)), "1"), "query": query},
        )
        assert dead.status_code == 422, dead.text
        answers += [preview, run, view, bad, dead, client.get("/api/v1/runs")]
        answers.append(client.get(f"/api/v1/runs/{run_id}/results", params={"format": "jsonl"}))
    for answer in answers:
        _assert_no_secret(answer.text)
    for table in ("runs", "run_results"):
        _assert_no_secret(repr(pg_app.query(f"select * from {table}")))
    _assert_no_secret(pg_app.log_text())


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


# -- a database that never answers ------------------------------------------------------------------


def test_a_database_that_never_answers_fails_previews_in_bounded_time(
    pg_app: AppProcess,
) -> None:
    from openai_compat.app.runs._inputs import PREVIEW_CONNECT_TIMEOUT_S

    hung = Listener(hold=True)
    url = f"postgresql://u:pw@127.0.0.1:{hung.port}/db"
    # More previews than the API's thread pool has threads (40).
    previews = 45
    bound_s = 4 * PREVIEW_CONNECT_TIMEOUT_S

    def preview() -> tuple[int, str, float]:
        started = time.monotonic()
        with pg_app.client() as client:
            client.timeout = httpx.Timeout(bound_s + 30)
            answer = client.post("/api/v1/queries", json={"database": url, "query": "SELECT 1"})
        return answer.status_code, answer.text, time.monotonic() - started

    try:
        with concurrent.futures.ThreadPoolExecutor(previews) as pool:
            pending = [pool.submit(preview) for _ in range(previews)]
            deadline = time.monotonic() + 30
            while hung.accepted < 16 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert hung.accepted >= 16, "the previews did not reach the database"
            # Meanwhile every route that reads the store answers at once.
            with pg_app.client() as client:
                client.timeout = httpx.Timeout(5)
                for path in ("/health", "/api/v1/connectors", "/api/v1/runs"):
                    started = time.monotonic()
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.text)
                    assert time.monotonic() - started < 5, path
            results = [future.result() for future in pending]
    finally:
        hung.close()
    for status, text, took in results:
        assert status == 422, text
        assert took < bound_s, took
        assert "timeout" in text or "did not answer" in text, text


# -- 20,000 columns ------------------------------------------------------------------------------------


def test_a_dataset_of_twenty_thousand_columns_is_listed_in_linear_time(
    pg_app: AppProcess,
) -> None:
    columns = [f"c{i}" for i in range(20_000)]
    lines = [",".join(columns)] + [",".join(str(r) for _ in columns) for r in range(12)]
    data = ("\n".join(lines) + "\n").encode()
    started = time.monotonic()
    with pg_app.client() as client:
        client.timeout = httpx.Timeout(120)
        answer = client.post("/api/v1/uploads", files={"file": ("wide.csv", data)})
    took = time.monotonic() - started
    assert answer.status_code == 201, answer.text[:500]
    assert answer.json()["columns"] == columns
    # Listed one by one against those already seen, it takes minutes; linear, about a second.
    assert took < 30, took


def test_connections_and_statements_have_time_limits(tickets: str) -> None:
    from openai_compat.batch import database_rows
    from openai_compat.batch.sql_url import Connecting
    from openai_compat.errors import ConfigurationError

    hung = Listener(hold=True)
    try:
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match="timeout"):
            database_rows(
                f"postgresql://u:pw@127.0.0.1:{hung.port}/db",
                "SELECT 1",
                connecting=Connecting(connect_timeout_s=2),
            )
        assert time.monotonic() - started < 15
    finally:
        hung.close()
    # A URL's own longer (or endless) limit does not lift the preview's.
    rows = database_rows(
        f"{tickets}?connect_timeout=0",
        "SELECT pg_sleep(20), id FROM tickets",
        connecting=Connecting(connect_timeout_s=2, statement_timeout_s=1),
    )
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="statement timeout"):
        list(rows)
    assert time.monotonic() - started < 15
