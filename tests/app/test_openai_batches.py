"""OpenAI's Files and Batches API in the application, driven by the real openai SDK.

The application (``openai-compat serve`` on SQLite and PostgreSQL) runs the batches on a
saved connector of the scripted server; the SDK is the client, unmodified, pointed at the
application's ``/v1`` with the application's token as its API key.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from openai_compat.testing import MockServer, chat_completion, error_reply, json_reply
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

_ENDPOINT = "/v1/chat/completions"
_FINAL = ("completed", "failed", "cancelled", "expired")


def _sdk(app: AppProcess) -> OpenAI:
    return OpenAI(base_url=f"{app.url}/v1", api_key=app.token, max_retries=0)


def _connector(app: AppProcess, url: str, name: str, model: str = "m") -> int:
    request = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
    config = make_config(url, request_format=request)
    with app.client() as client:
        answer = client.post("/api/v1/connectors", json={"name": name, "configuration": config})
    assert answer.status_code == 201, answer.text
    connector_id: int = answer.json()["id"]
    return connector_id


def _line(custom_id: str, model: str = "m", text: str = "hello") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": _ENDPOINT,
        "body": {"model": model, "messages": [{"role": "user", "content": text}]},
    }


def _file(lines: list[Any]) -> bytes:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()


def _wait(sdk: OpenAI, batch_id: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = sdk.batches.retrieve(batch_id)
        if batch.status in _FINAL:
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not end: {batch}")


def _lines_of(sdk: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in sdk.files.content(file_id).text.splitlines()]


def test_the_whole_lifecycle_with_the_sdk(app: AppProcess, server: MockServer) -> None:
    name = f"lifecycle-{time.monotonic_ns()}"
    _connector(app, server.url, name)
    sdk = _sdk(app)
    # Not only ASCII: a file's bytes are its UTF-8 bytes.
    data = _file([_line(f"r-{i}", text=f"ticket {i} é🎫") for i in range(20)])
    uploaded = sdk.files.create(file=("requests.jsonl", data), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.object == "file"
    assert (uploaded.bytes, uploaded.filename, uploaded.purpose) == (
        len(data),
        "requests.jsonl",
        "batch",
    )
    assert uploaded.status == "processed" and uploaded.created_at > 0
    assert sdk.files.retrieve(uploaded.id).bytes == len(data)
    assert sdk.files.content(uploaded.id).content == data
    batch = sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint=_ENDPOINT,
        completion_window="24h",
        metadata={"connector": name},
    )
    # As OpenAI answers: validating, its file checked after the answer.
    assert batch.id.startswith("batch_") and batch.status == "validating"
    assert batch.request_counts is not None and batch.request_counts.total == 0
    assert batch.metadata == {"connector": name} and batch.in_progress_at is None
    done = _wait(sdk, batch.id)
    assert done.status == "completed", done
    assert done.request_counts is not None and done.model == "m"
    assert (done.request_counts.total, done.request_counts.completed) == (20, 20)
    assert done.request_counts.failed == 0
    assert done.error_file_id is None and done.output_file_id is not None
    for stamp in ("created_at", "in_progress_at", "finalizing_at", "completed_at", "expires_at"):
        assert getattr(done, stamp) is not None, stamp
    assert done.expires_at == done.created_at + 24 * 3600
    assert done.usage is not None and done.usage.total_tokens > 0
    output = _lines_of(sdk, done.output_file_id)
    assert sorted(x["custom_id"] for x in output) == sorted(f"r-{i}" for i in range(20))
    for line in output:
        assert line["error"] is None and line["id"].startswith("batch_req_")
        assert line["response"]["status_code"] == 200
        number = line["custom_id"].split("-")[1]
        reply = line["response"]["body"]["choices"][0]["message"]["content"]
        assert reply == f"You said: ticket {number} é🎫"
    out_file = sdk.files.retrieve(done.output_file_id)
    assert out_file.purpose == "batch_output"
    assert out_file.bytes == len(sdk.files.content(done.output_file_id).content)
    listed = [f.id for f in sdk.files.list(purpose="batch")]
    assert uploaded.id in listed and done.output_file_id not in listed
    deleted = sdk.files.delete(uploaded.id)
    assert deleted.deleted is True and deleted.id == uploaded.id
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(uploaded.id)
    with pytest.raises(openai.ConflictError):
        sdk.batches.cancel(batch.id)


@pytest.mark.parametrize(
    ("endpoint", "body", "answer_of"),
    [
        (
            "/v1/embeddings",
            lambda i: {"model": "m", "input": f"ticket {i}"},
            lambda body: body["data"][0]["embedding"],
        ),
        (
            "/v1/responses",
            lambda i: {"model": "m", "input": f"ticket {i}"},
            lambda body: body["output_text"],
        ),
        (
            "/v1/completions",
            lambda i: {"model": "m", "prompt": f"ticket {i}"},
            lambda body: body["choices"][0]["text"],
        ),
    ],
)
def test_every_dialect_runs_as_a_batch(
    app: AppProcess, server: MockServer, endpoint: str, body: Any, answer_of: Any
) -> None:
    # A connector of the dialect's URL runs the batch lines of its endpoint; each answer is
    # the server's for that line, whole, under its custom_id.
    name = f"dialect-{endpoint.rsplit('/', 1)[-1]}-{time.monotonic_ns()}"
    with app.client() as client:
        config = make_config(
            server.base_url + endpoint.removeprefix("/v1"),
            request_format=json.dumps(body(0)),
        )
        created = client.post("/api/v1/connectors", json={"name": name, "configuration": config})
        assert created.status_code == 201, created.text
    sdk = _sdk(app)
    lines = [
        {"custom_id": f"d-{i}", "method": "POST", "url": endpoint, "body": body(i)}
        for i in range(6)
    ]
    uploaded = sdk.files.create(file=("requests.jsonl", _file(lines)), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        metadata={"connector": name},
    )
    done = _wait(sdk, batch.id)
    assert done.status == "completed", done
    output = _lines_of(sdk, done.output_file_id)
    assert sorted(x["custom_id"] for x in output) == [f"d-{i}" for i in range(6)]
    for line in output:
        assert line["error"] is None and line["response"]["status_code"] == 200
        assert answer_of(line["response"]["body"]), line


def test_a_file_with_broken_lines_fails_the_batch_with_openais_errors(
    app: AppProcess, server: MockServer
) -> None:
    _connector(app, server.url, f"broken-{time.monotonic_ns()}")
    sdk = _sdk(app)
    lines = [
        _line("a"),
        "{not json",
        _line("a"),
        {**_line("b"), "url": "/v1/embeddings"},
        {"custom_id": "c", "method": "POST", "url": _ENDPOINT},
        {**_line("d"), "method": "GET"},
    ]
    uploaded = sdk.files.create(file=("broken.jsonl", _file(lines)), purpose="batch")
    created = sdk.batches.create(
        input_file_id=uploaded.id, endpoint=_ENDPOINT, completion_window="24h"
    )
    # The file is checked after the answer, as OpenAI does: validating, then failed.
    assert created.status == "validating" and created.errors is None
    batch = _wait(sdk, created.id)
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.in_progress_at is None and batch.request_counts is not None
    assert batch.request_counts.total == 6
    assert batch.errors is not None and batch.errors.data is not None
    found = {(e.line, e.code, e.param) for e in batch.errors.data}
    assert found == {
        (2, "invalid_json_line", None),
        (3, "duplicate_custom_id", "custom_id"),
        (4, "url_mismatch", "url"),
        (5, "missing_required_parameter", "body"),
        (6, "invalid_method", "method"),
    }
    assert all(e.message for e in batch.errors.data)
    again = sdk.batches.retrieve(batch.id)
    assert again.status == "failed" and again.output_file_id is None


def test_openais_errors_and_status_codes(app: AppProcess, server: MockServer) -> None:
    sdk = _sdk(app)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.files.create(file=("x.jsonl", _file([_line("a")])), purpose="fine-tune")
    assert refused.value.param == "purpose" or "purpose" in str(refused.value)
    body = refused.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{app.url}/v1", api_key="wrong", max_retries=0).files.list()
    with pytest.raises(openai.NotFoundError):
        sdk.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        sdk.files.content("file-nope")
    uploaded = sdk.files.create(file=("x.jsonl", _file([_line("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError) as wrong:
        sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/moderations",  # type: ignore[arg-type]
            completion_window="24h",
        )
    assert "/v1/chat/completions" in wrong.value.message
    with pytest.raises(openai.BadRequestError):
        sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="48h",  # type: ignore[arg-type]
        )
    # Without metadata.connector: by the lines' model, and a clear 400 when none or several.
    model = f"model-{time.monotonic_ns()}"
    lonely = sdk.files.create(file=("y.jsonl", _file([_line("a", model)])), purpose="batch")
    with pytest.raises(openai.BadRequestError) as absent:
        sdk.batches.create(input_file_id=lonely.id, endpoint=_ENDPOINT, completion_window="24h")
    assert model in absent.value.message and "metadata.connector" in absent.value.message
    _connector(app, server.url, "by-model-1", model)
    chosen = sdk.batches.create(
        input_file_id=lonely.id, endpoint=_ENDPOINT, completion_window="24h"
    )
    assert _wait(sdk, chosen.id).status == "completed"
    _connector(app, server.url, "by-model-2", model)
    with pytest.raises(openai.BadRequestError) as ambiguous:
        sdk.batches.create(input_file_id=lonely.id, endpoint=_ENDPOINT, completion_window="24h")
    assert "by-model-1" in ambiguous.value.message and "by-model-2" in ambiguous.value.message
    with httpx.Client(base_url=app.url) as anonymous:
        answer = anonymous.get("/v1/batches")
    assert answer.status_code == 401
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_a_thousand_lines_with_failures_split_into_the_two_files(
    app: AppProcess, server: MockServer
) -> None:
    name = f"thousand-{time.monotonic_ns()}"
    _connector(app, server.url, name)
    replies = [
        error_reply(400, "scripted refusal")
        if i % 20 == 0
        else json_reply(chat_completion(f"ok {i}"))
        for i in range(1000)
    ]
    server.enqueue(*replies)
    sdk = _sdk(app)
    uploaded = sdk.files.create(
        file=("thousand.jsonl", _file([_line(f"k-{i}") for i in range(1000)])), purpose="batch"
    )
    batch = sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint=_ENDPOINT,
        completion_window="24h",
        metadata={"connector": name, "concurrency": "16"},
    )
    done = _wait(sdk, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (950, 50)
    output, errors = _lines_of(sdk, done.output_file_id), _lines_of(sdk, done.error_file_id)
    assert len(output) == 950 and len(errors) == 50
    assert all(x["response"]["status_code"] == 200 for x in output)
    for line in errors:
        assert line["response"]["status_code"] == 400
        assert line["error"]["code"] == "http_400"
    ids = [x["custom_id"] for x in output + errors]
    assert sorted(ids) == sorted(f"k-{i}" for i in range(1000)), "every custom_id once"


def _normalized(data: bytes) -> list[bytes]:
    # What differs between two runs of the same file (the line's ``batch_req_...`` id, the
    # request id, and the scripted server's completion id and time): every other byte is
    # compared.
    data = re.sub(rb'"id":"batch_req_[0-9a-f]+"', b'"id":"batch_req_X"', data)
    data = re.sub(rb'"request_id":"[^"]*"', b'"request_id":"X"', data)
    data = re.sub(rb"request id req_[0-9]+", b"request id X", data)
    data = re.sub(
        rb'"id":"chatcmpl-mock[0-9]+","object":"chat.completion","created":[0-9]+',
        b'"id":"chatcmpl-X","object":"chat.completion","created":0',
        data,
    )
    return sorted(data.splitlines(keepends=True))


def test_the_files_content_is_the_lines_the_cli_writes(
    app: AppProcess, server: MockServer, tmp_path: Path
) -> None:
    name = f"cli-{time.monotonic_ns()}"
    _connector(app, server.url, name)
    lines = [_line(f"c-{i}") for i in range(30)]
    path = tmp_path / "requests.jsonl"
    path.write_bytes(_file(lines))

    def replies() -> list[Any]:
        return [
            error_reply(400, "no") if i % 10 == 3 else json_reply(chat_completion("same answer"))
            for i in range(30)
        ]

    server.enqueue(*replies())
    sdk = _sdk(app)
    uploaded = sdk.files.create(file=path.open("rb"), purpose="batch")
    done = _wait(
        sdk,
        sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            # One at a time, as the CLI below: line i gets the i-th scripted reply.
            metadata={"connector": name, "concurrency": "1"},
        ).id,
    )
    assert done.status == "completed"
    # Each scripted reply went to one line of this batch (none to anything else).
    assert server.pending == 0
    assert len(server.requests) == 30, [r.path for r in server.requests]
    server.clear()
    config = tmp_path / "config.json"
    request = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
    config.write_text(json.dumps(make_config(server.url, request_format=request)))
    server.enqueue(*replies())
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "openai_compat",
            "batch",
            "--config",
            str(config),
            "--input",
            str(path),
            "--output",
            str(out),
            "--error-file",
            str(err),
            "--output-format",
            "openai-batch",
            # One at a time too: with more in flight, the order the lines reach the server
            # (and so which of them gets each scripted reply) would be the network's.
            "--concurrency",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Exit 1: some rows failed (the three scripted refusals).
    assert cli.returncode == 1 and "27 ok, 3 failed" in cli.stderr, cli.stderr
    assert CANARY not in cli.stdout + cli.stderr
    assert done.output_file_id is not None and done.error_file_id is not None
    served_out = sdk.files.content(done.output_file_id).content
    served_err = sdk.files.content(done.error_file_id).content
    assert _normalized(served_out) == _normalized(out.read_bytes())
    assert _normalized(served_err) == _normalized(err.read_bytes())
    assert len(served_err.splitlines()) == 3


def test_cancel_mid_run_keeps_the_finished_lines(app: AppProcess) -> None:
    with MockServer(latency_s=0.05) as slow:
        name = f"cancel-{time.monotonic_ns()}"
        _connector(app, slow.url, name)
        sdk = _sdk(app)
        uploaded = sdk.files.create(
            file=("slow.jsonl", _file([_line(f"s-{i}") for i in range(400)])), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            metadata={"connector": name, "concurrency": "2"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = sdk.batches.retrieve(batch.id).request_counts
            if counts is not None and counts.completed >= 10:
                break
            time.sleep(0.05)
        cancelling = sdk.batches.cancel(batch.id)
        assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
        done = _wait(sdk, batch.id)
        assert done.status == "cancelled" and done.cancelled_at is not None
        assert done.request_counts is not None
        finished = done.request_counts.completed
        assert 10 <= finished < 400
        output = _lines_of(sdk, done.output_file_id)
        assert len(output) == finished
        assert len({x["custom_id"] for x in output}) == finished
        time.sleep(0.5)  # rows in flight at the cancel are not stored after it
        assert sdk.batches.retrieve(batch.id).request_counts == done.request_counts


def test_a_polling_client_sees_validating_then_in_progress_then_completed(
    app: AppProcess,
) -> None:
    with MockServer(latency_s=0.02) as slow:
        name = f"statuses-{time.monotonic_ns()}"
        _connector(app, slow.url, name)
        sdk = _sdk(app)
        uploaded = sdk.files.create(
            file=("rows.jsonl", _file([_line(f"v-{i}") for i in range(60)])), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            metadata={"connector": name, "concurrency": "2"},
        )
        seen = [batch.status]
        while batch.status not in _FINAL:
            time.sleep(0.02)
            batch = sdk.batches.retrieve(batch.id)
            if batch.status != seen[-1]:
                seen.append(batch.status)
                if batch.status == "in_progress":
                    assert batch.in_progress_at is not None and batch.model == "m"
                    assert batch.request_counts is not None
                    assert batch.request_counts.total == 60
    assert seen == ["validating", "in_progress", "completed"]
    assert batch.created_at <= (batch.in_progress_at or 0) <= (batch.completed_at or 0)


def test_a_batch_is_finalized_once_however_many_read_it_as_it_ends(app: AppProcess) -> None:
    # Readers and the background sweep all finalize a batch whose run ended: one of them
    # does, once (one output file), the others read what it wrote.
    import threading

    with MockServer(latency_s=0.02) as slow:
        name = f"once-{time.monotonic_ns()}"
        _connector(app, slow.url, name)
        sdk = _sdk(app)
        uploaded = sdk.files.create(
            file=("rows.jsonl", _file([_line(f"o-{i}") for i in range(40)])), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            metadata={"connector": name, "concurrency": "4"},
        )
        seen: list[str | None] = []

        def read() -> None:
            reader = _sdk(app)
            while (done := reader.batches.retrieve(batch.id)).status not in _FINAL:
                time.sleep(0.002)
            seen.append(done.output_file_id)

        readers = [threading.Thread(target=read) for _ in range(6)]
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join(60)
    files = app.query(f"select id, kind from openai_files where batch_id = '{batch.id}'")
    assert len(files) == 1 and files[0][1] == "output", files
    assert set(seen) == {files[0][0]} and len(seen) == 6


def test_a_batch_cancelled_as_it_is_created_ends_cancelled(app: AppProcess) -> None:
    # Cancelled while validating (or just after): it ends cancelled, never runs every line.
    with MockServer(latency_s=0.05) as slow:
        name = f"early-{time.monotonic_ns()}"
        _connector(app, slow.url, name)
        sdk = _sdk(app)
        uploaded = sdk.files.create(
            file=("rows.jsonl", _file([_line(f"x-{i}") for i in range(5000)])), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            metadata={"connector": name, "concurrency": "1"},
        )
        assert sdk.batches.cancel(batch.id).status == "cancelling"
        done = _wait(sdk, batch.id)
        assert done.status == "cancelled" and done.cancelled_at is not None
        assert done.request_counts is not None and done.request_counts.completed < 5000
        with pytest.raises(openai.ConflictError):
            sdk.batches.cancel(batch.id)


def test_a_file_whose_upload_was_deleted_is_refused_by_name(app: AppProcess) -> None:
    sdk = _sdk(app)
    uploaded = sdk.files.create(file=("gone.jsonl", _file([_line("g")])), purpose="batch")
    with app.client() as client:
        gone = client.delete(f"/api/v1/uploads/{uploaded.id.removeprefix('file-')}")
        assert gone.status_code == 204, gone.text
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.batches.create(input_file_id=uploaded.id, endpoint=_ENDPOINT, completion_window="24h")
    assert uploaded.id in refused.value.message and "upload the file again" in refused.value.message


def _batch_run(app: AppProcess, batch_id: str) -> int:
    rows = _until(
        app,
        f"select run_id from openai_batches where id = '{batch_id}'",
        lambda rows: rows[0][0] is not None,
    )
    return int(rows[0][0])


def _slow_batch(app: AppProcess, sdk: OpenAI, url: str, prefix: str, lines: int) -> Any:
    name = f"{prefix}-{time.monotonic_ns()}"
    _connector(app, url, name)
    uploaded = sdk.files.create(
        file=("slow.jsonl", _file([_line(f"{prefix}-{i}") for i in range(lines)])),
        purpose="batch",
    )
    return sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint=_ENDPOINT,
        completion_window="24h",
        metadata={"connector": name, "concurrency": "2"},
    )


def test_cancelling_a_batchs_run_through_the_runs_api_cancels_the_batch(
    app: AppProcess,
) -> None:
    with MockServer(latency_s=0.05) as slow:
        sdk = _sdk(app)
        batch = _slow_batch(app, sdk, slow.url, "runcancel", 400)
        run_id = _batch_run(app, batch.id)
        _until(app, f"select ok from runs where id = {run_id}", lambda rows: rows[0][0] >= 10)
        with app.client() as client:
            cancelled = client.post(f"/api/v1/runs/{run_id}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            # Without a read, the batch ends as one cancelled through its own route.
            _until(
                app,
                f"select status from openai_batches where id = '{batch.id}'",
                lambda rows: rows[0][0] == "cancelled",
                timeout=10,
            )
            done = sdk.batches.retrieve(batch.id)
            assert done.cancelling_at is not None and done.cancelled_at is not None
            assert done.errors is None and done.request_counts is not None
            finished = done.request_counts.completed
            assert 10 <= finished < 400 and done.request_counts.failed == 0
            output = _lines_of(sdk, done.output_file_id)
            assert sorted(x["custom_id"] for x in output) == sorted(
                {x["custom_id"] for x in output}
            )
            assert len(output) == finished and done.error_file_id is None
            # A batch that has ended is final: its run is not run again.
            for action in ("resume", "retry_failed"):
                again = client.post(f"/api/v1/runs/{run_id}/{action}")
                assert again.status_code == 409, again.text
                message = again.json()["error"]["message"]
                assert batch.id in message and "POST /v1/batches" in message
            assert sdk.batches.retrieve(batch.id).request_counts == done.request_counts


def test_deleting_a_batchs_run_is_refused_until_the_batch_has_ended(app: AppProcess) -> None:
    with MockServer(latency_s=0.05) as slow:
        sdk = _sdk(app)
        batch = _slow_batch(app, sdk, slow.url, "rundelete", 400)
        run_id = _batch_run(app, batch.id)
        _until(app, f"select ok from runs where id = {run_id}", lambda rows: rows[0][0] >= 5)
        with app.client() as client:
            refused = client.delete(f"/api/v1/runs/{run_id}")
            assert refused.status_code == 409, refused.text
            message = refused.json()["error"]["message"]
            assert f"POST /v1/batches/{batch.id}/cancel" in message
            # The run goes on: nothing was deleted.
            before = int(app.query(f"select ok from runs where id = {run_id}")[0][0])
            _until(app, f"select ok from runs where id = {run_id}", lambda r: r[0][0] > before)
            assert sdk.batches.retrieve(batch.id).status == "in_progress"
            sdk.batches.cancel(batch.id)
            done = _wait(sdk, batch.id)
            assert done.status == "cancelled" and done.output_file_id is not None
            assert len(_lines_of(sdk, done.output_file_id)) == done.request_counts.completed  # type: ignore[union-attr]
            # Once the batch has ended its run may go, and its lines with it.
            deleted = client.delete(f"/api/v1/runs/{run_id}")
            assert deleted.status_code == 204, deleted.text
        with pytest.raises(openai.NotFoundError) as gone:
            sdk.files.content(done.output_file_id)
        assert f"deleted with the run of the batch {batch.id}" in gone.value.message
        assert sdk.batches.retrieve(batch.id).status == "cancelled"
        assert app.query(f"select run_id from openai_batches where id = '{batch.id}'") == [(None,)]


def test_batches_list_pages_with_after_across_thirty(app: AppProcess, server: MockServer) -> None:
    sdk = _sdk(app)
    # Failed at creation (no run): the list pages over batches whatever their status.
    bad = sdk.files.create(file=("bad.jsonl", b"{oops\n"), purpose="batch")
    made = [
        sdk.batches.create(input_file_id=bad.id, endpoint=_ENDPOINT, completion_window="24h").id
        for _ in range(30)
    ]
    first = sdk.batches.list(limit=7)
    assert len(first.data) == 7 and first.has_more
    seen = [b.id for b in first.data]
    after = seen[-1]
    while True:
        page = sdk.batches.list(limit=7, after=after)
        seen += [b.id for b in page.data]
        if not page.has_more:
            break
        after = page.data[-1].id
    assert len(seen) == len(set(seen))
    assert [x for x in seen if x in made] == list(reversed(made)), "newest first, each once"
    auto = [b.id for b in sdk.batches.list(limit=7) if b.id in made]
    assert auto == list(reversed(made)), "the SDK's auto-pagination walks every page"


def test_a_batch_survives_a_restart_and_a_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with MockServer(latency_s=0.05, api_key=CANARY) as slow:
        app = AppProcess(data)
        _connector(app, slow.url, "durable")
        sdk = _sdk(app)
        uploaded = sdk.files.create(
            file=("rows.jsonl", _file([_line(f"d-{i}") for i in range(300)])), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            metadata={"connector": "durable", "concurrency": "4"},
        )

        def wait_for(count: int) -> None:
            while True:
                counts = _sdk(app).batches.retrieve(batch.id).request_counts
                if counts is not None and counts.completed >= count:
                    return
                time.sleep(0.05)

        wait_for(20)
        app.stop()
        app = AppProcess(data)
        wait_for(100)
        app.process.send_signal(signal.SIGKILL)
        app.process.wait()
        app.stop()
        app = AppProcess(data)
        try:
            sdk = _sdk(app)
            done = _wait(sdk, batch.id)
            assert done.status == "completed"
            output = _lines_of(sdk, done.output_file_id)
            assert sorted(x["custom_id"] for x in output) == sorted(f"d-{i}" for i in range(300))
            assert done.error_file_id is None
        finally:
            app.stop()
            assert CANARY not in app.log_text()


def test_two_instances_on_postgresql_take_over_a_killed_ones_batch(
    postgres: Any, tmp_path: Path
) -> None:
    database = postgres.create_database("batches_takeover")
    env = {"OPENAI_COMPAT_RUN_LEASE_S": "2"}
    data = tmp_path / "data"
    with MockServer(latency_s=0.05, api_key=CANARY) as slow:
        first = AppProcess(data, database=database, env=env)
        second = AppProcess(data, database=database, env=env)
        try:
            _connector(first, slow.url, "shared")
            sdk = _sdk(first)
            uploaded = sdk.files.create(
                file=("rows.jsonl", _file([_line(f"p-{i}") for i in range(400)])),
                purpose="batch",
            )
            batch = sdk.batches.create(
                input_file_id=uploaded.id,
                endpoint=_ENDPOINT,
                completion_window="24h",
                metadata={"connector": "shared", "concurrency": "4"},
            )
            while (sdk.batches.retrieve(batch.id).request_counts or _Zero()).completed < 40:
                time.sleep(0.05)
            run_id = first.query(f"select run_id from openai_batches where id = '{batch.id}'")
            owner = first.query(f"select lease_owner from runs where id = {run_id[0][0]}")[0][0]
            holder, other = (
                (first, second) if f":{first.process.pid}:" in owner else (second, first)
            )
            holder.process.send_signal(signal.SIGKILL)
            holder.process.wait()
            survivor = _sdk(other)
            done = _wait(survivor, batch.id, timeout=120)
            assert done.status == "completed"
            output = _lines_of(survivor, done.output_file_id)
            ids = [x["custom_id"] for x in output]
            assert sorted(ids) == sorted(f"p-{i}" for i in range(400)), "each exactly once"
        finally:
            first.stop()
            second.stop()
            for proc in (first, second):
                assert CANARY not in proc.log_text()


class _Zero:
    completed = 0


def _until(app: AppProcess, sql: str, done: Any, timeout: float = 60.0) -> Any:
    """Read the database (never the API) until ``done(rows)``; the rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = app.query(sql)
        if done(rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"not reached: {sql} -> {rows}")


