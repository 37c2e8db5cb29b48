"""Batch runs in the application, over real servers: uploads, runs, events, results, metrics.

The shared ``app`` fixture runs on SQLite and on PostgreSQL; the restart and take-over
tests start their own ``openai-compat serve`` processes (killed with SIGKILL mid-run).
The scripted endpoint wants the canary key, so every row that succeeds proves the stored
key was used; the canary is then looked for in every table and in the server logs.
"""

from __future__ import annotations

import gzip
import io
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_compat.batch import run_batch_sync
from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

_REQUEST = '{"model": "m", "messages": [{"role": "user", "content": "{{body}}"}]}'
_MAPPING = [{"name": "messages.0.content", "value": "body", "value_type": "dynamic"}]
_OUTPUTS = [{"name": "choices.0.message.content", "as": "reply"}]


def _connector(client: httpx.Client, url: str) -> int:
    config = make_config(url, request_format=_REQUEST)
    created = client.post("/api/v1/connectors", json={"name": "runs", "configuration": config})
    assert created.status_code == 201, created.text
    connector_id: int = created.json()["id"]
    return connector_id


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _upload(client: httpx.Client, name: str, data: bytes) -> dict[str, Any]:
    answer = client.post("/api/v1/uploads", files={"file": (name, data)})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _rows(n: int, *, missing: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    return [
        {"id": f"t-{i}"} if i in missing else {"id": f"t-{i}", "body": f"ticket {i}"}
        for i in range(n)
    ]


def _start(client: httpx.Client, connector_id: int, upload_id: str, **extra: Any) -> int:
    body = {"input": {"upload_id": upload_id}, "mapping": _MAPPING, "outputs": _OUTPUTS}
    body.update({"key": "id", "rate": None, **extra})
    answer = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "queued"
    run_id: int = answer.json()["id"]
    return run_id


def _wait(
    client: httpx.Client, run_id: int, statuses: tuple[str, ...] = ("succeeded",), timeout=60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        if view["status"] in statuses:
            return view
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {statuses}: {view}")


def _without_latency(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: v for k, v in x.items() if k != "latency_ms"} for x in lines), key=str)


# -- uploads --------------------------------------------------------------------------------
def test_uploads_of_every_format_show_columns_and_first_rows(client: httpx.Client) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows(25)
    csv_text = "id,body\n" + "".join(f"{r['id']},{r['body']}\n" for r in rows)
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    for name, data, fmt in [
        ("rows.csv", csv_text.encode(), "csv"),
        ("rows.jsonl", _jsonl(rows), "jsonl"),
        ("rows.jsonl.gz", gzip.compress(_jsonl(rows)), "jsonl"),
        ("rows.csv.gz", gzip.compress(csv_text.encode()), "csv"),
        ("rows.parquet", parquet.getvalue(), "parquet"),
    ]:
        found = _upload(client, name, data)
        assert found["format"] == fmt and found["filename"] == name
        assert found["columns"] == ["id", "body"]
        assert found["sample"][:2] == rows[:2] and len(found["sample"]) == 10
        assert found["rows_estimate"] == 25
        assert client.get(f"/api/v1/uploads/{found['id']}").json() == found


def test_uploads_that_cannot_be_read_are_refused_clearly(client: httpx.Client) -> None:
    as_json = client.post("/api/v1/uploads", json={"file": "rows.csv"})
    assert as_json.status_code == 415 and "multipart/form-data" in as_json.text
    unknown = client.post("/api/v1/uploads", files={"file": ("rows.txt", b"a,b\n1,2\n")})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["errors"][0]["field"] == "file"
    assert "cannot tell the format" in unknown.text
    bad = client.post("/api/v1/uploads", files={"file": ("rows.parquet", b"not parquet")})
    assert bad.status_code == 422 and "Parquet" in bad.text
    wrong_part = client.post("/api/v1/uploads", files={"data": ("rows.csv", b"a\n1\n")})
    assert wrong_part.status_code == 422 and "'file'" in wrong_part.text
    unauthenticated = httpx.post(
        str(client.base_url) + "/api/v1/uploads", files={"file": ("r.csv", b"a\n1\n")}
    )
    assert unauthenticated.status_code == 401


