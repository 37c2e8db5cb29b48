"""Runs in the application against hostile inputs: keys that collide or cannot be stored,
money counted exactly, prices out of bounds, cancel then resume, outputs the sample lacks.

Each test runs on SQLite and on PostgreSQL (the shared ``app`` fixture) against a real
scripted server on loopback.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_compat.testing import MockServer
from tests.app import test_app_runs as base
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config


def _results(client: httpx.Client, run_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/runs/{run_id}/results", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def test_an_output_path_the_sample_response_lacks_is_accepted(
    client: httpx.Client, keyed: MockServer
) -> None:
    config = make_config(keyed.url, request_format=base._REQUEST, response_format="{}")
    created = client.post("/api/v1/connectors", json={"name": "bare", "configuration": config})
    assert created.status_code == 201, created.text
    upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(2)))
    run_id = base._start(client, created.json()["id"], upload["id"])
    view = base._wait(client, run_id)
    assert view["ok"] == 2 and view["output_names"] == ["reply"]
    assert [line["output"]["reply"][:9] for line in _results(client, run_id)] == ["You said:"] * 2


def test_ten_dimes_spend_a_one_dollar_budget_exactly(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = base._connector(client, keyed.url)
    upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(20)))
    # Each answer reports 4 completion tokens: $0.10 a row.
    run_id = base._start(
        client,
        connector_id,
        upload["id"],
        concurrency=1,
        prices="input=0,output=25000",
        max_cost=1,
    )
    view = base._wait(client, run_id, ("cancelled", "succeeded", "failed"))
    assert view["status"] == "cancelled", view
    assert view["ok"] == 10 and view["cost"] == 1.0
    assert "spent $1.0000 of the max_cost budget of $1.00" in view["error"]
    assert [line["cost"] for line in _results(client, run_id)] == [0.1] * 10


def test_prices_out_of_bounds_are_refused_and_answers_are_always_json(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = base._connector(client, keyed.url)
    upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(1)))
    body = {"input": {"upload_id": upload["id"]}, "key": "id", "outputs": base._OUTPUTS}
    for prices in ({"input": 1e308, "output": 1}, "input=1,output=1e308"):
        answer = client.post(
            f"/api/v1/connectors/{connector_id}/runs", json={**body, "prices": prices}
        )
        assert answer.status_code == 422, answer.text
        assert "at most 1000000 USD per million tokens" in answer.text


def test_a_json_answer_never_holds_nan_or_infinity() -> None:
    from openai_compat.app.http import json_answer, json_document

    for render in (json_document, json_answer):
        answer = render({"cost": float("inf"), "rows_per_s": float("nan"), "ok": 1.5})
        assert json.loads(answer.body, parse_constant=lambda name: pytest.fail(name)) == {
            "cost": None,
            "rows_per_s": None,
            "ok": 1.5,
        }


def test_a_run_whose_real_key_looks_like_a_fallback_ends_with_every_row_once(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = base._connector(client, keyed.url)
    rows = [{"id": "row:1", "body": "a"}, {"id": "", "body": "b"}, {"id": "x", "body": "c"}]
    upload = base._upload(client, "rows.jsonl", base._jsonl(rows))
    sent = len(keyed.requests)
    run_id = base._start(client, connector_id, upload["id"])
    view = base._wait(client, run_id, ("succeeded", "failed"), timeout=20)
    assert (view["status"], view["ok"], view["failed"]) == ("succeeded", 2, 1), view
    lines = _results(client, run_id)
    assert len({line["key"] for line in lines}) == 3
    assert len(keyed.requests) - sent == 2  # each row sent once, never again


def test_a_nul_in_a_key_is_stored_and_the_run_ends(client: httpx.Client, keyed: MockServer) -> None:
    connector_id = base._connector(client, keyed.url)
    rows = [
        {"id": "a\x00b", "body": "a"},
        {"id": "a\ufffdb", "body": "b"},
        {"id": "a\\0b", "body": "c"},
    ]
    upload = base._upload(client, "rows.jsonl", base._jsonl(rows))
    sent = len(keyed.requests)
    run_id = base._start(client, connector_id, upload["id"])
    view = base._wait(client, run_id, ("succeeded", "failed"), timeout=20)
    assert (view["status"], view["ok"], view["failed"]) == ("succeeded", 3, 0), view
    assert sorted(line["key"] for line in _results(client, run_id)) == sorted(r["id"] for r in rows)
    # Run again, it finds every key stored: nothing is sent again.
    again = client.post(f"/api/v1/runs/{run_id}/retry_failed")
    assert again.status_code == 200 and again.json()["status"] == "queued", again.text
    assert base._wait(client, run_id, ("succeeded", "failed"), timeout=20)["ok"] == 3
    assert len(keyed.requests) - sent == 3


@pytest.fixture(params=["sqlite", "postgresql"])
def run_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A run store on a fresh real database, migrated as the application migrates it."""
    from openai_compat.app.db.database import database_url, migrate, open_engine
    from openai_compat.app.runs.store import RunStore

    configured = ""
    if request.param == "postgresql":
        configured = request.getfixturevalue("postgres").create_database(
            f"s_{uuid.uuid4().hex[:12]}"
        )
    engine = open_engine(database_url(configured, tmp_path / "app.db"))
    migrate(engine)
    yield RunStore(engine)
    engine.dispose()


