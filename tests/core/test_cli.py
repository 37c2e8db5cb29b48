"""The console script, run as a real process against the scripted server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openai_compat.testing import MockServer, chat_chunks, sse_reply
from tests.conftest import CANARY, make_config

EXE = [sys.executable, "-m", "openai_compat"]


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*EXE, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert CANARY not in done.stdout and CANARY not in done.stderr
    return done


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_spec_prints_one_connector_spec_line() -> None:
    done = cli("spec")
    assert done.returncode == 0
    (message,) = lines(done.stdout)
    assert message["type"] == "connector_spec"
    props = message["connector_spec"]["connection_specification"]["properties"]
    assert props["api_key"]["multiwoven_secret"] is True


def test_check_success_and_failure_both_exit_zero(server: MockServer, tmp_path: Path) -> None:
    good = cli("check", "--config", write(tmp_path, "c.json", make_config(server.url)))
    assert good.returncode == 0
    assert lines(good.stdout) == [
        {"type": "connection_status", "connection_status": {"status": "succeeded"}}
    ]
    bad_cfg = make_config(server.url + "?scenario=401")
    bad = cli("check", "--config", write(tmp_path, "b.json", bad_cfg))
    assert bad.returncode == 0
    status = lines(bad.stdout)[0]["connection_status"]
    assert status["status"] == "failed" and "HTTP 401" in status["message"]


def test_check_unusable_arguments_exit_two(tmp_path: Path) -> None:
    done = cli("check", "--config", str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr and done.stdout == ""
    broken = cli("check", "--config", write(tmp_path, "x.json", "{oops"))
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr


def test_discover_prints_the_catalog(tmp_path: Path) -> None:
    done = cli(
        "discover",
        "--config",
        write(tmp_path, "c.json", make_config("http://h/v1/chat/completions")),
    )
    assert done.returncode == 0
    assert lines(done.stdout)[0]["catalog"]["request_rate_limit"] == 600


def test_read_with_config_and_payload_from_stdin(server: MockServer, tmp_path: Path) -> None:
    payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": "cli"}]})
    done = cli(
        "read",
        "--config",
        write(tmp_path, "c.json", make_config(server.url)),
        "--payload",
        "-",
        stdin=payload,
    )
    assert done.returncode == 0, done.stderr
    (record,) = lines(done.stdout)
    assert record["record"]["data"]["choices"][0]["message"]["content"] == "You said: cli"


def test_read_streaming_with_assemble(server: MockServer, tmp_path: Path) -> None:
    server.enqueue(sse_reply(chat_chunks("streamed answer"), split_at=[20, 60]))
    cfg = write(tmp_path, "c.json", make_config(server.url, is_stream=True))
    payload = write(tmp_path, "p.json", {"model": "m", "messages": []})
    done = cli("read", "--config", cfg, "--payload", payload, "--assemble")
    assert done.returncode == 0, done.stderr
    messages = lines(done.stdout)
    assert all(m["type"] == "record" for m in messages)
    assert messages[-1]["record"]["data"]["choices"][0]["message"]["content"] == "streamed answer"


def test_read_sync_config(server: MockServer, tmp_path: Path) -> None:
    sync = {
        "source": {
            "name": "s",
            "type": "source",
            "query_type": "ai_ml",
            "connection_specification": make_config(server.url),
        },
        "model": {
            "name": "m",
            "query": json.dumps(
                {"model": "m", "messages": [{"role": "user", "content": "via sync"}]}
            ),
            "query_type": "ai_ml",
        },
        "destination": {},
        "stream": {"name": "x"},
        "sync_id": "9",
    }
    done = cli("read", "--sync-config", write(tmp_path, "s.json", sync))
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout)[0]["record"]["data"]["choices"][0]["message"]["content"] == (
        "You said: via sync"
    )


@pytest.mark.parametrize("payload", ["[1]", '"text"', "42"])
def test_read_rejects_non_object_payload_before_sending(
    server: MockServer, tmp_path: Path, payload: str
) -> None:
    done = cli(
        "read",
        "--config",
        write(tmp_path, "c.json", make_config(server.url)),
        "--payload",
        write(tmp_path, "p.json", payload),
    )
    assert done.returncode == 1
    (log,) = lines(done.stdout)
    assert log["log"]["level"] == "error" and "must be a JSON object" in log["log"]["message"]
    assert server.requests == []


def test_read_failure_is_an_error_log_and_non_zero_exit(server: MockServer, tmp_path: Path) -> None:
    cfg = write(tmp_path, "c.json", make_config(server.url + "?scenario=500"))
    payload = write(tmp_path, "p.json", {"model": "m", "messages": []})
    done = cli("--retries", "0", "read", "--config", cfg, "--payload", payload)
    assert done.returncode == 1
    (log,) = lines(done.stdout)
    assert log["log"]["level"] == "error" and "HTTP 500" in log["log"]["message"]
    assert "HTTP 500" in done.stderr


def test_retries_are_reported_on_stderr(server: MockServer, tmp_path: Path) -> None:
    cfg = write(tmp_path, "c.json", make_config(server.url + "?scenario=429"))
    payload = write(tmp_path, "p.json", {"model": "m", "messages": []})
    done = cli("--retries", "1", "read", "--config", cfg, "--payload", payload)
    assert "retry 1 in 0.02 s" in done.stderr
    assert done.stdout.count("\n") == 1  # one error log line, no duplicate output


# -- hostile files: a clear error and an exit code, never a traceback --------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_read_with_a_deeply_nested_payload_is_a_clear_error(
    server: MockServer, tmp_path: Path, depth: int
) -> None:
    payload = '{"model": "m", "messages": ' + "[" * depth + "]" * depth + "}"
    done = cli(
        "read",
        "--config",
        write(tmp_path, "c.json", make_config(server.url)),
        "--payload",
        write(tmp_path, "p.json", payload),
    )
    assert done.returncode == 1
    (log,) = lines(done.stdout)
    assert log["log"]["message"] == (
        "nothing was sent: payload: is nested more than 64 levels deep; flatten it "
        "(objects and arrays inside each other)"
    )
    assert "Traceback" not in done.stderr
    assert server.requests == []


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_check_with_a_deeply_nested_config_file_is_a_clear_error(
    tmp_path: Path, depth: int
) -> None:
    nested = "[" * depth + "]" * depth
    whole = cli("check", "--config", write(tmp_path, "deep.json", '{"x": ' + nested + "}"))
    assert whole.returncode == 2 and whole.stdout == ""
    assert f"config file {tmp_path / 'deep.json'} is nested more than 64 levels" in whole.stderr
    assert "Traceback" not in whole.stderr
    inner = make_config("http://127.0.0.1:9/v1/chat/completions", request_format=nested)
    done = cli("check", "--config", write(tmp_path, "c.json", inner))
    assert done.returncode == 0 and "Traceback" not in done.stderr
    status = lines(done.stdout)[0]["connection_status"]
    assert status["status"] == "failed"
    assert status["message"].startswith("invalid configuration: request_format: is nested")


def test_read_with_a_lone_surrogate_in_the_payload_is_a_clear_error(
    server: MockServer, tmp_path: Path
) -> None:
    payload = '{"model": "m", "messages": [{"role": "user", "content": "a\\ud800"}]}'
    done = cli(
        "read",
        "--config",
        write(tmp_path, "c.json", make_config(server.url)),
        "--payload",
        write(tmp_path, "p.json", payload),
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (log,) = lines(done.stdout)
    assert log["log"]["message"].startswith(
        "nothing was sent: payload: holds U+D800 (a lone surrogate) at position 2 of the text "
        "at messages.0.content"
    )
    assert server.requests == []


@pytest.mark.parametrize("pasted", [f"{CANARY}\n", f"{CANARY}\r\n", f" {CANARY}\t"])
def test_a_key_pasted_with_a_line_break_is_sent_stripped(tmp_path: Path, pasted: str) -> None:
    with MockServer(api_key=CANARY) as keyed:  # 401 unless "Bearer <CANARY>" exactly
        config = make_config(keyed.url, api_key=pasted)
        payload = {"model": "m", "messages": [{"role": "user", "content": "key"}]}
        done = cli(
            "read",
            "--config",
            write(tmp_path, "c.json", config),
            "--payload",
            write(tmp_path, "p.json", payload),
        )
        assert keyed.requests[-1].headers["authorization"] == f"Bearer {CANARY}"
    assert done.returncode == 0, done.stderr
    (record,) = lines(done.stdout)
    assert record["record"]["data"]["choices"][0]["message"]["content"] == "You said: key"