def test_the_input_formats_are_the_ones_every_engine_reads(client: httpx.Client) -> None:
    answer = client.get("/api/v1/input_formats")
    assert answer.status_code == 200
    body = answer.json()
    names = [f["name"] for f in body["data"]]
    assert {"jsonl", "csv", "parquet"} <= set(names)
    offered = body["accept"].split(",")
    assert ".json" not in offered and {".csv", ".jsonl", ".parquet", ".gz"} <= set(offered)
    assert all(s in offered or s.endswith(".gz") for f in body["data"] for s in f["suffixes"])
    # A .json file is refused as every engine refuses it, without pointing at a CLI flag.
    refused = client.post("/api/v1/uploads", files={"file": ("rows.json", b'{"a": 1}\n')})
    assert refused.status_code == 422
    message = refused.json()["error"]["errors"][0]["message"]
    assert ".jsonl" in message and "--input-format" not in message
    assert httpx.get(str(client.base_url) + "/api/v1/input_formats").status_code == 401


def test_an_upload_over_the_cap_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    app = AppProcess(tmp_path / "data", env={"OPENAI_COMPAT_MAX_UPLOAD_BYTES": "100000"})
    try:
        with app.client() as client:
            big = b"id,body\n" + b"".join(b"%d,%s\n" % (i, b"x" * 100) for i in range(2000))
            refused = client.post("/api/v1/uploads", files={"file": ("big.csv", big)})
            assert refused.status_code == 413, refused.text
            error = refused.json()["error"]
            assert "OPENAI_COMPAT_MAX_UPLOAD_BYTES" in error["message"]
            assert error["max_upload_bytes"] == 100000

            # Streamed (chunked, no length declared): refused as it passes the cap.
            def chunks() -> Iterator[bytes]:
                boundary = b"--b0undary"
                yield boundary + b'\r\nContent-Disposition: form-data; name="file"; '
                yield b'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
                for _ in range(50):
                    yield big[:10000]
                yield b"\r\n" + boundary + b"--\r\n"

            streamed = client.post(
                "/api/v1/uploads",
                content=chunks(),
                headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
            )
            assert streamed.status_code == 413, streamed.text
            small = _upload(client, "small.csv", b"id,body\n1,x\n")
            assert small["rows_estimate"] == 1
        left = sorted(p.name for p in (tmp_path / "data" / "uploads").iterdir())
        assert left == [f"{small['id']}.csv"]
    finally:
        app.stop()


