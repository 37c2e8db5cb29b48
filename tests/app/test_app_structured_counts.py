"""A structured run's view counts its rows by how their answer validated: the mode, valid on
the first answer, valid after re-asks, invalid — kept with the run's progress, exact after
retry_failed, and absent from a run without a schema."""

from __future__ import annotations

import httpx

from openai_compat.testing import MockServer
from tests.app.test_app_structured import SCHEMA, _connector, _upload, _wait
from tests.conftest import CANARY


def _run(client: httpx.Client, connector_id: int, rows: int, **extra: object) -> int:
    body = {
        "input": {"upload_id": _upload(client, rows)},
        "key": "id",
        "rate": None,
        "concurrency": 2,
        **extra,
    }
    answer = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
    assert answer.status_code == 201, answer.text
    run_id: int = answer.json()["id"]
    return run_id


def test_the_run_view_counts_rows_valid_first_after_reasks_and_invalid(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, f"{keyed.url}?scenario=structured&invalid_pct=50")
    reasked = _wait(
        client, _run(client, connector_id, 10, schema=SCHEMA, reasks=1, schema_mode="json_schema")
    )
    assert reasked["structured"] == {
        "mode": "json_schema",
        "valid_first": 5,
        "valid_after_reasks": 5,
        "invalid": 0,
    }
    failing = _wait(
        client, _run(client, connector_id, 10, schema=SCHEMA, reasks=0, schema_mode="json_schema")
    )
    assert failing["structured"] == {
        "mode": "json_schema",
        "valid_first": 5,
        "valid_after_reasks": 0,
        "invalid": 5,
    }
    assert (failing["ok"], failing["failed"]) == (5, 5)
    listed = client.get("/api/v1/runs", params={"connector_id": connector_id}).json()
    assert {run["id"]: run["structured"] for run in listed["data"]}[failing["id"]] == (
        failing["structured"]
    )
    assert CANARY not in str(reasked) + str(failing)


def test_retry_failed_asks_the_invalid_rows_again_and_recounts_them(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, f"{keyed.url}?scenario=structured&invalid_pct=50")
    run_id = _run(client, connector_id, 10, schema=SCHEMA, reasks=0, schema_mode="json_schema")
    first = _wait(client, run_id)
    assert first["structured"]["invalid"] == 5
    again = client.post(f"/api/v1/runs/{run_id}/retry_failed")
    assert again.status_code in (200, 202), again.text
    view = _wait(client, run_id)
    counts = view["structured"]
    # Five rows asked again: those that validate now count as valid first, the others
    # invalid again; every row of the run is counted once.
    assert counts["valid_first"] + counts["invalid"] == 10
    assert counts["invalid"] == view["failed"] < 5
    assert counts["valid_first"] == view["ok"] > 5


def test_a_run_without_a_schema_has_no_structured_counts(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    view = _wait(client, _run(client, connector_id, 2))
    assert view["ok"] == 2 and view["structured"] is None
