"""Batch runs against the scripted server: results, failures, 429 slow-down, checkpoints, shards."""

from __future__ import annotations

import asyncio
import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest

from openai_compat import BatchResult, ConfigurationError, run_batch, run_batch_sync
from openai_compat.batch import Rate, Shard, open_rows
from openai_compat.testing import (
    MockServer,
    chat_chunks,
    chat_completion,
    error_reply,
    json_reply,
    sse_reply,
)
from tests.conftest import CANARY, FAST_RETRY, NO_RETRY, make_config

TEMPLATE_FORMAT = json.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
)
OUTPUTS = [
    {"name": "choices.0.message.content", "as": "answer"},
    {"name": "usage.total_tokens", "as": "tokens"},
]


def cfg(server: MockServer, query: str = "", **extra: Any) -> dict[str, Any]:
    return make_config(server.url + query, request_format=TEMPLATE_FORMAT, **extra)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": f"row {i}"} for i in range(n)]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def collect(config: dict[str, Any], data: Any, **options: Any) -> list[BatchResult]:
    results: list[BatchResult] = []
    options.setdefault("rate", None)
    options.setdefault("retry", NO_RETRY)
    run_batch_sync(config, data, on_result=results.append, **options)
    return results


# -- results ---------------------------------------------------------------------------------


