"""The application's own environment and database are never reachable through its HTTP API.

A database URL given to ``POST /api/v1/queries`` or to a run is never filled from the
server's environment (``ENV["NAME"]``, whole or in any part, is refused before anything is
connected to), and the application's own database is refused as a run input or preview,
whichever way its URL is spelled. A connector's configuration may still name environment
variables, but never the application's own settings (its Fernet key, its token, its
database URL). The app runs on a real PostgreSQL with a known secret key; every answer and
the server log are searched for the key, a canary variable, and Fernet tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

_SECRET_KEY = Fernet.generate_key().decode()
# Also written as a URL's host below: under .invalid (RFC 6761) a name never resolves, so
# even a regression that filled it in could not reach anything off this machine.
_SERVER_SECRET = "srv-env-canary-41d9e0.invalid"
# Every Fernet token starts with this (version byte 0x80, base64url).
_FERNET_PREFIX = "gAAAAA"
_STEAL = "SELECT secrets_encrypted FROM connectors"


@pytest.fixture(scope="module")
def app_db(postgres: Any) -> str:
    url: str = postgres.create_database(f"app_env_{uuid.uuid4().hex[:8]}")
    return url


@pytest.fixture(scope="module")
def secret_app(app_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    proc = AppProcess(
        tmp_path_factory.mktemp("env-app") / "data",
        database=app_db,
        env={
            "OPENAI_COMPAT_SECRET_KEY": _SECRET_KEY,
            "DATABASE_URL": app_db,
            "OC_TEST_APP_DB": app_db,
            "OC_TEST_SERVER_SECRET": _SERVER_SECRET,
        },
    )
    yield proc
    proc.stop()
    log = proc.log_text()
    for secret in (_SECRET_KEY, _SERVER_SECRET, CANARY):
        assert secret not in log


@pytest.fixture(scope="module")
def saved(secret_app: AppProcess) -> int:
    """A saved connector, so that the app's table holds an encrypted key to steal."""
    with MockServer(api_key=CANARY) as endpoint, secret_app.client() as client:
        created = client.post(
            "/api/v1/connectors",
            json={"name": "victim", "configuration": make_config(endpoint.url)},
        )
    assert created.status_code == 201, created.text
    assert secret_app.query("select secrets_encrypted from connectors")
    connector_id: int = created.json()["id"]
    return connector_id


def _assert_nothing_leaked(text: str) -> None:
    for secret in (_SECRET_KEY, _SERVER_SECRET, CANARY, _FERNET_PREFIX):
        assert secret not in text


_ENV_URLS = [
    'postgresql://ENV["OPENAI_COMPAT_SECRET_KEY"]@127.0.0.1:1/x',
    'postgresql://u:ENV["OC_TEST_SERVER_SECRET"]@127.0.0.1:1/x',
    'postgresql://u@ENV["OC_TEST_SERVER_SECRET"]:1/x',
    'postgresql://u@127.0.0.1:1/ENV["OC_TEST_SERVER_SECRET"]',
    'postgresql://u@127.0.0.1:1/x?application_name=ENV["OC_TEST_SERVER_SECRET"]',
    'ENV["OC_TEST_APP_DB"]',
    " ENV['DATABASE_URL'] ",
]


@pytest.mark.parametrize("url", _ENV_URLS)
def test_a_database_url_from_the_api_is_never_filled_from_the_server_environment(
    secret_app: AppProcess, saved: int, url: str
) -> None:
    with secret_app.client() as client:
        preview = client.post("/api/v1/queries", json={"database": url, "query": _STEAL})
        assert preview.status_code == 422, preview.text
        error = preview.json()["error"]["errors"][0]
        assert error["field"] == "database"
        assert "ENV[" in error["message"] and "environment" in error["message"]
        _assert_nothing_leaked(preview.text)
        before = client.get("/api/v1/runs").json()["total"]
        run = client.post(
            f"/api/v1/connectors/{saved}/runs",
            json={
                "input": {"database": url, "query": _STEAL},
                "key": "secrets_encrypted",
                "rate": None,
            },
        )
        assert run.status_code == 422, run.text
        assert run.json()["error"]["errors"][0]["field"] == "input.database"
        _assert_nothing_leaked(run.text)
        assert client.get("/api/v1/runs").json()["total"] == before


