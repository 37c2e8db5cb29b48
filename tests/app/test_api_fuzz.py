"""A property-based fuzz of the HTTP API from its own OpenAPI document (schemathesis).

``openai-compat serve`` runs on SQLite with the canary key saved as a connector's API key
and set as ``OC_TEST_PROVIDER_KEY``; schemathesis generates requests for every operation of
``/openapi.json`` and every answer must be: no 5xx, a documented status, the documented
content type and schema, and never the canary key (body or headers).

Traffic stays on loopback: a generated body's endpoint URL (``configuration.url``) is
replaced by the MockServer's on 127.0.0.1, and a generated proxy is dropped, before the
request is sent; the saved connectors point at the MockServer too. (The application's
egress policy can refuse link-local or private addresses, not allow loopback alone, so
the bodies are constrained instead.) Bounded and reproducible: a fixed number of examples
per operation and mode (valid requests, then invalid ones), derandomized, no example
database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import APP_KEY_ENV, CANARY, make_config

_EXAMPLES = 25


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


def _on_loopback(case: Any, server: MockServer) -> None:
    """Point a generated configuration at the MockServer, and drop a generated proxy."""
    body = case.body
    if not isinstance(body, dict):
        return
    configuration = body.get("configuration")
    if not isinstance(configuration, dict):
        return
    if isinstance(configuration.get("url"), str):
        configuration["url"] = server.url
    advanced = configuration.get("advanced")
    if isinstance(advanced, dict):
        advanced.pop("proxy", None)
    elif isinstance(advanced, str):
        # Options given as JSON text could name a proxy too.
        configuration.pop("advanced")


def no_canary(ctx: Any, response: Any, case: Any) -> bool | None:
    """The canary key is in no answer: not its body, not a header."""
    assert CANARY.encode() not in response.content, "the API key is in a response body"
    assert CANARY not in json.dumps(dict(response.headers)), "the API key is in a header"
    return None


_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    no_canary,
]


def _fuzz(operation: Any, fuzzed: _Fuzzed, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case: Any) -> None:
        _on_loopback(case, fuzzed.server)
        case.call_and_validate(
            base_url=fuzzed.app.url, headers=fuzzed.auth, timeout=30, checks=_CHECKS
        )

    run()


def test_every_operation_answers_as_documented(fuzzed: _Fuzzed) -> None:
    # One loop rather than schemathesis's pytest plugin: its lazy loader does not run on
    # pytest 9, and the document is only known once the application runs.
    api = schemathesis.openapi.from_url(fuzzed.app.url + "/openapi.json", headers=fuzzed.auth)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    failures: list[str] = []
    # Valid requests, and requests that break the schema (which must be refused, 4xx).
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            try:
                _fuzz(operation, fuzzed, mode)
            except Unsatisfiable:
                # An operation without any input (GET /health) has no invalid request.
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except Exception as exc:  # every operation is fuzzed; all failures reported
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert not failures, "\n\n".join(failures)


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