# -- creating runs --------------------------------------------------------------------------
def test_a_run_is_checked_whole_before_it_is_created(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    upload = _upload(client, "rows.jsonl", _jsonl(_rows(3)))
    before = client.get("/api/v1/runs").json()["total"]
    bad = client.post(
        f"/api/v1/connectors/{connector_id}/runs",
        json={
            "input": {"upload_id": upload["id"]},
            "mapping": [{"name": "messages.0.content", "value": "text", "value_type": "dynamic"}],
            "outputs": [{"name": "choices.0.message.refusal", "as": "r"}],
            "key": "ticket_id",
            "rate": "fast",
            "max_cost": 5,
        },
    )
    assert bad.status_code == 422
    fields = [e["field"] for e in bad.json()["error"]["errors"]]
    # A path the sample response lacks is accepted: the sample is a sample.
    assert fields == ["mapping[0].value", "key", "max_cost", "rate"]
    assert "needs prices" in bad.text
    assert "'text'" in bad.text and "'id', 'body'" in bad.text
    no_upload = client.post(
        f"/api/v1/connectors/{connector_id}/runs", json={"input": {"upload_id": "nope"}}
    )
    assert no_upload.status_code == 422 and "there is no upload" in no_upload.text
    placeholder = client.post(
        f"/api/v1/connectors/{connector_id}/runs",
        json={"input": {"upload_id": _upload(client, "o.csv", b"id,text\n1,x\n")["id"]}},
    )
    assert placeholder.status_code == 422 and "{{body}}" in placeholder.text
    assert client.post("/api/v1/connectors/999999/runs", json={"input": {}}).status_code == 404
    assert client.get("/api/v1/runs").json()["total"] == before


def test_a_run_request_is_checked_as_its_run_spec_with_the_words_of_every_door(
    client: httpx.Client, keyed: MockServer
) -> None:
    from openai_compat.batch.spec import RunSpec
    from openai_compat.errors import ConfigurationError

    connector_id = _connector(client, keyed.url)
    upload = _upload(client, "rows.jsonl", _jsonl(_rows(2)))
    options: dict[str, Any] = {"max_cost": 5, "max_tokens": 0, "prices": "input=1"}
    bad = client.post(
        f"/api/v1/connectors/{connector_id}/runs",
        json={"input": {"upload_id": upload["id"]}, "mapping": _MAPPING, **options},
    )
    assert bad.status_code == 422
    answered = [(e["field"], e["message"]) for e in bad.json()["error"]["errors"]]
    with pytest.raises(ConfigurationError) as caught:
        RunSpec.build(make_config(keyed.url, request_format=_REQUEST), **options)
    assert answered == [(p.field, p.message) for p in caught.value.problems]
    no_prices = client.post(
        f"/api/v1/connectors/{connector_id}/runs",
        json={"input": {"upload_id": upload["id"]}, "mapping": _MAPPING, "max_cost": 5},
    )
    with pytest.raises(ConfigurationError) as local:
        run_batch_sync(make_config(keyed.url), [], max_cost=5)
    assert no_prices.json()["error"]["errors"] == [
        {"field": "max_cost", "message": local.value.reason}
    ]


def test_a_run_takes_prices_per_model_and_shows_them_as_given(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    upload = _upload(client, "rows.jsonl", _jsonl(_rows(3)))
    prices = {"m": {"input": 1000, "output": 2000}, "*": "input=0,output=0"}
    run_id = _start(client, connector_id, upload["id"], prices=prices, rate="10/s")
    view = _wait(client, run_id)
    assert view["status"] == "succeeded", view
    assert view["prices"] == prices and view["rate"] == "10/s"
    assert view["cost"] is not None and view["cost"] > 0  # priced by the model asked for


# -- running --------------------------------------------------------------------------------
def test_a_run_stores_the_clis_result_lines_and_marks_failed_rows(
    client: httpx.Client, keyed: MockServer, tmp_path: Path
) -> None:
    rows = _rows(40, missing=(7,))
    connector_id = _connector(client, keyed.url)
    upload = _upload(client, "rows.jsonl", _jsonl(rows))
    run_id = _start(client, connector_id, upload["id"], concurrency=8)
    view = _wait(client, run_id)
    assert (view["total"], view["done"], view["ok"], view["failed"]) == (40, 40, 39, 1)
    assert view["tokens"] == 39 * 14 and view["requests"] == 39
    assert view["rows_per_s"] > 0 and view["eta_s"] == 0.0 and view["finished_at"]

    download = client.get(f"/api/v1/runs/{run_id}/results", params={"format": "jsonl"})
    assert download.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in download.headers["content-disposition"]
    stored = [json.loads(line) for line in download.text.splitlines()]
    # The CLI, on the same rows and options, in the same test.
    source = tmp_path / "rows.jsonl"
    source.write_bytes(_jsonl(rows))
    out = tmp_path / "out.jsonl"
    config = make_config(keyed.url, request_format=_REQUEST)
    run_batch_sync(config, source, out, mapping=_MAPPING, outputs=_OUTPUTS, key="id", rate=None)
    cli = [json.loads(line) for line in out.read_text().splitlines()]
    assert _without_latency(stored) == _without_latency(cli)
    assert all(list(a) == list(b) for a, b in zip(stored, cli, strict=True))  # same keys, order

    failed = client.get(f"/api/v1/runs/{run_id}/results", params={"failed": "true"}).json()
    assert [r["key"] for r in failed["data"]] == ["t-7"]
    assert "body" in failed["data"][0]["error"]["message"]

    csv_text = client.get(f"/api/v1/runs/{run_id}/results", params={"format": "csv"}).text
    cli_csv = tmp_path / "out.csv"
    run_batch_sync(config, source, cli_csv, mapping=_MAPPING, outputs=_OUTPUTS, key="id", rate=None)
    assert csv_text.splitlines()[0] == cli_csv.read_text().splitlines()[0]
    assert len(csv_text.splitlines()) == 41

    # JSON pages: every result once, in the order stored.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/v1/runs/{run_id}/results", params=params).json()
        seen += [r["key"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["key"] for r in stored]
    bad_cursor = client.get(f"/api/v1/runs/{run_id}/results", params={"cursor": "x"})
    assert bad_cursor.status_code == 422


def test_events_report_progress_then_the_end(client: httpx.Client, tmp_path: Path) -> None:
    with MockServer(latency_s=0.05, api_key=CANARY) as slow:
        connector_id = _connector(client, slow.url)
        # About 2.5 s of rows: several progress events while it runs.
        upload = _upload(client, "rows.jsonl", _jsonl(_rows(200)))
        run_id = _start(client, connector_id, upload["id"], concurrency=4)
        events = []
        with client.stream("GET", f"/api/v1/runs/{run_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for block in stream.iter_text():
                events.append(block)
        text = "".join(events)
    parsed = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        parsed.append((lines["event"], json.loads(lines["data"])))
    names = [name for name, _ in parsed]
    assert names[-1] == "done" and set(names[:-1]) == {"progress"} and len(names) >= 3
    assert parsed[-1][1]["status"] == "succeeded" and parsed[-1][1]["done"] == 200
    running = [data for name, data in parsed if data["status"] == "running" and data["done"]]
    assert running, parsed
    live = running[-1]["live"]
    assert live["rows_per_s"] > 0 and live["latency_ms"]["p50"] >= 50


def test_cancel_resume_retry_failed_and_delete(client: httpx.Client) -> None:
    with MockServer(latency_s=0.05, api_key=CANARY) as slow:
        connector_id = _connector(client, slow.url)
        upload = _upload(client, "rows.jsonl", _jsonl(_rows(200, missing=(3, 150))))
        run_id = _start(client, connector_id, upload["id"], concurrency=2)
        _wait(client, run_id, ("running",))
        while client.get(f"/api/v1/runs/{run_id}").json()["done"] < 5:
            time.sleep(0.05)
        cancelled = client.post(f"/api/v1/runs/{run_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(0.5)
        stopped = client.get(f"/api/v1/runs/{run_id}").json()
        assert stopped["status"] == "cancelled" and 5 <= stopped["done"] < 200
        assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 409
        assert client.post(f"/api/v1/runs/{run_id}/retry_failed").status_code == 200
        client.post(f"/api/v1/runs/{run_id}/cancel")
        resumed = client.post(f"/api/v1/runs/{run_id}/resume")
        assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
        done = _wait(client, run_id)
        assert (done["ok"], done["failed"], done["total"]) == (198, 2, 200)
        keys = [
            json.loads(line)["key"]
            for line in client.get(
                f"/api/v1/runs/{run_id}/results", params={"format": "jsonl"}
            ).text.splitlines()
        ]
        assert sorted(keys) == sorted(f"t-{i}" for i in range(200))
        assert client.post(f"/api/v1/runs/{run_id}/resume").status_code == 409
        retried = client.post(f"/api/v1/runs/{run_id}/retry_failed")
        assert retried.status_code == 200 and retried.json()["failed"] == 0
        again = _wait(client, run_id)
        assert (again["ok"], again["failed"]) == (198, 2)
        assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
        assert client.get(f"/api/v1/runs/{run_id}").status_code == 404
        assert client.get(f"/api/v1/runs/{run_id}/results").status_code == 404
        assert client.delete(f"/api/v1/runs/{run_id}").status_code == 404


def _stored(client: httpx.Client, run_id: int) -> list[dict[str, Any]]:
    text = client.get(f"/api/v1/runs/{run_id}/results", params={"format": "jsonl"}).text
    return [json.loads(line) for line in text.splitlines()]


def test_a_runs_cost_is_the_sum_of_its_rows_usage_at_the_given_prices(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    upload = _upload(client, "rows.jsonl", _jsonl(_rows(30, missing=(4,))))
    for prices in ("input=0.15,output=0.60", {"input": 0.15, "output": 0.6}):
        run_id = _start(client, connector_id, upload["id"], concurrency=4, prices=prices)
        view = _wait(client, run_id)
        assert view["prices"] == prices and view["ok"] == 29
        stored = _stored(client, run_id)
        usage = [r["usage"] for r in stored if r.get("usage")]
        assert len(usage) == 29
        expected = sum(u["prompt_tokens"] * 0.15 + u["completion_tokens"] * 0.6 for u in usage)
        assert view["cost"] == pytest.approx(expected / 1e6)
        assert view["cost"] == pytest.approx(sum(r["cost"] or 0 for r in stored))
        assert view["cost"] > 0
    no_prices = _wait(client, _start(client, connector_id, upload["id"]))
    assert no_prices["cost"] is None


def test_a_spent_budget_stops_the_run_and_resume_finishes_every_key_once(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    n = 60
    upload = _upload(client, "rows.jsonl", _jsonl(_rows(n)))
    # 14 tokens a row: the budget runs out after about 10 rows (the rows in flight finish).
    run_id = _start(client, connector_id, upload["id"], concurrency=2, max_tokens=140)
    stopped = _wait(client, run_id, ("cancelled", "succeeded", "failed"))
    assert stopped["status"] == "cancelled", stopped
    assert "budget was spent" in stopped["error"] and "max_tokens" in stopped["error"]
    assert "resume" in stopped["error"]
    assert 10 <= stopped["done"] < 20 and stopped["tokens"] >= 140
    resumes = 0
    view = stopped
    while view["status"] == "cancelled":
        assert client.post(f"/api/v1/runs/{run_id}/resume").status_code == 200
        resumes += 1
        view = _wait(client, run_id, ("cancelled", "succeeded", "failed"))
        assert resumes < 10, view
    assert view["status"] == "succeeded" and resumes >= 3
    keys = [r["key"] for r in _stored(client, run_id)]
    assert sorted(keys) == sorted(f"t-{i}" for i in range(n)), "every key exactly once"
    assert view["done"] == n and view["tokens"] == 14 * n


def test_a_budget_is_checked_with_the_run(client: httpx.Client, keyed: MockServer) -> None:
    connector_id = _connector(client, keyed.url)
    upload = _upload(client, "rows.jsonl", _jsonl(_rows(2)))
    body = {"input": {"upload_id": upload["id"]}, "mapping": _MAPPING, "key": "id"}
    url = f"/api/v1/connectors/{connector_id}/runs"
    no_prices = client.post(url, json={**body, "max_cost": 1.5})
    assert no_prices.status_code == 422
    errors = no_prices.json()["error"]["errors"]
    assert [e["field"] for e in errors] == ["max_cost"] and "prices" in errors[0]["message"]
    for bad in ("input=cheap", {"input": 1, "outptu": 2}, 3, {"input": -1, "output": 1}):
        refused = client.post(url, json={**body, "prices": bad})
        assert refused.status_code == 422, bad
        assert [e["field"] for e in refused.json()["error"]["errors"]] == ["prices"]
    zero = client.post(url, json={**body, "max_tokens": 0, "prices": "input=1,output=1"})
    assert zero.status_code == 422 and "max_tokens" in zero.text
    ok = client.post(url, json={**body, "max_cost": 1.5, "prices": "input=1,output=2"})
    assert ok.status_code == 201 and ok.json()["max_cost"] == 1.5
    assert _wait(client, ok.json()["id"])["cost"] > 0


def test_a_placeholder_is_filled_from_the_column_chosen_for_it(client: httpx.Client) -> None:
    with MockServer(api_key=CANARY) as srv:
        connector_id = _connector(client, srv.url)
        rows = [{"id": f"t-{i}", "text": f"note {i}"} for i in range(5)]
        upload = _upload(client, "rows.jsonl", _jsonl(rows))
        url = f"/api/v1/connectors/{connector_id}/runs"
        body = {"input": {"upload_id": upload["id"]}, "key": "id", "outputs": _OUTPUTS}
        refused = client.post(url, json=body)
        assert refused.status_code == 422 and "{{body}}" in refused.text
        for bad, where in (
            ({"nope": "text"}, "placeholders.nope"),
            ({"body": "txet"}, "placeholders.body"),
            (["body"], "placeholders"),
        ):
            answer = client.post(url, json={**body, "placeholders": bad})
            assert answer.status_code == 422, bad
            assert where in [e["field"] for e in answer.json()["error"]["errors"]], answer.text
        created = client.post(url, json={**body, "placeholders": {"body": "text"}, "rate": None})
        assert created.status_code == 201, created.text
        assert created.json()["placeholders"] == {"body": "text"}
        view = _wait(client, created.json()["id"])
        assert (view["ok"], view["failed"]) == (5, 0)
        sent = sorted(r.json["messages"][0]["content"] for r in srv.requests)
    assert sent == sorted(f"note {i}" for i in range(5))


def test_runs_are_listed_newest_first_with_filters_and_pages(
    client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    other = _connector(client, keyed.url)
    upload = _upload(client, "rows.jsonl", _jsonl(_rows(2)))
    mine = [_start(client, connector_id, upload["id"]) for _ in range(5)]
    _start(client, other, upload["id"])
    for run_id in mine:
        _wait(client, run_id)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"connector_id": connector_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/runs", params=params).json()
        assert page["total"] == 5
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(mine, reverse=True)
    succeeded = client.get(
        "/api/v1/runs", params={"connector_id": connector_id, "status": "succeeded"}
    ).json()
    assert succeeded["total"] == 5
    assert client.get("/api/v1/runs", params={"status": "done"}).status_code == 422
    assert client.get("/api/v1/runs/0").status_code == 422
    assert client.get("/api/v1/runs/99999999999").status_code == 404


def test_metrics_need_a_token_and_count_rows(app: AppProcess, keyed: MockServer) -> None:
    with app.client() as client:
        connector_id = _connector(client, keyed.url)
        upload = _upload(client, "rows.jsonl", _jsonl(_rows(10, missing=(1,))))
        _wait(client, _start(client, connector_id, upload["id"]))
        executed = client.post(
            f"/api/v1/connectors/{connector_id}/execute_model",
            json={"payload": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}},
        )
        assert executed.status_code == 200, executed.text
        assert httpx.get(app.url + "/metrics").status_code == 401
        text = client.get("/metrics").text
    execute = f'connector_id="{connector_id}",outcome="ok",source="execute_model"'
    assert f"openai_compat_endpoint_requests_total{{{execute}}} 1.0" in text
    assert f'openai_compat_endpoint_requests_total{{connector_id="{connector_id}"' in text
    assert 'openai_compat_runs{status="succeeded"}' in text
    assert "openai_compat_endpoint_latency_seconds_bucket" in text
    assert 'openai_compat_run_rows_total{outcome="failed"}' in text
    assert "openai_compat_run_rows_per_second" in text
    assert CANARY not in text


def test_a_separate_metrics_token(tmp_path: Path) -> None:
    app = AppProcess(tmp_path / "data", env={"OPENAI_COMPAT_METRICS_TOKEN": "scrape-me-0123"})
    try:
        scrape = httpx.get(app.url + "/metrics", headers={"Authorization": "Bearer scrape-me-0123"})
        assert scrape.status_code == 200 and "openai_compat_runs" in scrape.text
        assert scrape.headers["content-type"].startswith("text/plain")
        # The metrics token opens /metrics only.
        api = httpx.get(
            app.url + "/api/v1/runs", headers={"Authorization": "Bearer scrape-me-0123"}
        )
        assert api.status_code == 401
    finally:
        app.stop()


def test_the_stored_key_is_used_and_never_written(app: AppProcess, keyed: MockServer) -> None:
    with app.client() as client:
        connector_id = _connector(client, keyed.url)
        upload = _upload(client, "rows.jsonl", _jsonl(_rows(5)))
        view = _wait(client, _start(client, connector_id, upload["id"]))
        assert view["ok"] == 5  # the keyed server accepted the stored key
        assert CANARY not in json.dumps(view)
    for table in ("runs", "run_results", "uploads"):
        assert CANARY not in repr(app.query(f"select * from {table}"))
    assert CANARY not in app.log_text()


# -- restarts and instances -----------------------------------------------------------------
def _keys_once(app: AppProcess, run_id: int, n: int) -> None:
    keys = [row[0] for row in app.query(f"select key from run_results where run_id = {run_id}")]
    assert sorted(keys) == sorted(f"t-{i}" for i in range(n)), "every key exactly once"


def test_a_run_continues_after_a_stop_and_after_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with MockServer(latency_s=0.05, api_key=CANARY) as slow:
        app = AppProcess(data)
        client = app.client()
        connector_id = _connector(client, slow.url)
        upload = _upload(client, "rows.jsonl", _jsonl(_rows(300)))
        run_id = _start(client, connector_id, upload["id"], concurrency=4)
        while client.get(f"/api/v1/runs/{run_id}").json()["done"] < 20:
            time.sleep(0.05)
        app.stop()  # SIGTERM: let go as interrupted
        client.close()
        assert app.query(f"select status from runs where id = {run_id}") == [("interrupted",)]
        app = AppProcess(data)
        client = app.client()
        while client.get(f"/api/v1/runs/{run_id}").json()["done"] < 100:
            time.sleep(0.05)
        app.process.send_signal(signal.SIGKILL)
        app.process.wait()
        app.stop()
        client.close()
        app = AppProcess(data)
        try:
            with app.client() as client:
                view = _wait(client, run_id)
            assert (view["ok"], view["failed"], view["total"]) == (300, 0, 300)
            _keys_once(app, run_id, 300)
        finally:
            app.stop()


def test_two_instances_on_postgresql_take_over_a_killed_ones_run(
    postgres: Any, tmp_path: Path
) -> None:
    database = postgres.create_database("runs_takeover")
    env = {"OPENAI_COMPAT_RUN_LEASE_S": "2"}
    data = tmp_path / "data"  # shared by both, as a volume is in a deployment
    with MockServer(latency_s=0.05, api_key=CANARY) as slow:
        first = AppProcess(data, database=database, env=env)
        second = AppProcess(data, database=database, env=env)
        try:
            with first.client() as client:
                connector_id = _connector(client, slow.url)
                upload = _upload(client, "rows.jsonl", _jsonl(_rows(400)))
            with first.client() as client:
                run_id = _start(client, connector_id, upload["id"], concurrency=4)
                _wait(client, run_id, ("running",))
                while client.get(f"/api/v1/runs/{run_id}").json()["done"] < 40:
                    time.sleep(0.05)
            owner = first.query(f"select lease_owner from runs where id = {run_id}")[0][0]
            holder, other = (
                (first, second) if f":{first.process.pid}:" in owner else (second, first)
            )
            holder.process.send_signal(signal.SIGKILL)
            holder.process.wait()
            with other.client() as client:
                view = _wait(client, run_id, timeout=90)
            assert (view["ok"], view["failed"], view["total"]) == (400, 0, 400)
            new_owner_runs = other.query(f"select ok from runs where id = {run_id}")
            assert new_owner_runs == [(400,)]
            _keys_once(other, run_id, 400)
        finally:
            first.stop()
            second.stop()
            for proc in (first, second):
                assert CANARY not in proc.log_text()


# -- database inputs ------------------------------------------------------------------------
_DB_PASSWORD = "pw-canary-5b2e"


@pytest.fixture(scope="module")
def tickets_db(postgres: Any) -> str:
    """A PostgreSQL database with a tickets table; its URL with a password (trust auth
    ignores it: it is there to be kept secret)."""
    import psycopg

    url = postgres.create_database(f"runs_input_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE tickets (id TEXT PRIMARY KEY, body TEXT, day TEXT)")
        for i in range(30):
            conn.execute(
                "INSERT INTO tickets VALUES (%s, %s, %s)",
                (f"t-{i}", f"ticket {i}", "2026-12-01" if i % 2 else "2026-12-02"),
            )
    return url.replace("postgres@", f"postgres:{_DB_PASSWORD}@")


def test_a_database_query_as_input(
    app: AppProcess, keyed: MockServer, tickets_db: str, tmp_path: Path
) -> None:
    query = "SELECT id, body FROM tickets WHERE day = :day ORDER BY id"
    with app.client() as client:
        preview = client.post(
            "/api/v1/queries",
            json={"database": tickets_db, "query": query, "params": {"day": "2026-12-01"}},
        )
        assert preview.status_code == 200, preview.text
        shown = preview.json()
        assert shown["columns"] == ["id", "body"] and shown["rows_estimate"] is None
        assert shown["sample"][0] == {"id": "t-1", "body": "ticket 1"}
        connector_id = _connector(client, keyed.url)
        body = {
            "input": {"database": tickets_db, "query": query, "params": {"day": "2026-12-01"}},
            "mapping": _MAPPING,
            "outputs": _OUTPUTS,
            "rate": None,
        }
        no_key = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
        assert no_key.status_code == 422 and "needs a key column" in no_key.text
        created = client.post(f"/api/v1/connectors/{connector_id}/runs", json={**body, "key": "id"})
        assert created.status_code == 201, created.text
        view = _wait(client, created.json()["id"])
        assert (view["ok"], view["failed"], view["total"]) == (15, 0, 15)
        assert view["input"]["query"] == query and "***" in view["input"]["database"]
        lines = client.get(
            f"/api/v1/runs/{view['id']}/results", params={"format": "jsonl"}
        ).text.splitlines()
        assert sorted(json.loads(x)["key"] for x in lines) == sorted(
            f"t-{i}" for i in range(1, 30, 2)
        )
        assert json.loads(lines[0])["output"]["reply"].startswith("You said: ticket ")

        bad_query = client.post(
            f"/api/v1/connectors/{connector_id}/runs",
            json={**body, "key": "id", "input": {"database": tickets_db, "query": "SELECT nope"}},
        )
        assert bad_query.status_code == 422
        assert bad_query.json()["error"]["errors"][0]["field"] == "input.query"
        sqlite = client.post(
            f"/api/v1/connectors/{connector_id}/runs",
            json={
                **body,
                "key": "id",
                "input": {"database": f"sqlite:///{tmp_path}/x.db", "query": "SELECT 1"},
            },
        )
        assert sqlite.status_code == 422 and "SQLite file cannot be" in sqlite.text
        missing_param = client.post(
            "/api/v1/queries", json={"database": tickets_db, "query": query}
        )
        assert missing_param.status_code == 422 and ":day" in missing_param.text
        for answer in (preview, no_key, created, bad_query, missing_param):
            assert _DB_PASSWORD not in answer.text
        assert _DB_PASSWORD not in client.get("/api/v1/runs").text
    for table in ("runs", "run_results"):
        assert _DB_PASSWORD not in repr(app.query(f"select * from {table}"))
    assert _DB_PASSWORD not in app.log_text()


def test_a_database_host_the_address_policy_refuses_is_never_connected_to(
    tmp_path: Path,
) -> None:
    app = AppProcess(tmp_path / "data", extra_args=("--refuse-private",))
    try:
        with app.client() as client:
            # Port 1 answers nothing: had it been connected to, the error would say so.
            refused = client.post(
                "/api/v1/queries",
                json={"database": "postgresql://u:pw@127.0.0.1:1/db", "query": "SELECT 1"},
            )
        assert refused.status_code == 422
        error = refused.json()["error"]["errors"][0]
        assert error["field"] == "database" and "refuse-private" in error["message"]
        assert "connect" not in error["message"]
    finally:
        app.stop()
