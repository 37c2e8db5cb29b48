"""A property-based fuzz of the HTTP API from its own OpenAPI document (schemathesis).

``openai-compat serve`` runs on SQLite with the canary key saved as a connector's API key
and set as ``OC_TEST_PROVIDER_KEY``; schemathesis's runner (``st run``) generates requests
for every operation of ``/openapi.json`` (examples, coverage and fuzzing phases; valid and
invalid requests) with every check it has: no 5xx, documented statuses, content types,
schemas and headers, invalid requests refused, schema-valid requests accepted, a method a
path does not take answered 405 with its ``Allow``, and never the canary key (body or
headers; `fuzz_hooks.no_canary`).

Traffic stays on loopback (`fuzz_hooks.before_call`): a generated body's endpoint URL
(``configuration.url``) is replaced by the MockServer's on 127.0.0.1, a generated proxy is
dropped, and a generated database URL becomes a loopback one nothing listens on; the saved
connectors point at the MockServer too. (The application's egress policy can refuse
link-local or private addresses, not allow loopback alone, so the bodies are constrained
instead.) A schema-valid request refused is a finding unless each of the 422's problems is
one the document cannot declare (`fuzz_hooks.UNDECLARABLE`: a text that must parse as JSON,
a database that must answer, an upload that must exist, a filename that must say its format).
Bounded and reproducible: a fixed number of examples per operation, deterministic.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import APP_KEY_ENV, CANARY, make_config

_EXAMPLES = 25
_ROOT = Path(__file__).resolve().parents[2]


class _Fuzzed:
    def __init__(self, app: AppProcess, server: MockServer, ids: list[int]) -> None:
        self.app = app
        self.server = server
        self.ids = ids
        self.auth = {"Authorization": f"Bearer {app.token}"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Fuzzed]:
    with MockServer() as server:
        app = AppProcess(tmp_path_factory.mktemp("fuzz"), env={APP_KEY_ENV: CANARY})
        try:
            ids = []
            with app.client() as client:
                for name, key in (("canary", CANARY), ("by-env", f'ENV["{APP_KEY_ENV}"]')):
                    config = make_config(
                        server.url,
                        api_key=key,
                        advanced={"secret_headers": {"X-Gateway-Key": CANARY}},
                    )
                    created = client.post(
                        "/api/v1/connectors", json={"name": name, "configuration": config}
                    )
                    assert created.status_code == 201, created.text
                    ids.append(created.json()["id"])
                _finished_run(client, ids[0])
            yield _Fuzzed(app, server, ids)
        finally:
            app.stop()
        assert CANARY not in app.log_text(), "the API key leaked to the server log"


def _finished_run(client: Any, connector_id: int) -> None:
    """A run with results, so the run routes are fuzzed on a run that exists too."""
    upload = client.post(
        "/api/v1/uploads", files={"file": ("rows.csv", b"id,text\n1,hello\n2,there\n")}
    )
    assert upload.status_code == 201, upload.text
    run = client.post(
        f"/api/v1/connectors/{connector_id}/runs",
        json={"input": {"upload_id": upload.json()["id"]}, "key": "id"},
    )
    assert run.status_code == 201, run.text
    for _ in range(100):
        if client.get(f"/api/v1/runs/{run.json()['id']}").json()["status"] == "succeeded":
            return
        time.sleep(0.1)
    raise AssertionError("the fuzz's run did not finish")


def test_every_operation_answers_as_documented_with_every_check(
    fuzzed: _Fuzzed, tmp_path: Path
) -> None:
    # Schemathesis's own runner, with every check it has (and the canary one of
    # fuzz_hooks): its coverage phase sends the methods a path does not take (405 and its
    # Allow), and its checks include "schema-valid request rejected". The document is only
    # known once the application runs, so the runner is started here.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
        "SCHEMATHESIS_HOOKS": "tests.app.fuzz_hooks",
        "FUZZ_MOCK_URL": fuzzed.server.url,
        "FUZZ_CANARY": CANARY,
    }
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        fuzzed.app.url + "/openapi.json",
        "--header",
        f"Authorization: Bearer {fuzzed.app.token}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(_EXAMPLES),
        "--generation-deterministic",
        "--continue-on-failure",
        "--max-failures",
        "1000",
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--no-color",
        *os.environ.get("FUZZ_EXTRA", "").split(),
    ]
    done = subprocess.run(command, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=170)
    report = done.stdout + done.stderr
    assert CANARY not in report
    assert done.returncode == 0, report[-20000:]
    tested = re.search(r"(\d+) passed", report)
    assert tested and int(tested.group(1)) >= 20, report[-3000:]


def test_the_fuzz_reaches_the_saved_canary_and_only_loopback(fuzzed: _Fuzzed) -> None:
    """The canary connectors were there to be found (listed masked), and every request
    the application sent went to the MockServer."""
    with fuzzed.app.client() as client:
        listed = client.get("/api/v1/connectors", params={"limit": 500})
    assert listed.status_code == 200
    assert CANARY not in listed.text
    for request in fuzzed.server.requests:
        assert request.path.startswith("/v1/"), request.path
    assert Path(fuzzed.app.log_path).exists()
