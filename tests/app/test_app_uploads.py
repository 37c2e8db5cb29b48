"""Uploads under attack and over their life, against the real application (SQLite and
PostgreSQL): bombs that are small on disk, multipart bodies that are malformed or cut off,
names that hide what they are, the files' modes, deleting uploads (alone and with their
runs), orphans swept at start, and CSV downloads that a spreadsheet would run.

Memory is measured on the server process itself: its peak resident size (``VmHWM``) before
and after an upload.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_compat.app.http import ApiError
from openai_compat.app.runs.uploads import (
    MAX_LINE_BYTES,
    Inspected,
    UploadedFile,
    inspect_upload,
)
from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

_REQUEST = '{"model": "m", "messages": [{"role": "user", "content": "{{body}}"}]}'
_MAPPING = [{"name": "messages.0.content", "value": "body", "value_type": "dynamic"}]
_OUTPUTS = [{"name": "choices.0.message.content", "as": "reply"}]
_MIB = 1024 * 1024
# What an upload may add to the server's peak memory here: the bombs below add hundreds
# of MB (a line read whole, a sample kept whole) when nothing bounds them.
_MEMORY_SLACK = 120 * _MIB


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[AppProcess]:
    """An application of its own, whose peak memory no earlier test has raised."""
    proc = AppProcess(tmp_path / "data")
    yield proc
    proc.stop()


def _peak_rss(app: AppProcess) -> int:
    """The server's peak resident memory so far, in bytes."""
    for line in Path(f"/proc/{app.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def _files(app: AppProcess) -> set[str]:
    folder = app.data_dir / "uploads"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def _uploads_rows(app: AppProcess) -> int:
    return int(app.query("select count(*) from uploads")[0][0])


def _multipart(
    filename: bytes, data: bytes, *, boundary: bytes = b"b0undary", close: bool = True
) -> tuple[bytes, dict[str, str]]:
    """A multipart body with one file part, written byte for byte (httpx would escape the
    name), optionally without its closing boundary."""
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="'
        + filename + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data
    )  # fmt: skip
    if close:
        body += b"\r\n--" + boundary + b"--\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=" + boundary.decode()}
    return body, headers