def _spellings(app_db: str) -> list[str]:
    # The same database three ways: as configured, by another host name, by another scheme.
    return [
        app_db,
        app_db.replace("127.0.0.1", "localhost"),
        app_db.replace("postgresql://", "postgres://"),
    ]


def test_the_application_database_is_refused_as_a_preview_and_as_a_run_input(
    secret_app: AppProcess, saved: int, app_db: str
) -> None:
    with secret_app.client() as client:
        for url in _spellings(app_db):
            preview = client.post("/api/v1/queries", json={"database": url, "query": _STEAL})
            assert preview.status_code == 422, preview.text
            error = preview.json()["error"]["errors"][0]
            assert error["field"] == "database"
            assert "application's own database" in error["message"]
            _assert_nothing_leaked(preview.text)
            run = client.post(
                f"/api/v1/connectors/{saved}/runs",
                json={"input": {"database": url, "query": _STEAL}, "key": "id", "rate": None},
            )
            assert run.status_code == 422, run.text
            assert "application's own database" in run.text
            _assert_nothing_leaked(run.text)


def test_another_database_on_the_same_server_is_still_a_run_input(
    secret_app: AppProcess, postgres: Any
) -> None:
    import psycopg

    other = postgres.create_database(f"other_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(other) as conn:
        conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES ('a')")
    with secret_app.client() as client:
        preview = client.post(
            "/api/v1/queries", json={"database": other, "query": "SELECT id FROM t"}
        )
    assert preview.status_code == 200, preview.text
    assert preview.json()["sample"] == [{"id": "a"}]


@pytest.mark.parametrize(
    "name", ["OPENAI_COMPAT_SECRET_KEY", "OPENAI_COMPAT_TOKEN", "DATABASE_URL"]
)
def test_a_connector_cannot_name_the_application_settings(
    secret_app: AppProcess, name: str
) -> None:
    with MockServer() as endpoint, secret_app.client() as client:
        reference = f'ENV["{name}"]'
        config = make_config(endpoint.url, api_key=reference)
        saved = client.post(
            "/api/v1/connectors", json={"name": f"n-{name}", "configuration": config}
        )
        assert saved.status_code == 422, saved.text
        error = saved.json()["error"]["errors"][0]
        assert error["field"] == "configuration.api_key" and name in error["message"]
        check = client.post(
            "/api/v1/connector_definitions/check_connection", json={"configuration": config}
        )
        assert check.status_code == 422, check.text
        for answer in (saved, check):
            _assert_nothing_leaked(answer.text)
        # Nothing was sent: the key would have gone to the endpoint as a bearer token.
        assert endpoint.requests == []


def test_a_stored_run_whose_url_names_the_environment_fails_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run stored before URLs from the API were checked: executing it reads nothing from
    # the environment and fails with a message that holds no resolved value.
    from openai_compat.app.runs._inputs import RunInputError, open_input
    from openai_compat.app.runs.stored import StoredRun
    from openai_compat.app.secrets.credentials import KeyCipher

    monkeypatch.setenv("OC_TEST_SERVER_SECRET", _SERVER_SECRET)
    cipher = KeyCipher(Fernet.generate_key().decode())
    spec = {
        "input": {"database": "postgresql://u:***@127.0.0.1:1/x", "query": "SELECT 1"},
        "database_url_encrypted": cipher.encrypt(
            'postgresql://ENV["OC_TEST_SERVER_SECRET"]@127.0.0.1:1/x'
        ),
    }
    with pytest.raises(RunInputError) as caught:
        open_input(StoredRun.model_validate(spec), tmp_path, store=None, cipher=cipher)  # type: ignore[arg-type]
    assert "ENV[" in str(caught.value)
    assert _SERVER_SECRET not in str(caught.value)
