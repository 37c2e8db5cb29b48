"""The written keys of a resumed run: compact, and a digest collision never skips a row."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from openai_compat import run_batch_sync
from openai_compat.batch import keyset
from openai_compat.batch.checkpoint import prepare_output
from openai_compat.batch.keyset import WrittenKeys
from openai_compat.testing import MockServer
from tests.conftest import NO_RETRY, make_config

TEMPLATE_FORMAT = json.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
)


def cfg(server: MockServer) -> dict[str, Any]:
    return make_config(server.url, request_format=TEMPLATE_FORMAT)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": f"row {i}"} for i in range(n)]


def keys_in(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines()]


def test_keys_that_share_a_digest_are_told_apart_by_reading_the_record() -> None:
    records = {0: "written", 50: "also written"}
    reads: list[int] = []

    def key_at(offset: int) -> str:
        reads.append(offset)
        return records[offset]

    written = WrittenKeys(key_at, digest=lambda token: 7)  # every key collides
    for offset, token in records.items():
        written.add(token, offset)
    written.freeze()
    assert "written" in written and "also written" in written
    reads.clear()
    assert "not written" not in written
    assert sorted(reads) == [0, 50]  # both candidates were read back, neither matched
    assert list(written) == ["written", "also written"]


def test_a_forced_collision_in_a_resumed_run_does_not_skip_the_unwritten_row(
    server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    run_batch_sync(cfg(server), rows(3), out, key="id", rate=None, retry=NO_RETRY)
    server.clear()
    # One digest for every key: each row not written shares it with the three written rows.
    monkeypatch.setattr(keyset, "default_digest", lambda token: 0)
    summary = run_batch_sync(
        cfg(server), rows(6), out, key="id", mode="resume", rate=None, retry=NO_RETRY
    )
    assert (summary.skipped, summary.ok) == (3, 3)
    assert sorted(keys_in(out)) == [f"r{i}" for i in range(6)]
    texts = sorted(r.json["messages"][0]["content"] for r in server.requests)
    assert texts == ["row 3", "row 4", "row 5"]


def test_a_forced_collision_after_retry_failed_reads_the_rewritten_file(
    server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    run_batch_sync(cfg(server), rows(4), out, key="id", rate=None, retry=NO_RETRY)
    # A failed line first: the rewrite moves every kept record, so offsets must be re-taken.
    failed = json.dumps({"key": "r9", "index": 9, "output": {}, "error": {"message": "boom"}})
    out.write_text(failed + "\n" + out.read_text())
    server.clear()
    monkeypatch.setattr(keyset, "default_digest", lambda token: 0)
    summary = run_batch_sync(
        cfg(server), rows(10), out, key="id", mode="retry-failed", rate=None, retry=NO_RETRY
    )
    assert (summary.skipped, summary.ok) == (4, 6)
    assert sorted(keys_in(out)) == sorted(f"r{i}" for i in range(10))


def test_csv_keys_are_read_back_across_quoted_line_ends(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    columns = ["key", "error.status", "error.message"]
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerow(["a\nwith a line end", "", ""])
        writer.writerow(['b "quoted"', "", ""])
    state = prepare_output(str(out), "csv", "resume", csv_columns=columns)
    try:
        assert "a\nwith a line end" in state.done and 'b "quoted"' in state.done
        assert "a" not in state.done and len(state.done) == 2
    finally:
        state.close()


def test_a_line_written_by_other_means_is_read_back_whole(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "key": {"b": 1, "a": 2}, "error": null}\n{"key": 17}\n')
    state = prepare_output(str(out), "jsonl", "resume")
    try:
        assert '{"a": 2, "b": 1}' in state.done and "17" in state.done
        assert "18" not in state.done and 17 not in state.done
    finally:
        state.close()


def test_a_million_keys_take_under_16_bytes_each() -> None:
    n = 1_000_000
    written = WrittenKeys(lambda offset: str(offset // 100), max_offset=n * 100)
    for i in range(n):
        written.add(str(i), i * 100)
    written.freeze()
    per_key = written.nbytes / n
    assert per_key < 16, per_key
    assert all(str(i) in written for i in range(0, n, 997))
    assert not any(str(n + i) in written for i in range(0, n, 997))


def test_a_key_not_written_is_read_back_only_on_a_chance_digest_match() -> None:
    # 38 digest bits (14 for the bucket, 24 in the entry): 100,000 misses against 100,000
    # keys match by chance about 0.04 times; a lost digest bit would make it thousands.
    reads: list[int] = []
    written = WrittenKeys(lambda offset: reads.append(offset) or "x", max_offset=1 << 30)
    for i in range(100_000):
        written.add(str(i), i)
    written.freeze()
    assert not any(str(-i - 1) in written for i in range(100_000))
    assert len(reads) <= 2