def test_a_batch_past_its_window_expires_without_any_read_keeping_its_finished_lines(
    app: AppProcess,
) -> None:
    with MockServer(latency_s=0.05) as slow:
        name = f"expiry-{time.monotonic_ns()}"
        _connector(app, slow.url, name)
        sdk = _sdk(app)
        uploaded = sdk.files.create(
            file=("slow.jsonl", _file([_line(f"e-{i}") for i in range(300)])), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            metadata={"connector": name, "concurrency": "2"},
        )
        # From here on, no request reads the batch: the database is watched instead.
        where = f"from openai_batches where id = '{batch.id}'"
        run_id = _until(app, f"select run_id {where}", lambda rows: rows[0][0] is not None)[0][0]
        _until(app, f"select ok from runs where id = {run_id}", lambda rows: rows[0][0] >= 10)
        # The 24 hours have passed (the window is OpenAI's only one: 24h).
        app.query(
            f"update openai_batches set expires_at = '2000-01-01 00:00:00' where id = '{batch.id}'"
        )
        _until(app, f"select status {where}", lambda rows: rows[0][0] == "expired", timeout=10)
        stored = app.query(
            f"select count(*), sum(case when ok then 1 else 0 end) from run_results "
            f"where run_id = {run_id}"
        )
        total, finished = int(stored[0][0]), int(stored[0][1])
        if total != 300:
            extra = app.query(
                f"select key, ok, row_index from run_results where run_id = {run_id} "
                "and key not like 'e-%'"
            )
            raise AssertionError(f"{total} lines stored; not this batch's: {extra}")
        assert total == 300 and 10 <= finished < 300, "every line stored, once, at the expiry"
        run = app.query(f"select status, ok, failed from runs where id = {run_id}")
        assert tuple(run[0]) == ("cancelled", finished, 300 - finished)
        # Then through the SDK: the batch as OpenAI shows an expired one.
        done = sdk.batches.retrieve(batch.id)
        assert done.status == "expired" and done.expired_at is not None
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (
            finished,
            300 - finished,
        )
        output, errors = _lines_of(sdk, done.output_file_id), _lines_of(sdk, done.error_file_id)
        assert len(output) == finished and len(errors) == 300 - finished
        assert {x["error"]["code"] for x in errors} == {"batch_expired"}
        ids = [x["custom_id"] for x in output + errors]
        assert sorted(ids) == sorted(f"e-{i}" for i in range(300)), "every custom_id once"
        time.sleep(0.5)  # the run stopped: nothing is stored after the expiry
        assert sdk.batches.retrieve(batch.id).request_counts == done.request_counts


