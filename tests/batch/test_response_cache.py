"""The response cache: a request answered before is not sent (or paid for) again."""

from __future__ import annotations

import csv
import json
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openai_compat import ConfigurationError, run_batch_sync
from openai_compat.batch import ResponseCache
from openai_compat.batch.cache import request_key
from openai_compat.testing import MockServer, chat_completion, error_reply, json_reply
from tests.batch.test_batch_cli import batch_args, run_cli, write_inputs
from tests.conftest import CANARY, NO_RETRY, make_config

TEMPLATE_FORMAT = json.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
)


def cfg(server: MockServer, request_format: str = TEMPLATE_FORMAT) -> dict[str, Any]:
    return make_config(server.url, request_format=request_format)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": f"row {i}"} for i in range(n)]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_rerun_with_other_outputs_sends_nothing(server: MockServer, tmp_path: Path) -> None:
    cache = tmp_path / "answers.sqlite"
    first = tmp_path / "first.jsonl"
    run_batch_sync(cfg(server), rows(6), first, key="id", cache=cache, rate=None)
    assert len(server.requests) == 6
    assert {line["cached"] for line in read_lines(first)} == {False}
    server.clear()
    second = tmp_path / "second.jsonl"
    outputs = [
        {"name": "choices.0.message.content", "as": "summary"},
        {"name": "model", "as": "model"},
    ]
    summary = run_batch_sync(cfg(server), rows(6), second, key="id", cache=cache, outputs=outputs)
    assert server.requests == []
    assert (summary.ok, summary.cached, summary.total_tokens) == (6, 6, 0)
    by_key = {line["key"]: line for line in read_lines(second)}
    for i in range(6):
        line = by_key[f"r{i}"]
        assert line["cached"] is True
        assert line["output"] == {"summary": f"You said: row {i}", "model": "mock-model"}
        assert line["attempts"] == 0
        assert line["usage"]["total_tokens"] > 0  # what the stored answer reported


def test_the_key_is_the_url_and_the_canonical_body(server: MockServer, tmp_path: Path) -> None:
    cache = tmp_path / "answers.sqlite"
    reordered = json.dumps(
        {"messages": [{"content": "{{text}}", "role": "user"}], "model": "mock-model"}
    )
    warmer = json.dumps(
        {
            "model": "mock-model",
            "temperature": 0.9,
            "messages": [{"role": "user", "content": "{{text}}"}],
        }
    )
    run_batch_sync(cfg(server), rows(2), tmp_path / "a.jsonl", cache=cache)
    run_batch_sync(cfg(server, reordered), rows(2), tmp_path / "b.jsonl", cache=cache)
    assert len(server.requests) == 2  # the same JSON in another key order: the same request
    run_batch_sync(cfg(server, warmer), rows(2), tmp_path / "c.jsonl", cache=cache)
    assert len(server.requests) == 4  # another body: another request
    other_url = make_config(server.url + "?scenario=normal", request_format=TEMPLATE_FORMAT)
    run_batch_sync(other_url, rows(2), tmp_path / "d.jsonl", cache=cache)
    assert len(server.requests) == 6  # another endpoint URL: another request
    assert request_key("u", {"a": 1, "b": [1, 2]}) == request_key("u", {"b": [1, 2], "a": 1})
    assert request_key("u", {"a": 1}) != request_key("v", {"a": 1})


def test_only_successful_answers_are_stored(server: MockServer, tmp_path: Path) -> None:
    cache = tmp_path / "answers.sqlite"
    server.enqueue(error_reply(500, "boom"))
    first = run_batch_sync(
        cfg(server),
        rows(3),
        tmp_path / "a.jsonl",
        cache=cache,
        key="id",
        retry=NO_RETRY,
        concurrency=1,
    )
    assert first.failed == 1
    assert len(ResponseCache(cache)) == 2
    server.clear()
    second = run_batch_sync(cfg(server), rows(3), tmp_path / "b.jsonl", cache=cache, key="id")
    assert (second.ok, second.cached) == (3, 2)
    assert len(server.requests) == 1  # only the row that failed is asked again


def test_read_only_and_refresh_modes(server: MockServer, tmp_path: Path) -> None:
    cache = tmp_path / "answers.sqlite"
    with pytest.raises(ConfigurationError, match="read-only reads an existing one"):
        run_batch_sync(
            cfg(server), rows(1), tmp_path / "x.jsonl", cache=cache, cache_mode="read-only"
        )
    run_batch_sync(cfg(server), rows(2), tmp_path / "a.jsonl", cache=cache)
    server.clear()
    # read-only: stored answers are used, new ones are not stored.
    summary = run_batch_sync(
        cfg(server), rows(4), tmp_path / "b.jsonl", cache=cache, cache_mode="read-only"
    )
    assert (summary.cached, len(server.requests)) == (2, 2)
    assert len(ResponseCache(cache)) == 2
    # refresh: everything is asked again and stored anew.
    server.clear()
    server.enqueue(*(json_reply(chat_completion(f"fresh {i}")) for i in range(4)))
    summary = run_batch_sync(
        cfg(server), rows(4), tmp_path / "c.jsonl", cache=cache, cache_mode="refresh", concurrency=1
    )
    assert (summary.cached, len(server.requests)) == (0, 4)
    server.clear()
    last = tmp_path / "d.jsonl"
    run_batch_sync(cfg(server), rows(4), last, cache=cache)
    assert server.requests == []
    answers = sorted(line["output"]["choices.0.message.content"] for line in read_lines(last))
    assert answers == [f"fresh {i}" for i in range(4)]


