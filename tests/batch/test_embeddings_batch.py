"""Embeddings batch runs: rows packed into requests and split back by ``data[].index``, each
row with its own result, key, cache entry and share of the tokens; a missing index fails
exactly its row, a 400 for one bad input fails only that row, base64 asked for and decoded."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from openai_compat import ConfigurationError, run_batch, run_batch_sync
from openai_compat.batch.packing import share_tokens
from openai_compat.testing import MockServer, embedding_vector
from tests.batch.test_batch_cli import batch_args, run_cli
from tests.conftest import CANARY, NO_RETRY, make_config

EMBED_FORMAT = json.dumps({"model": "mock-model", "input": "{{text}}"})


def cfg(server: MockServer, query: str = "", **extra: Any) -> dict[str, Any]:
    extra.setdefault("request_format", EMBED_FORMAT)
    return make_config(server.base_url + "/v1/embeddings" + query, **extra)


def rows(n: int, text: str = "row number {i} ") -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": text.format(i=i) * (1 + i % 3)} for i in range(n)]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _embedding_requests(server: MockServer) -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.path.endswith("/embeddings")]


def test_rows_are_packed_by_64_and_each_gets_its_own_vector_and_tokens(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    given = rows(300)
    summary = run_batch_sync(cfg(server), given, out, key="id", rate=None, retry=NO_RETRY)
    assert (summary.ok, summary.failed) == (300, 0)
    sent = _embedding_requests(server)
    assert 5 <= len(sent) <= 12  # 300 rows in packs of at most 64, never one per row
    assert all(isinstance(body["input"], list) and len(body["input"]) <= 64 for body in sent)
    assert sum(len(body["input"]) for body in sent) == 300
    assert {body["encoding_format"] for body in sent} == {"base64"}
    assert max(len(body["input"]) for body in sent) == 64
    by_key = {line["key"]: line for line in read_lines(out)}
    texts = {row["id"]: row["text"] for row in given}
    for key, line in by_key.items():
        assert line["error"] is None
        assert line["output"] == {"embedding": embedding_vector(texts[key])}
    # Each request's prompt_tokens shared among its rows, adding up exactly.
    reported = sum(sum(max(len(t.split()), 1) for t in body["input"]) for body in sent)
    assert sum(line["usage"]["prompt_tokens"] for line in by_key.values()) == reported
    assert summary.total_tokens == reported


def test_answers_out_of_order_are_split_by_index(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    given = rows(100)
    run_batch_sync(cfg(server, "?scenario=shuffle"), given, out, key="id", rate=None)
    texts = {row["id"]: row["text"] for row in given}
    lines = read_lines(out)
    assert len(lines) == 100
    for line in lines:
        assert line["output"]["embedding"] == embedding_vector(texts[line["key"]])


def test_a_missing_index_fails_exactly_the_rows_it_lacks(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    summary = run_batch_sync(
        cfg(server, "?scenario=missing"), rows(64), out, key="id", rate=None, concurrency=1
    )
    sent = _embedding_requests(server)
    assert len(sent) == 1 and len(sent[0]["input"]) == 64
    assert (summary.ok, summary.failed) == (63, 1)
    failed = [line for line in read_lines(out) if line["error"] is not None]
    assert [line["key"] for line in failed] == ["r63"]
    assert failed[0]["error"]["message"] == (
        "the answer held no embedding for this row (input 63 of the 64 sent in one "
        "request; it held 63 embedding(s))"
    )


def test_a_pack_refused_for_one_bad_input_is_sent_row_by_row(
    server: MockServer, tmp_path: Path
) -> None:
    given = rows(10)
    given[4]["text"] = ""  # the scripted server, like OpenAI, refuses an empty input
    out = tmp_path / "out.jsonl"
    summary = run_batch_sync(
        cfg(server), given, out, key="id", rate=None, concurrency=1, retry=NO_RETRY
    )
    assert (summary.ok, summary.failed) == (9, 1)
    by_key = {line["key"]: line for line in read_lines(out)}
    assert by_key["r4"]["error"]["status"] == 400
    assert "empty string" in by_key["r4"]["error"]["message"]
    assert by_key["r5"]["output"]["embedding"] == embedding_vector(given[5]["text"])
    # The pack, the pack again in floats, then each row alone (the bad one in floats too).
    assert len(server.requests) == 2 + 10 + 1


def test_a_server_refusing_base64_is_asked_for_floats(server: MockServer) -> None:
    notices: list[str] = []

    async def run() -> list[Any]:
        async with run_batch(
            cfg(server, "?scenario=no-base64"),
            rows(200),
            key="id",
            rate=None,
            concurrency=1,
            on_notice=notices.append,
            retry=NO_RETRY,
        ) as batch:
            return [result async for result in batch]

    results = asyncio.run(run())
    assert len(results) == 200 and all(r.error is None for r in results)
    formats = [body.get("encoding_format") for body in _embedding_requests(server)]
    assert formats[:2] == ["base64", None]
    assert set(formats[2:]) == {None}
    assert len(formats) == 2 + 3  # 200 rows: the first pack twice, then 3 more packs
    assert (
        notices.count(
            'the endpoint refused encoding_format "base64": asking for floats from now on'
        )
        == 1
    )


def test_a_payload_asking_for_floats_gets_floats(server: MockServer, tmp_path: Path) -> None:
    request_format = json.dumps(
        {"model": "mock-model", "input": "{{text}}", "encoding_format": "float", "dimensions": 3}
    )
    out = tmp_path / "out.jsonl"
    run_batch_sync(cfg(server, request_format=request_format), rows(5), out, rate=None)
    assert {b["encoding_format"] for b in _embedding_requests(server)} == {"float"}
    assert all(len(line["output"]["embedding"]) == 3 for line in read_lines(out))


def test_a_rerun_of_a_packed_job_is_served_from_the_cache_row_by_row(
    server: MockServer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.sqlite"
    first = tmp_path / "first.jsonl"
    run_batch_sync(cfg(server), rows(100), first, key="id", rate=None, cache=cache)
    assert len(_embedding_requests(server)) >= 2
    server.clear()
    # 20 new rows beside the 100 cached: only they are sent, packed.
    more = rows(120)
    second = tmp_path / "second.jsonl"
    summary = run_batch_sync(cfg(server), more, second, key="id", rate=None, cache=cache)
    assert (summary.ok, summary.cached) == (120, 100)
    sent = _embedding_requests(server)
    assert sum(len(body["input"]) for body in sent) == 20 and len(sent) == 1
    first_lines = {line["key"]: line for line in read_lines(first)}
    for line in read_lines(second):
        if line["key"] in first_lines:
            assert line["cached"] is True
            assert line["output"] == first_lines[line["key"]]["output"]


def test_a_resumed_run_sends_only_the_rows_not_done(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run_batch_sync(cfg(server), rows(70), out, key="id", rate=None)
    server.clear()
    summary = run_batch_sync(cfg(server), rows(100), out, key="id", rate=None, mode="resume")
    assert summary.ok == 30
    assert sum(len(body["input"]) for body in _embedding_requests(server)) == 30
    keys = [line["key"] for line in read_lines(out)]
    assert sorted(keys) == sorted(f"r{i}" for i in range(100))


def test_usage_is_shared_in_proportion_and_adds_up() -> None:
    assert share_tokens(100, [1, 1, 2]) == [25, 25, 50]
    assert sum(share_tokens(101, [3, 5, 7, 11])) == 101
    assert share_tokens(0, [1, 2]) == [0, 0]
    assert share_tokens(5, [0, 0]) == [3, 2]


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "must be 1 to 2048"), (2049, "must be 1 to 2048"), ("8", "must be 1 to 2048")],
)
def test_rows_per_request_out_of_range_is_refused(
    server: MockServer, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        run_batch_sync(cfg(server), rows(1), rows_per_request=value)
    assert caught.value.field == "rows_per_request"


def test_rows_per_request_for_chat_is_refused_saying_why(server: MockServer) -> None:
    with pytest.raises(ConfigurationError) as caught:
        run_batch_sync(make_config(server.url), rows(1), rows_per_request=8)
    assert caught.value.field == "rows_per_request"
    assert '"api": "embeddings"' in str(caught.value)


def test_the_cli_packs_by_rows_per_request_and_writes_parquet(
    server: MockServer, tmp_path: Path
) -> None:
    config = tmp_path / "conn.json"
    config.write_text(json.dumps(cfg(server)))
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows(40)))
    out = tmp_path / "out.parquet"
    env = {**os.environ, "PYTHONPATH": "src"}
    result = run_cli(
        batch_args(config, source, out, "--key", "id", "--rows-per-request", "16"), env=env
    )
    assert result.returncode == 0, result.stderr
    sent = _embedding_requests(server)
    assert [len(body["input"]) for body in sent] == [16, 16, 8]
    table = pq.read_table(out)
    assert table.num_rows == 40
    bad = run_cli(batch_args(config, source, out, "--rows-per-request", "0"), env=env)
    assert bad.returncode == 2 and "rows_per_request" in bad.stderr
    assert CANARY not in bad.stderr
    assert "Traceback" not in bad.stderr


# -- vectors are typed columns ---------------------------------------------------------------


def test_parquet_holds_vectors_as_a_list_of_float32(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    given = rows(70)
    given[3]["text"] = ""  # a failed row: its vector is null, not text
    run_batch_sync(cfg(server), given, out, key="id", rate=None, retry=NO_RETRY)
    table = pq.read_table(out)
    assert table.schema.field("embedding").type == pa.list_(pa.float32())
    by_key = dict(
        zip(table.column("key").to_pylist(), table.column("embedding").to_pylist(), strict=True)
    )
    assert by_key["r0"] == embedding_vector(given[0]["text"])
    assert by_key["r3"] is None


def test_csv_and_jsonl_hold_vectors_as_json_arrays(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    given = rows(3)
    run_batch_sync(cfg(server), given, out, key="id", rate=None)
    with out.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert json.loads(lines[0]["output.embedding"]) == embedding_vector(
        {r["id"]: r["text"] for r in given}[lines[0]["key"]]
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_table_holds_vectors_as_real_arrays_or_json(
    server: MockServer, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'v.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"v_{uuid.uuid4().hex[:12]}")
    given = rows(80)
    summary = run_batch_sync(cfg(server), given, url, key="id", rate=None, output_table="vectors")
    assert summary.ok == 80
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT id, embedding FROM vectors")).all())
        if kind == "postgresql":
            column_type = conn.execute(
                text(
                    "SELECT data_type, udt_name FROM information_schema.columns "
                    "WHERE table_name = 'vectors' AND column_name = 'embedding'"
                )
            ).one()
            assert tuple(column_type) == ("ARRAY", "_float4")
    engine.dispose()
    vector = found["r5"] if kind == "postgresql" else json.loads(found["r5"])
    assert vector == embedding_vector(given[5]["text"])
    assert len(found) == 80


def test_openai_batch_lines_for_embeddings_are_packed_and_answered_per_line(
    server: MockServer, tmp_path: Path
) -> None:
    source = tmp_path / "batchinput.jsonl"
    texts = {f"request-{i}": f"text number {i}" for i in range(100)}
    source.write_text(
        "".join(
            json.dumps(
                {
                    "custom_id": custom_id,
                    "method": "POST",
                    "url": "/v1/embeddings",
                    "body": {"model": "mock-model", "input": text},
                }
            )
            + "\n"
            for custom_id, text in texts.items()
        )
    )
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(source.read_text().replace("/v1/embeddings", "/v1/chat/completions", 1))
    out = tmp_path / "output.jsonl"
    summary = run_batch_sync(cfg(server), source, out, output_format="openai-batch", rate=None)
    assert (summary.ok, summary.failed) == (100, 0)
    assert len(_embedding_requests(server)) < 10
    for entry in read_lines(out):
        body = entry["response"]["body"]
        assert entry["error"] is None and entry["response"]["status_code"] == 200
        assert body["data"][0]["embedding"] == embedding_vector(texts[entry["custom_id"]])
    # A line for another API than the connection's is a failed row, saying which.
    summary = run_batch_sync(
        cfg(server), wrong, tmp_path / "o2.jsonl", output_format="openai-batch", rate=None
    )
    assert (summary.ok, summary.failed) == (99, 1)


def test_each_row_is_priced_by_its_share_of_the_tokens(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    # One USD per thousand input tokens: a row's cost is its share of prompt_tokens / 1000.
    summary = run_batch_sync(
        cfg(server), rows(130), out, key="id", rate=None, prices="input=1000,output=0"
    )
    lines = read_lines(out)
    reported = sum(
        sum(max(len(t.split()), 1) for t in body["input"]) for body in _embedding_requests(server)
    )
    assert sum(line["usage"]["prompt_tokens"] for line in lines) == reported
    for line in lines:
        assert line["cost"] == pytest.approx(line["usage"]["prompt_tokens"] / 1000)
    assert summary.cost == pytest.approx(reported / 1000)
