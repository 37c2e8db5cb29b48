"""Row keys: which rows a run sends, and under which key and number its results come back."""

from __future__ import annotations

import asyncio

import pytest

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