def test_the_cache_file_holds_no_secret_and_no_url(server: MockServer, tmp_path: Path) -> None:
    cache = tmp_path / "answers.sqlite"
    config = cfg(server)
    config["advanced"] = {"headers": {"X-Team": "team-7"}}
    run_batch_sync(config, rows(5), tmp_path / "a.jsonl", cache=cache)
    assert len(ResponseCache(cache)) == 5
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("answers.sqlite*"))
    assert CANARY.encode() not in stored
    assert f"127.0.0.1:{server.port}".encode() not in stored
    assert b"You said: row 3" in stored  # the answers themselves are there


def test_the_public_entry_point_works_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite"
    url, body = "http://127.0.0.1:9/v1/chat/completions", {"model": "m", "messages": []}
    with ResponseCache(path) as cache:
        assert cache.put(url, body, {"id": "chatcmpl-1", "choices": []}, request_id="req_1")
        copy = pickle.loads(pickle.dumps(cache))
    hit = copy.get(url, body)
    assert hit is not None and hit.response["id"] == "chatcmpl-1" and hit.request_id == "req_1"
    code = (
        "import json, sys\n"
        "from openai_compat.batch import ResponseCache\n"
        "hit = ResponseCache(sys.argv[1], 'read-only').get(sys.argv[2], json.loads(sys.argv[3]))\n"
        "print(hit.response['id'], hit.request_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), url, json.dumps(body)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["chatcmpl-1", "req_1"]


def test_a_file_that_is_not_a_cache_is_refused(server: MockServer, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("these are not answers\n" * 100)
    with pytest.raises(ConfigurationError, match="is not a response cache"):
        run_batch_sync(cfg(server), rows(1), tmp_path / "a.jsonl", cache=bogus)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(ConfigurationError, match="is not a response cache"):
        run_batch_sync(
            cfg(server), rows(1), tmp_path / "b.jsonl", cache=other, cache_mode="read-only"
        )
    with pytest.raises(ConfigurationError, match="unknown cache mode"):
        ResponseCache(other, "sometimes")
    assert server.requests == []


def test_processes_sharing_one_cache_file(tmp_path: Path) -> None:
    """Four CLI processes at once over one cache file (two run the same rows, two shards):
    none fails on a lock, every answer is stored once, and a fifth run sends nothing."""
    with MockServer() as server:
        config, source = write_inputs(tmp_path, server, 300, "?latency_ms=2")
        cache = tmp_path / "shared.sqlite"
        extra = ("--key", "id", "--cache", str(cache), "--concurrency", "16", "--quiet")
        commands = [
            batch_args(config, source, tmp_path / "all-1.jsonl", *extra),
            batch_args(config, source, tmp_path / "all-2.jsonl", *extra),
            batch_args(config, source, tmp_path / "s1.jsonl", *extra, "--shard", "1/2"),
            batch_args(config, source, tmp_path / "s2.jsonl", *extra, "--shard", "2/2"),
        ]
        procs = [
            subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c in commands
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            assert "locked" not in err and CANARY not in err
        for name in ("all-1", "all-2"):
            lines = read_lines(tmp_path / f"{name}.jsonl")
            assert sorted(line["key"] for line in lines) == sorted(f"t{i}" for i in range(300))
            assert all(line["error"] is None for line in lines)
        assert len(ResponseCache(cache)) == 300
        sent = len(server.requests)
        assert 300 <= sent < 4 * 300  # some rows were answered from another process's answers
        server.clear()
        done = run_cli(batch_args(config, source, tmp_path / "last.jsonl", *extra[:-1]))
        assert done.returncode == 0, done.stderr
        assert server.requests == []
        assert "300 from the cache" in done.stderr
        assert {line["cached"] for line in read_lines(tmp_path / "last.jsonl")} == {True}


def test_csv_output_has_the_cached_and_cost_columns(server: MockServer, tmp_path: Path) -> None:
    cache, out = tmp_path / "answers.sqlite", tmp_path / "out.csv"
    options: dict[str, Any] = {"key": "id", "cache": cache, "prices": "input=1,output=1"}
    run_batch_sync(cfg(server), rows(2), out, **options)
    run_batch_sync(cfg(server), rows(4), out, mode="resume", **options)
    with out.open(newline="") as f:
        records = list(csv.DictReader(f))
    assert list(records[0])[-2:] == ["cached", "cost"]
    assert sorted(r["key"] for r in records) == ["r0", "r1", "r2", "r3"]
    assert all(r["cached"] == "false" and float(r["cost"]) > 0 for r in records)
    assert len(server.requests) == 4
