"""Row keys: which rows a run sends, and under which key and number its results come back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from openai_compat.batch import run_batch_sync
from openai_compat.batch.engine import BatchRun
from openai_compat.batch.keys import Shard
from openai_compat.batch.results import BatchResult, BatchSummary
from openai_compat.batch.row_keys import RowKeys
from openai_compat.errors import ConfigurationError
from openai_compat.testing import MockServer
from tests.conftest import NO_RETRY, make_config


def test_a_repeated_or_missing_key_fails_its_row_under_its_own_number() -> None:
    summary = BatchSummary()
    keys = RowKeys("id", None, summary)
    assert keys.admit(0, {"id": "a"}, True) == ("a", None)
    key, problem = keys.admit(1, {"id": "a"}, True) or (None, None)
    assert key == "row:1" and problem is not None and "is the key of row 0" in problem
    key, problem = keys.admit(2, {"id": ""}, True) or (None, None)
    assert key == "row:2" and problem is not None and "has no value in the key column" in problem


def test_other_shards_and_written_keys_are_left_out_and_counted() -> None:
    summary = BatchSummary()
    keys = RowKeys(None, Shard(1, 2), summary, skip={"0", "1", "2", "3"})
    admitted = [keys.admit(n, {"q": n}, True) for n in range(8)]
    assert summary.other_shards + summary.skipped + sum(a is not None for a in admitted) == 8
    assert summary.other_shards > 0 and summary.skipped > 0
    assert all(str(a[0]) not in {"0", "1", "2", "3"} for a in admitted if a is not None)


def test_the_first_rows_columns_must_hold_the_key() -> None:
    keys = RowKeys("ID", None, BatchSummary())
    with pytest.raises(ConfigurationError) as caught:
        keys.admit(0, {"id": 1, "text": "t"}, True)
    assert caught.value.field == "key"
    assert caught.value.reason.startswith("the first row has no column 'ID' (its columns: 'id'")


async def _results(run: BatchRun) -> list[BatchResult]:
    async with run:
        return [result async for result in run]


def test_rows_fed_with_their_numbers_come_back_under_them(server: MockServer) -> None:
    rows = [{"q": "a"}, {"q": "b"}, {"q": "c"}]
    run = BatchRun(make_config(server.url), rows, retry=NO_RETRY, row_numbers=[4, 7, 9])
    results = asyncio.run(_results(run))
    assert sorted((r.index, r.key) for r in results) == [(4, 4), (7, 7), (9, 9)]
    keyed = BatchRun(
        make_config(server.url),
        [{"id": "x", "q": "a"}, {"id": "y", "q": "b"}],
        key="id",
        retry=NO_RETRY,
        row_numbers=[3, 5],
    )
    results = asyncio.run(_results(keyed))
    assert sorted((r.index, r.key) for r in results) == [(3, "x"), (5, "y")]


def test_a_fallback_key_never_equals_a_real_key() -> None:
    keys = RowKeys("id", None, BatchSummary())
    assert keys.admit(0, {"id": "row:1"}, True) == ("row:1", None)
    key, problem = keys.admit(1, {"id": ""}, True) or (None, None)
    assert key not in ("row:1", "x") and problem is not None and "no value" in problem
    assert keys.admit(2, {"id": "x"}, True) == ("x", None)
    # A real key equal to a fallback key given before: that row is told apart too.
    later = RowKeys("id", None, BatchSummary())
    first, _ = later.admit(0, {"id": None}, True) or (None, None)
    assert first == "row:0"
    second, problem = later.admit(1, {"id": "row:0"}, True) or (None, None)
    assert second != "row:0" and problem is not None
    assert "the key given to row 0, which has no key of its own" in problem
    third, problem = later.admit(2, {"id": second}, True) or (None, None)
    assert len({first, second, third}) == 3 and problem is not None


def test_a_run_writes_one_line_per_row_when_a_real_key_looks_like_a_fallback(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    rows = [{"id": "row:1", "q": "a"}, {"id": "", "q": "b"}, {"id": "x", "q": "c"}]
    summary = run_batch_sync(
        make_config(server.url), rows, out, key="id", retry=NO_RETRY, include_input=True
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({line["key"] for line in lines}) == 3
    assert sorted(line["input"]["q"] for line in lines) == ["a", "b", "c"]
    assert (summary.ok, summary.failed) == (2, 1)


def test_a_table_output_keeps_the_row_without_a_key_apart(
    server: MockServer, tmp_path: Path
) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'out.db'}"
    rows = [{"id": "row:1", "q": "a"}, {"id": "", "q": "b"}, {"id": "x", "q": "c"}]
    summary = run_batch_sync(
        make_config(server.url), rows, url, key="id", output_table="res", retry=NO_RETRY
    )
    with sqlite3.connect(tmp_path / "out.db") as connection:
        stored = connection.execute("SELECT id, error_message IS NOT NULL FROM res").fetchall()
    assert len(stored) == 3 and sum(failed for _, failed in stored) == summary.failed == 1
