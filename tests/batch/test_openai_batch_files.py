"""OpenAI batch files, unchanged: OpenAI's documented input and output lines as fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openai_compat import ConfigurationError, run_batch_sync
from openai_compat.batch import open_rows
from openai_compat.testing import MockServer, error_reply
from tests.batch.test_batch_cli import batch_args, run_cli
from tests.conftest import NO_RETRY, make_config

# The two request lines of OpenAI's Batch API guide ("Preparing your batch file").
DOCUMENTED_INPUT = (
    '{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", "body": '
    '{"model": "gpt-3.5-turbo-0125", "messages": [{"role": "system", "content": "You are a '
    'helpful assistant."},{"role": "user", "content": "Hello world!"}],"max_tokens": 1000}}\n'
    '{"custom_id": "request-2", "method": "POST", "url": "/v1/chat/completions", "body": '
    '{"model": "gpt-3.5-turbo-0125", "messages": [{"role": "system", "content": "You are an '
    'unhelpful assistant."},{"role": "user", "content": "Hello world!"}],"max_tokens": 1000}}\n'
)
# An output line of the same guide ("Retrieving the results"): request-2's answer.
DOCUMENTED_OUTPUT_LINE = (
    '{"id": "batch_req_123", "custom_id": "request-2", "response": {"status_code": 200, '
    '"request_id": "req_123", "body": {"id": "chatcmpl-123", "object": "chat.completion", '
    '"created": 1711652795, "model": "gpt-3.5-turbo-0125", "choices": [{"index": 0, '
    '"message": {"role": "assistant", "content": "Hello."}, "logprobs": null, '
    '"finish_reason": "stop"}], "usage": {"prompt_tokens": 22, "completion_tokens": 2, '
    '"total_tokens": 24}, "system_fingerprint": "fp_123"}}, "error": null}\n'
)
OUTPUT_KEYS = {"id", "custom_id", "response", "error"}


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def batch_input(
    tmp_path: Path, text: str = DOCUMENTED_INPUT, name: str = "batchinput.jsonl"
) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def line(custom_id: str, content: str, url: str = "/v1/chat/completions", **extra: Any) -> str:
    body = {"model": "mock-model", "messages": [{"role": "user", "content": content}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body, **extra})


def test_a_batch_file_is_detected_by_its_first_line(tmp_path: Path) -> None:
    assert open_rows(batch_input(tmp_path)).format == "openai-batch"
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"custom_id": "x", "text": "no body"}\n')
    assert open_rows(plain).format == "jsonl"
    assert open_rows(plain, "openai-batch").format == "openai-batch"


def test_documented_lines_are_sent_as_they_are_and_answered_in_openai_output_lines(
    server: MockServer, tmp_path: Path
) -> None:
    # The connection's URL is used (another path than the lines' /v1/chat/completions).
    config = make_config(server.base_url + "/gateway/openai/chat/completions")
    out = tmp_path / "output.jsonl"
    summary = run_batch_sync(
        config, batch_input(tmp_path), out, output_format="openai-batch", rate=None
    )
    assert (summary.ok, summary.failed) == (2, 0)
    sent = {r.json["messages"][0]["content"]: r for r in server.requests}
    documented = [json.loads(text)["body"] for text in DOCUMENTED_INPUT.splitlines()]
    for body in documented:
        request = sent[body["messages"][0]["content"]]
        assert request.json == body  # the body as it is: model, messages, max_tokens
        assert request.path == "/gateway/openai/chat/completions"
    lines = read_lines(out)
    assert {entry["custom_id"] for entry in lines} == {"request-1", "request-2"}
    for entry in lines:
        assert set(entry) == OUTPUT_KEYS
        assert entry["id"].startswith("batch_req_")
        assert entry["error"] is None
        response = entry["response"]
        assert set(response) == {"status_code", "request_id", "body"}
        assert response["status_code"] == 200
        assert response["request_id"].startswith("req_")
        assert response["body"]["object"] == "chat.completion"
        assert response["body"]["model"] == "gpt-3.5-turbo-0125"
        assert response["body"]["choices"][0]["message"]["content"] == "You said: Hello world!"
    assert len({entry["id"] for entry in lines}) == 2


def test_lines_for_other_endpoints_or_methods_and_duplicates_are_failed_rows(
    server: MockServer, tmp_path: Path
) -> None:
    text = "".join(
        [
            line("ok-1", "first") + "\n",
            line("emb-1", "x", url="/v1/embeddings") + "\n",
            json.dumps(
                {
                    "custom_id": "get-1",
                    "method": "GET",
                    "url": "/v1/chat/completions",
                    "body": {"model": "m"},
                }
            )
            + "\n",
            json.dumps({"custom_id": "nobody", "url": "/v1/chat/completions", "body": "hi"}) + "\n",
            line("ok-1", "the same custom_id again") + "\n",
        ]
    )
    out = tmp_path / "out.jsonl"
    summary = run_batch_sync(
        make_config(server.url), batch_input(tmp_path, text), out, output_format="openai-batch"
    )
    assert (summary.ok, summary.failed) == (1, 4)
    assert len(server.requests) == 1  # nothing is sent for a line that cannot run
    by_id = {entry["custom_id"]: entry for entry in read_lines(out)}
    assert by_id["ok-1"]["error"] is None
    assert "/v1/embeddings" in by_id["emb-1"]["error"]["message"]
    assert "not a chat-completions path" in by_id["emb-1"]["error"]["message"]
    assert "'GET'" in by_id["get-1"]["error"]["message"]
    assert "body must be the request object" in by_id["nobody"]["error"]["message"]
    duplicate = by_id["row:4"]["error"]["message"]
    assert "duplicate" in duplicate and "'ok-1'" in duplicate
    for entry in by_id.values():
        assert set(entry) == OUTPUT_KEYS


def test_failed_requests_go_inline_or_to_the_error_file(server: MockServer, tmp_path: Path) -> None:
    text = line("a", "one") + "\n" + line("b", "two") + "\n"
    source = batch_input(tmp_path, text)
    config = make_config(server.url)
    # Inline, as vLLM writes them.
    server.enqueue(error_reply(500, "the model fell over"))
    inline = tmp_path / "inline.jsonl"
    run_batch_sync(
        config, source, inline, output_format="openai-batch", retry=NO_RETRY, concurrency=1
    )
    failed = [entry for entry in read_lines(inline) if entry["error"] is not None]
    assert len(failed) == 1 and len(read_lines(inline)) == 2
    assert failed[0]["response"]["status_code"] == 500
    # The endpoint's own error body, as OpenAI's batch output keeps it.
    assert failed[0]["response"]["body"]["error"]["message"] == "the model fell over"
    assert failed[0]["response"]["body"]["error"]["type"] == "server_error"
    assert failed[0]["error"]["code"] == "http_500"
    assert "the model fell over" in failed[0]["error"]["message"]
    # In an error file, as OpenAI writes them.
    server.enqueue(error_reply(500, "the model fell over"))
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    run_batch_sync(
        config,
        source,
        out,
        output_format="openai-batch",
        error_file=errors,
        retry=NO_RETRY,
        concurrency=1,
    )
    assert [entry["error"] for entry in read_lines(out)] == [None]
    assert [entry["response"]["status_code"] for entry in read_lines(errors)] == [500]
    ids = {entry["custom_id"] for entry in read_lines(out) + read_lines(errors)}
    assert ids == {"a", "b"}


def test_resume_continues_an_output_file_with_openais_own_lines(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "output.jsonl"
    # request-2 is already answered (OpenAI's documented output line), request-1 was torn.
    out.write_text(DOCUMENTED_OUTPUT_LINE + '{"id": "batch_req_9", "custom_id": "requ')
    summary = run_batch_sync(
        make_config(server.url),
        batch_input(tmp_path),
        out,
        output_format="openai-batch",
        mode="resume",
    )
    assert (summary.ok, summary.skipped) == (1, 1)
    assert [r.json["messages"][0]["content"] for r in server.requests] == [
        "You are a helpful assistant."
    ]
    lines = read_lines(out)
    assert [entry["custom_id"] for entry in lines] == ["request-2", "request-1"]
    assert lines[0]["response"]["body"]["id"] == "chatcmpl-123"  # kept as it was


def test_retry_failed_runs_the_error_files_requests_again(
    server: MockServer, tmp_path: Path
) -> None:
    text = "".join(line(f"r{i}", f"row {i}") + "\n" for i in range(4))
    source = batch_input(tmp_path, text)
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    config = make_config(server.url)
    server.enqueue(error_reply(503, "busy"), error_reply(503, "busy"))
    first = run_batch_sync(
        config,
        source,
        out,
        output_format="openai-batch",
        error_file=errors,
        retry=NO_RETRY,
        concurrency=1,
    )
    assert (first.ok, first.failed) == (2, 2)
    resumed = run_batch_sync(
        config, source, out, output_format="openai-batch", error_file=errors, mode="resume"
    )
    assert (resumed.ok, resumed.failed, resumed.skipped) == (0, 0, 4)
    again = run_batch_sync(
        config, source, out, output_format="openai-batch", error_file=errors, mode="retry-failed"
    )
    assert (again.ok, again.failed, again.skipped) == (2, 0, 2)
    assert read_lines(errors) == []
    assert sorted(entry["custom_id"] for entry in read_lines(out)) == ["r0", "r1", "r2", "r3"]


def test_batch_input_with_result_lines_out(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    run_batch_sync(make_config(server.url), batch_input(tmp_path), out)
    lines = read_lines(out)
    assert sorted(entry["key"] for entry in lines) == ["request-1", "request-2"]
    assert all(
        entry["output"]["choices.0.message.content"] == "You said: Hello world!" for entry in lines
    )


def test_options_that_do_not_fit_a_batch_file_are_refused(
    server: MockServer, tmp_path: Path
) -> None:
    source = batch_input(tmp_path)
    config = make_config(server.url)
    with pytest.raises(ConfigurationError, match="leave out --key"):
        run_batch_sync(config, source, tmp_path / "a.jsonl", key="id")
    with pytest.raises(ConfigurationError, match="leave out --mapping"):
        run_batch_sync(
            config, source, tmp_path / "b.jsonl", mapping=[{"name": "model", "value": "x"}]
        )
    with pytest.raises(ConfigurationError, match="--error-file goes with"):
        run_batch_sync(config, source, tmp_path / "c.jsonl", error_file=tmp_path / "e.jsonl")
    assert server.requests == []


def test_the_cli_runs_a_batch_file_into_openai_output(server: MockServer, tmp_path: Path) -> None:
    config = tmp_path / "conn.json"
    config.write_text(json.dumps(make_config(server.url)))
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    args = batch_args(
        config,
        batch_input(tmp_path),
        out,
        "--output-format",
        "openai-batch",
        "--error-file",
        str(errors),
    )
    done = run_cli(args)
    assert done.returncode == 0, done.stderr
    assert {entry["custom_id"] for entry in read_lines(out)} == {"request-1", "request-2"}
    again = run_cli(args)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = run_cli([*args, "--resume"])
    assert resumed.returncode == 0 and "2 skipped" in resumed.stderr
    wrong = run_cli(
        batch_args(config, batch_input(tmp_path), tmp_path / "x.jsonl", "--error-file", str(errors))
    )
    assert wrong.returncode == 2 and "--output-format openai-batch" in wrong.stderr


def test_kill_9_then_resume_writes_every_custom_id_exactly_once(tmp_path: Path) -> None:
    import random
    import signal
    import subprocess
    import time

    with MockServer() as server:
        config = tmp_path / "conn.json"
        config.write_text(json.dumps(make_config(server.url + "?latency_ms=20")))
        n = 600
        text = "".join(line(f"req-{i}", f"row {i}") + "\n" for i in range(n))
        source = batch_input(tmp_path, text)
        out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
        args = batch_args(
            config,
            source,
            out,
            "--output-format",
            "openai-batch",
            "--error-file",
            str(errors),
            "--concurrency",
            "8",
            "--quiet",
        )
        rng = random.Random(11)
        for attempt in range(2):
            proc = subprocess.Popen([*args, "--resume"] if attempt else args)
            try:
                time.sleep(rng.uniform(0.8, 1.6))
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            if attempt == 0:  # 600 rows take at least 1.5 s to send: killed part way
                written = out.read_bytes().count(b"\n") if out.exists() else 0
                assert written < n
        done = run_cli([*args, "--resume"])
        assert done.returncode == 0, done.stderr
        ids = [entry["custom_id"] for entry in read_lines(out) + read_lines(errors)]
        assert sorted(ids) == sorted(f"req-{i}" for i in range(n))