def test_a_write_the_database_refuses_ends_the_run_instead_of_letting_it_go(
    run_store: Any,
) -> None:
    from openai_compat.app.runs.store import Progress, ResultRecord, ResultsRefused
    from openai_compat.app.runs.stored import StoredRun

    created = run_store.create(1, StoredRun(input={"upload_id": "u"}), ["reply"], 3)
    assert run_store.claim("me", 30.0).id == created.id
    keys = ["a\x00b", "\u2400x", "\u2400a\\0b"]  # NUL, and what an escape could look like

    def write(*records: ResultRecord) -> bool:
        done: bool = run_store.write_results(
            created.id, "me", 30.0, list(records), Progress(ok=len(records)), 0.1, {}
        )
        return done

    assert write(*(ResultRecord(k, i, True, "{}") for i, k in enumerate(keys)))
    assert run_store.done_keys(created.id) == set(keys)
    with pytest.raises(ResultsRefused) as refused:
        write(ResultRecord("a\x00b", 3, True, "{}"))
    assert "refused to store 1 results" in str(refused.value)
    assert "no row is sent again" in str(refused.value)
    assert run_store.get(created.id).ok == 3  # the refused write changed nothing


def _executing(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("openai_compat_runs_executing "):
            return float(line.split()[1])
    raise AssertionError("no openai_compat_runs_executing in /metrics")


def test_cancel_then_resume_back_to_back_keeps_the_executor_counting(
    client: httpx.Client,
) -> None:
    # Answers take 0.2 s, so each run is still running while the test looks.
    with MockServer(latency_s=0.2, api_key=CANARY) as slow:
        connector_id = base._connector(client, slow.url)
        upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(300)))
        runs = [base._start(client, connector_id, upload["id"], concurrency=2)]
        base._wait(client, runs[0], ("running",))
        time.sleep(0.5)
        assert client.post(f"/api/v1/runs/{runs[0]}/cancel").status_code == 200
        resumed = client.post(f"/api/v1/runs/{runs[0]}/resume")
        assert resumed.status_code == 200, resumed.text
        runs += [base._start(client, connector_id, upload["id"], concurrency=2) for _ in "bc"]
        try:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                statuses = [client.get(f"/api/v1/runs/{r}").json()["status"] for r in runs]
                running = statuses.count("running")
                assert running <= 2, f"{running} runs execute with the limit at 2: {statuses}"
                if running:
                    assert _executing(client) >= 1, statuses
                time.sleep(0.1)
            # The resumed run is still executed, and counted: the limit (2) is full with it.
            statuses = [client.get(f"/api/v1/runs/{r}").json()["status"] for r in runs]
            assert statuses == ["running", "running", "queued"], statuses
            assert _executing(client) == 2
        finally:
            for run_id in runs:
                client.post(f"/api/v1/runs/{run_id}/cancel")
            for run_id in runs:
                base._wait(client, run_id, ("cancelled",))
            time.sleep(1.0)  # the executor lets go of them before the server stops


def _streaming_connector(client: httpx.Client, url: str, **extra: Any) -> int:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "{{body}}"}]}
    body.update(extra)
    config = make_config(url, request_format=json.dumps(body), is_stream=True)
    created = client.post("/api/v1/connectors", json={"name": "s", "configuration": config})
    assert created.status_code == 201, created.text
    connector_id: int = created.json()["id"]
    return connector_id


def test_streamed_rows_ask_for_usage_and_a_run_says_when_cost_cannot_be_counted(
    client: httpx.Client, keyed: MockServer
) -> None:
    upload = base._upload(client, "rows.jsonl", base._jsonl(base._rows(8)))
    budget = {"concurrency": 1, "prices": "input=0,output=25000", "max_cost": 0.3}
    counted = base._start(client, _streaming_connector(client, keyed.url), upload["id"], **budget)
    view = base._wait(client, counted, ("cancelled", "succeeded", "failed"))
    assert (view["status"], view["ok"], view["cost"]) == ("cancelled", 3, 0.3), view
    # The request format's own stream_options are kept: no usage, so no cost to count.
    bare = _streaming_connector(client, keyed.url, stream_options={"include_usage": False})
    uncounted = base._start(client, bare, upload["id"], **budget)
    view = base._wait(client, uncounted, ("cancelled", "succeeded", "failed"))
    assert (view["status"], view["ok"]) == ("succeeded", 8), view
    assert "its cost could not be counted" in view["error"]
    assert "stream_options.include_usage" in view["error"]


def test_a_run_whose_results_the_database_refuses_fails_and_is_not_sent_again(
    app: AppProcess, client: httpx.Client, keyed: MockServer
) -> None:
    import sqlalchemy as sa

    # The database refuses the results of one key, as a constraint of its own would.
    url = app.database or f"sqlite:///{app.data_dir / 'openai-compat.db'}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    if engine.dialect.name == "postgresql":
        create = "ALTER TABLE run_results ADD CONSTRAINT poison CHECK (key <> 'poison')"
        drop = "ALTER TABLE run_results DROP CONSTRAINT poison"
    else:
        create = (
            "CREATE TRIGGER poison BEFORE INSERT ON run_results WHEN NEW.key = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poison'); END"
        )
        drop = "DROP TRIGGER poison"
    with engine.begin() as connection:
        connection.execute(sa.text(create))
    try:
        connector_id = base._connector(client, keyed.url)
        rows = [{"id": "poison", "body": "a"}]
        upload = base._upload(client, "rows.jsonl", base._jsonl(rows))
        sent = len(keyed.requests)
        run_id = base._start(client, connector_id, upload["id"])
        view = base._wait(client, run_id, ("failed", "succeeded"), timeout=20)
        assert view["status"] == "failed", view
        assert "the database refused to store 1 results" in view["error"]
        time.sleep(1.0)
        assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "failed"
        assert len(keyed.requests) - sent == 1  # sent once, never again
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(drop))
        engine.dispose()