def test_the_file_caps_are_configurable_and_said_in_openais_words(tmp_path: Path) -> None:
    env = {"OPENAI_COMPAT_BATCH_MAX_LINES": "5", "OPENAI_COMPAT_BATCH_MAX_FILE_BYTES": "4000"}
    with MockServer() as server:
        app = AppProcess(tmp_path / "data", env=env)
        try:
            _connector(app, server.url, "caps")
            sdk = _sdk(app)
            six = sdk.files.create(
                file=("six.jsonl", _file([_line(f"x-{i}") for i in range(6)])), purpose="batch"
            )
            created = sdk.batches.create(
                input_file_id=six.id, endpoint=_ENDPOINT, completion_window="24h"
            )
            batch = _wait(sdk, created.id)
            assert batch.status == "failed" and batch.errors is not None
            assert [e.code for e in batch.errors.data or []] == ["too_many_tasks"]
            with pytest.raises(openai.APIStatusError) as large:
                sdk.files.create(
                    file=("big.jsonl", _file([_line(f"y-{i}") for i in range(40)])),
                    purpose="batch",
                )
            assert large.value.status_code == 413
            assert "OPENAI_COMPAT_BATCH_MAX_FILE_BYTES" in large.value.message
            assert [f.filename for f in sdk.files.list()] == ["six.jsonl"]
        finally:
            app.stop()