def _gzipped_jsonl(rows_before: int, long_line_bytes: int, rows_after: int = 2) -> bytes:
    """JSON Lines, gzipped as it is written (small on disk, whatever it holds): ``rows_before``
    short rows, one row whose ``body`` is ``long_line_bytes`` long, then ``rows_after``."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as f:
        for i in range(rows_before):
            f.write(b'{"id": "s-%d", "body": "short"}\n' % i)
        f.write(b'{"id": "long", "body": "')
        left = long_line_bytes
        block = b"x" * _MIB
        while left > 0:
            f.write(block[: min(left, _MIB)])
            left -= _MIB
        f.write(b'"}\n')
        for i in range(rows_after):
            f.write(b'{"id": "a-%d", "body": "short"}\n' % i)
    return out.getvalue()


def _connector(client: httpx.Client, url: str) -> int:
    config = make_config(url, request_format=_REQUEST)
    created = client.post("/api/v1/connectors", json={"name": "uploads", "configuration": config})
    assert created.status_code == 201, created.text
    connector_id: int = created.json()["id"]
    return connector_id


def _upload(client: httpx.Client, name: str, data: bytes) -> dict[str, Any]:
    answer = client.post("/api/v1/uploads", files={"file": (name, data)})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _start(client: httpx.Client, connector_id: int, upload_id: str, **extra: Any) -> int:
    body = {"input": {"upload_id": upload_id}, "mapping": _MAPPING, "outputs": _OUTPUTS}
    body.update({"key": "id", "rate": None, **extra})
    answer = client.post(f"/api/v1/connectors/{connector_id}/runs", json=body)
    assert answer.status_code == 201, answer.text
    run_id: int = answer.json()["id"]
    return run_id


def _wait(client: httpx.Client, run_id: int, statuses: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        if view["status"] in statuses:
            return view
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {statuses}: {view}")


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


# -- bombs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("rows_before", [0, 20], ids=["first-line", "after-the-sample"])
def test_a_gzipped_line_bomb_is_refused_naming_the_limit(
    fresh: AppProcess, rows_before: int
) -> None:
    app = fresh
    bomb = _gzipped_jsonl(rows_before, 96 * _MIB)
    assert len(bomb) < 200 * 1024  # small on disk
    files, rows, peak = _files(app), _uploads_rows(app), _peak_rss(app)
    with app.client() as client:
        refused = client.post("/api/v1/uploads", files={"file": ("bomb.jsonl.gz", bomb)})
    assert refused.status_code == 422, refused.text[:300]
    error = refused.json()["error"]["errors"][0]
    assert error["field"] == "file"
    assert f"line {rows_before + 1} is longer than the 8 MiB" in error["message"]
    assert _peak_rss(app) - peak < _MEMORY_SLACK
    assert _files(app) == files and _uploads_rows(app) == rows


def test_a_long_value_is_cut_in_the_stored_sample(app: AppProcess, client: httpx.Client) -> None:
    rows = [{"id": f"r-{i}", "body": ("y" * (2 * _MIB) if i < 3 else "short")} for i in range(12)]
    found = _upload(client, "long.jsonl", _jsonl(rows))
    assert found["rows_estimate"] == 12 and found["columns"] == ["id", "body"]
    sample = found["sample"]
    assert 1 <= len(sample) <= 10
    assert len(json.dumps(sample).encode()) <= 64 * 1024
    assert sample[0]["id"] == "r-0"
    assert sample[0]["body"] == "y" * 1000 + "…"
    stored = app.query(f"select sample from uploads where id = '{found['id']}'")[0][0]
    stored_text = stored if isinstance(stored, str) else json.dumps(stored)
    assert len(stored_text.encode()) <= 64 * 1024


def test_a_parquet_bomb_is_read_a_few_rows_at_a_time(fresh: AppProcess) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 4096
    value = "z" * (320 * 1024)
    body = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array([value]))
    table = pa.table({"id": pa.array([f"p-{i}" for i in range(n)]), "body": body})
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    data = out.getvalue()
    assert len(data) < 64 * 1024  # small on disk: over 1 GB as Python rows
    peak = _peak_rss(fresh)
    with fresh.client() as client:
        found = _upload(client, "bomb.parquet", data)
    assert _peak_rss(fresh) - peak < _MEMORY_SLACK
    assert found["columns"] == ["id", "body"] and found["rows_estimate"] == n
    assert found["sample"][0] == {"id": "p-0", "body": "z" * 1000 + "…"}
    assert len(json.dumps(found["sample"]).encode()) <= 64 * 1024


def _inspect(tmp_path: Path, name: str, data: bytes) -> Inspected:
    received = tmp_path / "received"
    received.write_bytes(data)
    return inspect_upload(tmp_path, UploadedFile(received, name, len(data)))


def _jsonl_line(length: int) -> bytes:
    """One JSON Lines row of exactly ``length`` bytes before its line end."""
    return b'{"id": "x", "body": "' + b"b" * (length - 23) + b'"}'


def test_a_line_of_exactly_the_limit_is_taken_one_byte_more_is_not(tmp_path: Path) -> None:
    short = b'{"id": "s", "body": "a"}\n'
    taken = _inspect(tmp_path, "edge.jsonl", short + _jsonl_line(MAX_LINE_BYTES) + b"\n" + short)
    assert taken.rows_estimate == 3 and taken.columns == ["id", "body"]
    for ending in (b"\n", b""):  # the longest line last, with or without its line end
        with pytest.raises(ApiError) as refused:
            _inspect(tmp_path, "edge.jsonl", short + _jsonl_line(MAX_LINE_BYTES + 1) + ending)
        assert refused.value.status == 422
        assert "line 2 is longer than the 8 MiB" in str(refused.value)
    assert list((tmp_path / "uploads").iterdir()) == [tmp_path / "uploads" / f"{taken.id}.jsonl"]


def test_a_csv_with_carriage_returns_for_line_ends_is_measured_line_by_line(
    tmp_path: Path,
) -> None:
    rows = b"".join(b"%d,%s\r" % (i, b"v" * 90) for i in range(MAX_LINE_BYTES // 90))
    taken = _inspect(tmp_path, "old-mac.csv", b"id,body\r" + rows)
    assert taken.columns == ["id", "body"] and taken.sample[0] == {"id": "0", "body": "v" * 90}


# -- malformed bodies -----------------------------------------------------------------------
def test_a_boundary_over_256_characters_is_a_clear_400(
    app: AppProcess, client: httpx.Client
) -> None:
    log_before = len(app.log_text())
    files = _files(app)
    body, headers = _multipart(b"rows.csv", b"id\n1\n", boundary=b"b" * 300)
    answer = client.post("/api/v1/uploads", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert "boundary" in answer.json()["error"]["message"].lower()
    assert "Traceback" not in app.log_text()[log_before:]
    assert _files(app) == files


def test_a_body_without_its_closing_boundary_is_refused(
    app: AppProcess, client: httpx.Client
) -> None:
    files, rows = _files(app), _uploads_rows(app)
    body, headers = _multipart(b"rows.csv", b"id,body\n1,a\n2,b\n3,", close=False)
    answer = client.post("/api/v1/uploads", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert "closing boundary" in answer.json()["error"]["message"]
    # Cut just after the part's boundary, before its closing "--": still not a whole body.
    body, headers = _multipart(b"rows.csv", b"id,body\n1,a\n", close=False)
    answer = client.post("/api/v1/uploads", content=body + b"\r\n--b0undary", headers=headers)
    assert answer.status_code == 400, answer.text
    assert _files(app) == files and _uploads_rows(app) == rows
    whole, headers = _multipart(b"rows.csv", b"id,body\n1,a\n")
    assert client.post("/api/v1/uploads", content=whole, headers=headers).status_code == 201


@pytest.mark.parametrize(
    ("name", "named"),
    [
        (b"ro\x00ws.csv", "a control character, U+0000 at position 3"),
        ("inv\u202evsc.csv".encode(), "RIGHT-TO-LEFT OVERRIDE"),
        (b"a\x1bb.csv", "a control character, U+001B at position 2"),
    ],
    ids=["nul", "bidi-override", "escape"],
)
def test_a_file_name_with_a_control_or_bidi_character_is_refused_and_leaves_nothing(
    app: AppProcess, client: httpx.Client, name: bytes, named: str
) -> None:
    files, rows = _files(app), _uploads_rows(app)
    body, headers = _multipart(name, b"id,body\n1,a\n")
    answer = client.post("/api/v1/uploads", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]["errors"][0]
    assert error["field"] == "file" and named in error["message"]
    assert _files(app) == files and _uploads_rows(app) == rows


def test_uploaded_files_are_owner_only(app: AppProcess, client: httpx.Client) -> None:
    found = _upload(client, "mode.csv", b"id,body\n1,a\n")
    path = app.data_dir / "uploads" / f"{found['id']}.csv"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_a_header_only_csv_reports_its_columns_and_a_run_keyed_on_them_is_accepted(
    client: httpx.Client, keyed: MockServer
) -> None:
    found = _upload(client, "empty.csv", b"id,body\n")
    assert found["columns"] == ["id", "body"]
    assert found["sample"] == [] and found["rows_estimate"] == 0
    run_id = _start(client, _connector(client, keyed.url), found["id"])
    view = _wait(client, run_id, ("succeeded",))
    assert view["ok"] == 0 and view["failed"] == 0


# -- deleting uploads -----------------------------------------------------------------------
def test_an_upload_is_deleted_unless_a_run_not_finished_uses_it(
    app: AppProcess, client: httpx.Client
) -> None:
    alone = _upload(client, "alone.csv", b"id,body\n1,a\n")
    assert client.delete(f"/api/v1/uploads/{alone['id']}").status_code == 204
    assert client.get(f"/api/v1/uploads/{alone['id']}").status_code == 404
    assert f"{alone['id']}.csv" not in _files(app)
    again = client.delete(f"/api/v1/uploads/{alone['id']}")
    assert again.status_code == 404 and "no upload" in again.json()["error"]["message"]

    with MockServer(latency_s=0.05, api_key=CANARY) as slow:
        connector_id = _connector(client, slow.url)
        used = _upload(
            client, "used.jsonl", _jsonl([{"id": str(i), "body": "b"} for i in range(400)])
        )
        run_id = _start(client, connector_id, used["id"], concurrency=1)
        busy = client.delete(f"/api/v1/uploads/{used['id']}")
        assert busy.status_code == 409, busy.text
        assert str(run_id) in busy.json()["error"]["message"]
        assert busy.json()["error"]["runs"] == [run_id]
        assert f"{used['id']}.jsonl" in _files(app)
        assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
        _wait(client, run_id, ("cancelled",))
    assert client.delete(f"/api/v1/uploads/{used['id']}").status_code == 204
    assert f"{used['id']}.jsonl" not in _files(app)
    # The finished run keeps its results; resuming it says its input is gone.
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 200


def test_deleting_the_last_run_of_an_upload_deletes_the_upload(
    app: AppProcess, client: httpx.Client, keyed: MockServer
) -> None:
    connector_id = _connector(client, keyed.url)
    upload = _upload(client, "shared.jsonl", _jsonl([{"id": "1", "body": "a"}]))
    first = _start(client, connector_id, upload["id"])
    second = _start(client, connector_id, upload["id"])
    for run_id in (first, second):
        _wait(client, run_id, ("succeeded",))
    assert client.delete(f"/api/v1/runs/{first}").status_code == 204
    assert client.get(f"/api/v1/uploads/{upload['id']}").status_code == 200
    assert f"{upload['id']}.jsonl" in _files(app)
    assert client.delete(f"/api/v1/runs/{second}").status_code == 204
    assert client.get(f"/api/v1/uploads/{upload['id']}").status_code == 404
    assert f"{upload['id']}.jsonl" not in _files(app)


def test_orphan_upload_files_are_swept_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = AppProcess(data)
    try:
        with app.client() as client:
            kept = _upload(client, "kept.csv", b"id,body\n1,a\n")
    finally:
        app.stop()
    uploads = data / "uploads"
    orphans = ["0123456789abcdef0123456789abcdef.csv", "fedcba9876543210fedcba9876543210.jsonl.gz"]
    for name in [*orphans, ".receiving-140234", "notes.txt"]:
        (uploads / name).write_bytes(b"id\n1\n")
    app = AppProcess(data)
    try:
        left = {p.name for p in uploads.iterdir()}
        assert left == {f"{kept['id']}.csv", "notes.txt"}
        with app.client() as client:
            assert client.get(f"/api/v1/uploads/{kept['id']}").status_code == 200
    finally:
        app.stop()


# -- downloads ------------------------------------------------------------------------------
def test_a_csv_download_never_starts_a_cell_with_a_formula(
    client: httpx.Client, keyed: MockServer
) -> None:
    keys = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "-5", "plain"]
    upload = _upload(client, "keys.jsonl", _jsonl([{"id": k, "body": "b"} for k in keys]))
    run_id = _start(client, _connector(client, keyed.url), upload["id"])
    _wait(client, run_id, ("succeeded",))
    text = client.get(f"/api/v1/runs/{run_id}/results?format=csv").text
    cells = [row[0] for row in csv.reader(io.StringIO(text, newline=""))][1:]
    assert sorted(cells) == sorted(
        ["'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tx", "'\rx", "-5", "plain"]
    )
    # The JSON Lines download is the data, exactly.
    lines = client.get(f"/api/v1/runs/{run_id}/results?format=jsonl").text.splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(keys)