def test_result_lines_have_exactly_the_listed_keys(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    summary = run_batch_sync(
        cfg(server), rows(5), out, outputs=OUTPUTS, key="id", rate=None, retry=NO_RETRY
    )
    assert (summary.ok, summary.failed, summary.skipped) == (5, 0, 0)
    lines = read_lines(out)
    assert len(lines) == 5
    for line in lines:
        assert list(line) == ["key", "output", "usage", "error", "attempts", "latency_ms"]
        number = line["key"].removeprefix("r")
        tokens = line["usage"]["total_tokens"]
        assert tokens > 0
        assert line["output"] == {"answer": f"You said: row {number}", "tokens": tokens}
        assert line["error"] is None and line["attempts"] == 1
        assert line["latency_ms"] > 0
    assert summary.total_tokens == sum(line["usage"]["total_tokens"] for line in lines)
    assert summary.requests == 5


def test_include_input_and_response(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    data = [*rows(2), {"id": "bad"}]
    run_batch_sync(
        cfg(server),
        data,
        out,
        key="id",
        include_input=True,
        include_response=True,
        rate=None,
        retry=NO_RETRY,
    )
    lines = {line["key"]: line for line in read_lines(out)}
    assert list(lines["r0"]) == [
        "key",
        "output",
        "usage",
        "error",
        "attempts",
        "latency_ms",
        "input",
        "response",
    ]
    assert lines["r0"]["input"] == {"id": "r0", "text": "row 0"}
    assert lines["r0"]["response"]["object"] == "chat.completion"
    assert lines["bad"]["input"] == {"id": "bad"} and lines["bad"]["response"] is None


def test_key_defaults_to_the_row_index(server: MockServer) -> None:
    results = collect(cfg(server), rows(4))
    assert sorted(r.key for r in results) == [0, 1, 2, 3]


def test_extraction_is_the_same_streamed_and_not(server: MockServer) -> None:
    sample = '{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "x"}}]}'
    outputs: dict[bool, Any] = {}
    for stream in (False, True):
        server.clear()
        config = cfg(server, is_stream=stream, response_format=sample)
        results = collect(config, [{"text": "hello there"}])
        assert results[0].error is None
        outputs[stream] = results[0].output
        assert server.requests[0].json.get("stream", False) is stream
    assert (
        outputs[False]
        == outputs[True]
        == {
            "choices.0.delta.role": "assistant",
            "choices.0.delta.content": "You said: hello there",
        }
    )


def test_streamed_answer_split_into_pieces_is_assembled(server: MockServer) -> None:
    server.enqueue(
        sse_reply(chat_chunks("Hello streamed world", include_usage=True), split_at=[5, 17, 40])
    )
    results = collect(cfg(server, is_stream=True), [{"text": "x"}], outputs=OUTPUTS)
    assert results[0].output == {
        "answer": "Hello streamed world",
        "tokens": results[0].usage["total_tokens"],
    }  # type: ignore[index]


def test_parse_json_outputs_end_to_end(server: MockServer) -> None:
    server.enqueue(
        json_reply(chat_completion('{"label": "bug", "urgent": true}')),
        json_reply(chat_completion("no JSON here")),
    )
    outputs = [
        {"name": "choices.0.message.content", "parse": "json", "fields": ["label", "urgent"]}
    ]
    results = collect(cfg(server), rows(2), outputs=outputs, concurrency=1)
    assert results[0].output == {"label": "bug", "urgent": True} and results[0].error is None
    assert results[1].output == {"label": None, "urgent": None}
    assert results[1].error is not None and "not valid JSON" in results[1].error["message"]


# -- per-row failures --------------------------------------------------------------------------


def test_endpoint_errors_fail_only_their_row(server: MockServer) -> None:
    server.enqueue(
        error_reply(400, "Invalid 'messages': too long", param="messages"),
        json_reply(chat_completion("fine")),
        error_reply(500, "boom"),
        error_reply(500, "boom"),
        error_reply(500, "boom"),
    )
    results = collect(cfg(server), rows(4), concurrency=1, retry=FAST_RETRY, outputs=OUTPUTS)
    by_key = {r.key: r for r in results}
    assert by_key[0].error == {
        "status": 400,
        "message": by_key[0].error["message"],  # type: ignore[index]
    }
    assert "too long" in by_key[0].error["message"]  # type: ignore[index]
    assert by_key[0].attempts == 1
    assert by_key[1].error is None and by_key[1].output["answer"] == "fine"
    assert by_key[2].error is not None and by_key[2].error["status"] == 500
    assert by_key[2].attempts == 3, "the retries are counted"
    assert by_key[3].error is None


@pytest.mark.parametrize(
    ("scenario", "status", "words"),
    [
        ("disconnect", None, "closed the connection"),
        ("stall&stall_s=5", None, "timed out"),
        ("502-html", 502, "HTML page"),
        ("error-in-stream", None, "invalid content"),
    ],
)
def test_transport_and_stream_failures_are_recorded(
    server: MockServer, scenario: str, status: int | None, words: str
) -> None:
    config = cfg(server, f"?scenario={scenario}", is_stream=True, config={"timeout": 0.5})
    results = collect(config, rows(2))
    assert len(results) == 2
    for result in results:
        assert result.error is not None, result
        assert result.error["status"] == status
        assert words in result.error["message"]
        assert result.attempts >= 1


def test_unreachable_endpoint_fails_every_row_with_the_reason(tmp_path: Path) -> None:
    config = make_config("http://127.0.0.1:9/v1/chat/completions", request_format=TEMPLATE_FORMAT)
    results = collect(config, rows(3))
    assert len(results) == 3
    assert all("connection refused" in r.error["message"] for r in results)  # type: ignore[index]


def test_unreadable_input_lines_become_failed_results(server: MockServer, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\nnot json\n[1, 2]\n\n{"text": "b"}\n')
    results = collect(cfg(server), source)
    by_key = {r.key: r for r in results}
    assert sorted(by_key) == [0, 1, 2, 3]
    assert by_key[1].error is not None and "line 2 is not valid JSON" in by_key[1].error["message"]
    assert by_key[2].error is not None and "JSON list, not an object" in by_key[2].error["message"]
    assert by_key[0].error is None and by_key[3].error is None
    assert len(server.requests) == 2


# -- 429 ---------------------------------------------------------------------------------------


async def test_a_429_with_retry_after_pauses_the_whole_run(server: MockServer) -> None:
    server.enqueue(error_reply(429, "Rate limit reached", headers={"retry-after": "0.6"}))
    notices: list[str] = []
    arrivals: list[float] = []
    started = time.monotonic()
    async with run_batch(
        cfg(server), rows(12), concurrency=2, rate=None, retry=FAST_RETRY, on_notice=notices.append
    ) as run:
        async for result in run:
            assert result.error is None
            arrivals.append(time.monotonic() - started)
    # Only the row already in flight next to the throttled one may finish during the pause.
    assert sum(1 for t in arrivals if t < 0.5) <= 1, arrivals
    assert max(arrivals) >= 0.6
    assert run.scheduler.pauses >= 1
    assert any("429" in n and "pausing" in n for n in notices)
    assert run.summary.requests == 13


async def test_a_row_that_keeps_getting_429_fails_and_still_slows_the_run(
    server: MockServer,
) -> None:
    server.enqueue(error_reply(429, "Rate limit reached", headers={"retry-after": "0.5"}))
    arrivals: list[tuple[float, BatchResult]] = []
    started = time.monotonic()
    async with run_batch(cfg(server), rows(6), concurrency=1, rate=None, retry=NO_RETRY) as run:
        async for result in run:
            arrivals.append((time.monotonic() - started, result))
    _first_time, first = arrivals[0]
    assert first.error is not None and first.error["status"] == 429
    assert all(t >= 0.5 for t, _ in arrivals[1:]), arrivals


async def test_the_rate_limit_spaces_requests() -> None:
    from openai_compat.batch.scheduler import Scheduler

    scheduler = Scheduler(Rate.parse("20/second"))
    started = time.monotonic()
    for _ in range(40):
        await scheduler.ready()
    # 20 go at once (one second's burst), the next 20 at 20 per second.
    assert 0.85 <= time.monotonic() - started <= 1.6


@pytest.mark.parametrize(
    ("text", "per_second"), [("600/minute", 10.0), ("10/s", 10.0), ("7200/hour", 2.0), ("30", 0.5)]
)
def test_rate_parsing(text: str, per_second: float) -> None:
    rate = Rate.parse(text)
    assert rate is not None and rate.per_second == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["off", "0", "none"])
def test_rate_off(text: str) -> None:
    assert Rate.parse(text) is None


def test_bad_rate_is_explained() -> None:
    with pytest.raises(ConfigurationError, match="600/minute"):
        Rate.parse("fast")


# -- checkpoint: resume, retry-failed -------------------------------------------------------------


def test_an_output_with_results_is_not_overwritten_by_accident(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run_batch_sync(cfg(server), rows(3), out, rate=None)
    with pytest.raises(ConfigurationError, match="--resume"):
        run_batch_sync(cfg(server), rows(3), out, rate=None)
    summary = run_batch_sync(cfg(server), rows(3), out, mode="overwrite", rate=None)
    assert summary.ok == 3 and len(read_lines(out)) == 3


def test_resume_skips_written_rows_and_repairs_a_torn_last_line(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run_batch_sync(cfg(server), rows(10)[:4], out, key="id", rate=None)
    with out.open("ab") as f:
        f.write(b'{"key":"r4","output":{"answ')  # the process died in the middle of this line
    server.clear()
    summary = run_batch_sync(cfg(server), rows(10), out, key="id", mode="resume", rate=None)
    assert (summary.skipped, summary.ok) == (4, 6)
    keys = [line["key"] for line in read_lines(out)]
    assert sorted(keys) == sorted(f"r{i}" for i in range(10))
    assert len(server.requests) == 6


def test_retry_failed_runs_only_failed_and_missing_rows(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    server.enqueue(error_reply(500, "boom"), error_reply(503, "busy"))
    first = run_batch_sync(
        cfg(server), rows(6)[:5], out, key="id", concurrency=1, rate=None, retry=NO_RETRY
    )
    assert (first.ok, first.failed) == (3, 2)
    server.clear()
    second = run_batch_sync(
        cfg(server), rows(6), out, key="id", mode="retry-failed", rate=None, retry=NO_RETRY
    )
    assert (second.skipped, second.ok, second.failed) == (3, 3, 0)
    lines = read_lines(out)
    assert sorted(line["key"] for line in lines) == [f"r{i}" for i in range(6)]
    assert all(line["error"] is None for line in lines)
    texts = sorted(r.json["messages"][0]["content"] for r in server.requests)
    assert texts == ["row 0", "row 1", "row 5"]


def test_resume_refuses_a_file_that_is_not_batch_output(server: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"hello": 1}\n')
    with pytest.raises(ConfigurationError, match="not a result line"):
        run_batch_sync(cfg(server), rows(2), out, mode="resume", rate=None)


# -- CSV and Parquet ----------------------------------------------------------------------------


def test_csv_in_csv_out_and_resume(server: MockServer, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        for i in range(6):
            writer.writerow([f"t{i}", f'line one, "quoted"\nline {i}'])
        writer.writerow(["t6"])  # ragged: a failed row
    out = tmp_path / "out.csv"
    server.enqueue(json_reply(chat_completion('multi\nline, "answer"')))
    summary = run_batch_sync(
        cfg(server), source, out, key="id", outputs=OUTPUTS, rate=None, concurrency=1
    )
    assert (summary.ok, summary.failed) == (6, 1)
    with out.open(newline="") as f:
        records = list(csv.DictReader(f))
    assert list(records[0]) == [
        "key",
        "output.answer",
        "output.tokens",
        "usage.prompt_tokens",
        "usage.completion_tokens",
        "usage.total_tokens",
        "error.status",
        "error.message",
        "attempts",
        "latency_ms",
    ]
    by_key = {r["key"]: r for r in records}
    assert by_key["t0"]["output.answer"] == 'multi\nline, "answer"'
    assert by_key["t1"]["output.answer"] == 'You said: line one, "quoted"\nline 1'
    assert "has 1 fields, the header has 2" in by_key["row:6"]["error.message"]
    # A torn record (cut inside a quoted value) is repaired on resume.
    with out.open("ab") as f:
        f.write(b't9,"half a\nvalue')
    server.clear()
    again = run_batch_sync(
        cfg(server), source, out, key="id", outputs=OUTPUTS, mode="resume", rate=None
    )
    assert (again.skipped, again.ok) == (7, 0)
    assert out.read_bytes().endswith(b"\n") and b"half a" not in out.read_bytes()


def test_parquet_input_is_read_in_batches(server: MockServer, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    table = pa.table({"id": list(range(1200)), "text": [f"p{i}" for i in range(1200)]})
    pq.write_table(table, source, row_group_size=1000)
    assert sum(1 for _ in open_rows(source)) == 1200
    results = collect(cfg(server), open_rows(source), key="id", concurrency=32)
    assert sorted(r.key for r in results) == list(range(1200))
    assert all(r.error is None for r in results)


def test_input_format_errors_are_explained(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text("[]")
    with pytest.raises(ConfigurationError, match=r"name it \.jsonl"):
        open_rows(tmp_path / "in.json")
    with pytest.raises(ConfigurationError, match="no such input file"):
        open_rows(tmp_path / "missing.jsonl")


# -- shards -------------------------------------------------------------------------------------


def test_shards_split_the_rows_with_no_overlap_and_no_gap(
    server: MockServer, tmp_path: Path
) -> None:
    seen: list[Any] = []
    for k in (1, 2, 3):
        out = tmp_path / f"part{k}.jsonl"
        summary = run_batch_sync(cfg(server), rows(300), out, key="id", shard=f"{k}/3", rate=None)
        keys = [line["key"] for line in read_lines(out)]
        assert 60 < len(keys) < 140, "a hash split is roughly even"
        assert summary.other_shards == 300 - len(keys)
        seen += keys
    assert sorted(seen) == sorted(f"r{i}" for i in range(300))


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "2", "a/b"])
def test_bad_shards_are_explained(text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Shard.parse(text)
    assert info.value.field == "shard"


def test_shard_hash_is_stable_across_processes() -> None:
    # Fixed expectations: any Python, any PYTHONHASHSEED gives the same split.
    shard = Shard.parse("1/4")
    assert [shard.contains(str(i)) for i in range(12)] == [
        Shard.parse("1/4").contains(str(i)) for i in range(12)
    ]
    assert sum(shard.contains(str(i)) for i in range(4000)) in range(850, 1150)


# -- secrets ------------------------------------------------------------------------------------


def test_the_api_key_never_reaches_the_output_file(tmp_path: Path) -> None:
    with MockServer(api_key="sk-other") as locked:
        out = tmp_path / "out.jsonl"
        summary = run_batch_sync(
            cfg(locked),
            rows(3),
            out,
            include_input=True,
            include_response=True,
            rate=None,
            retry=NO_RETRY,
        )
    assert summary.failed == 3
    text = out.read_text()
    assert "401" in text
    assert CANARY not in text


def test_async_iteration_can_stop_early(server: MockServer) -> None:
    async def first_two() -> list[BatchResult]:
        got = []
        async with run_batch(cfg(server), rows(50), concurrency=4, rate=None) as run:
            async for result in run:
                got.append(result)
                if len(got) == 2:
                    break
        return got

    assert len(asyncio.run(first_two())) == 2


def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_sync_entry_points_run_on_uvloop(server: MockServer, tmp_path: Path) -> None:
    # run_batch_sync and the CLI use openai_compat._sync.run_sync; uvloop comes with
    # uvicorn[standard]. on_result is called on the run's loop, so it sees which loop that is.
    from openai_compat._sync import run_sync

    async def loop_module() -> str:
        return _loop_module()

    assert run_sync(loop_module()).startswith("uvloop")
    loops: list[str] = []
    run_batch_sync(
        cfg(server), rows(2), on_result=lambda _: loops.append(_loop_module()), rate=None
    )
    run_batch_sync(
        cfg(server),
        rows(2),
        tmp_path / "out.jsonl",
        on_result=lambda _: loops.append(_loop_module()),
        rate=None,
    )
    assert len(loops) == 4
    assert all(module.startswith("uvloop") for module in loops), loops


def test_run_batch_sync_inside_a_running_loop(server: MockServer, tmp_path: Path) -> None:
    # A notebook or a server already runs a loop: the run goes on a loop of its own in a
    # worker thread (run_sync), since the running one cannot be re-entered.
    async def from_async_code() -> tuple[int, int]:
        without_file = run_batch_sync(cfg(server), rows(3), rate=None)
        into_file = run_batch_sync(cfg(server), rows(3), tmp_path / "out.jsonl", rate=None)
        return without_file.ok, into_file.ok

    assert asyncio.run(from_async_code()) == (3, 3)
    assert len(read_lines(tmp_path / "out.jsonl")) == 3


def test_a_misspelt_option_is_refused_before_anything_is_sent(
    server: MockServer, tmp_path: Path
) -> None:
    # The options are typed (**options: Unpack[...]), not named in the signatures: a name
    # no entry point takes is still a TypeError at run time, as with named parameters.
    with pytest.raises(TypeError, match="unexpected keyword argument 'kee'"):
        run_batch(cfg(server), rows(2), kee="id")
    with pytest.raises(TypeError, match="unexpected keyword argument 'kee'"):
        run_batch_sync(cfg(server), rows(2), tmp_path / "out.jsonl", kee="id")
    with pytest.raises(TypeError, match="unexpected keyword argument 'mode'"):
        run_batch_sync(cfg(server), rows(2), mode="resume")  # file options need an output
    assert server.requests == []
    assert not (tmp_path / "out.jsonl").exists()
