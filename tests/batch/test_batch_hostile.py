"""Hostile input to batch runs: every row gets a line, every file problem is exit 2 up front.

Deep JSON, undecodable bytes, a `.gz` that is not gzip, a gzip cut off, payloads that JSON
cannot carry (NaN, lone surrogates), duplicate and missing keys, an absurd concurrency, an
output that is the input. Runs go through the real command line (``openai-compat batch`` in
a process, or `main` in this one) against the scripted server; after each, ``--resume``
must continue, not fail the same way forever.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from openai_compat import run_batch
from openai_compat.testing import MockServer, Reply
from tests.batch.test_batch_cli import batch_args, run_cli, run_main
from tests.conftest import NO_RETRY, make_config

TEMPLATE_FORMAT = json.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
)


def config_file(tmp_path: Path, server: MockServer) -> Path:
    path = tmp_path / "conn.json"
    path.write_text(json.dumps(make_config(server.url, request_format=TEMPLATE_FORMAT)))
    return path


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def strict_lines(path: Path) -> list[dict[str, Any]]:
    """The output's lines, read by a strict parser: NaN / Infinity are refused, and the
    bytes must be UTF-8 (a lone surrogate cannot be)."""
    text = path.read_bytes().decode("utf-8")
    return [json.loads(line, parse_constant=_no_constants) for line in text.splitlines()]


def by_key(path: Path) -> dict[Any, dict[str, Any]]:
    lines = strict_lines(path)
    keys = [line["key"] for line in lines]
    assert len(keys) == len(set(keys)), f"a row has two lines: {keys}"
    return {line["key"]: line for line in lines}


def keep_only(path: Path, key: Any) -> None:
    """Leave only the line of ``key`` in the output, as if the run had stopped after it."""
    kept = [
        line
        for line in path.read_bytes().splitlines(keepends=True)
        if json.loads(line)["key"] == key
    ]
    assert len(kept) == 1
    path.write_bytes(kept[0])


def message(line: dict[str, Any]) -> str:
    assert line["error"] is not None, line
    text: str = line["error"]["message"]
    return text


# -- deep nesting and undecodable input: a failed row each, and resume goes on ----------------


def test_deeply_nested_lines_are_failed_rows_and_resume_continues(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    too_deep_for_the_parser = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    over_the_limit = '{"text": ' + "[" * 70 + "]" * 70 + "}"
    rows.write_text(
        "\n".join(['{"text": "a"}', too_deep_for_the_parser, over_the_limit, '{"text": "b"}'])
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    args = batch_args(config_file(tmp_path, server), rows, out)
    code, err = run_main(args, capsys)
    assert code == 1, err
    assert "Traceback" not in err
    lines = by_key(out)
    assert sorted(lines) == [0, 1, 2, 3]
    assert lines[0]["error"] is None and lines[3]["error"] is None
    for key in (1, 2):
        assert f"input line {key + 1} is nested more than 64 levels deep" in message(lines[key])
    assert len(server.requests) == 2

    keep_only(out, 0)
    code, err = run_main([*args, "--resume"], capsys)
    assert code == 1, err
    assert sorted(by_key(out)) == [0, 1, 2, 3]
    assert len(server.requests) == 3


def test_undecodable_csv_lines_are_failed_rows_and_resume_continues(
    server: MockServer, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b'id,text\na,fine\nb,caf\xff au lait\nc,"two\nlines"\n')
    out = tmp_path / "out.jsonl"
    args = batch_args(config_file(tmp_path, server), rows, out, "--key", "id")
    result = run_cli(args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = by_key(out)
    assert sorted(lines) == ["a", "c", "row:1"]
    assert "input line 3 is not UTF-8 text" in message(lines["row:1"])
    assert lines["a"]["error"] is None and lines["c"]["error"] is None

    keep_only(out, "a")
    result = run_cli([*args, "--resume"])
    assert result.returncode == 1, result.stderr
    assert sorted(by_key(out)) == ["a", "c", "row:1"]


def test_a_jsonl_line_that_is_not_utf8_is_a_failed_row(server: MockServer, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b'{"text": "caf\xff"}\n{"text": "ok"}\n')
    out = tmp_path / "out.jsonl"
    result = run_cli(batch_args(config_file(tmp_path, server), rows, out))
    assert result.returncode == 1, result.stderr
    lines = by_key(out)
    assert "input line 1 is not UTF-8 text (byte 0xff" in message(lines[0])
    assert lines[1]["error"] is None


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("rows.jsonl.gz", b'{"text": "not gzipped"}\n', "rows.jsonl.gz is not gzip data"),
        ("rows.csv.gz", b"id,text\n1,a\n", "rows.csv.gz is not gzip data"),
        ("rows.parquet", b"not parquet at all", "cannot read rows.parquet as Parquet"),
        ("rows.csv", b"id,t\xffxt\n1,a\n", "the header row is not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_its_format_is_exit_2_before_anything_is_sent(
    server: MockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: bytes,
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(content)
    out = tmp_path / "out.jsonl"
    out.write_text('{"key": 0, "output": {}, "error": null}\n')
    before = out.read_bytes()
    result = run_cli(batch_args(config_file(tmp_path, server), name, out, "--overwrite"))
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert server.requests == []
    assert out.read_bytes() == before  # refused before the output was touched


def test_a_gzip_cut_off_midway_is_one_failed_row_for_the_rest_and_resume_continues(
    server: MockServer, tmp_path: Path
) -> None:
    whole = gzip.compress(
        b"".join(
            b'{"text": "row %d, padded to defeat compression %d"}\n' % (i, i * 7919)
            for i in range(400)
        )
    )
    rows = tmp_path / "rows.jsonl.gz"
    rows.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out.jsonl"
    args = batch_args(config_file(tmp_path, server), rows, out)
    result = run_cli(args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = by_key(out)
    failed = [line for line in lines.values() if line["error"] is not None]
    assert len(failed) == 1
    read = len(lines) - 1
    assert 0 < read < 400
    assert f"cannot be read after its first {read} rows" in message(failed[0])
    assert failed[0]["key"] == read

    keep_only(out, 0)
    result = run_cli([*args, "--resume"])
    assert result.returncode == 1, result.stderr
    assert sorted(by_key(out)) == list(range(read + 1))


# -- payloads JSON cannot carry: failed rows; the output is strict JSON -----------------------


def test_nan_and_lone_surrogates_fail_their_row_and_every_line_is_strict_json(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = tmp_path / "rows.parquet"
    table = pa.table(
        {
            "text": ["fine", "nan temperature", "also fine", "inf"],
            "temperature": [0.5, math.nan, 0.2, math.inf],
        }
    )
    pq.write_table(table, rows)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps([{"name": "temperature", "value": "temperature"}]))
    out = tmp_path / "out.jsonl"
    args = batch_args(
        config_file(tmp_path, server), rows, out, "--mapping", str(mapping), "--include-input"
    )
    code, err = run_main(args, capsys)
    assert code == 1, err
    lines = by_key(out)  # strict: no NaN / Infinity anywhere, the input included
    assert lines[0]["error"] is None and lines[2]["error"] is None
    assert "the payload cannot be sent as JSON: temperature is nan" in message(lines[1])
    assert "temperature is inf" in message(lines[3])
    assert lines[1]["input"] == {"text": "nan temperature", "temperature": None}
    # Rows are in flight together: they may arrive in either order.
    assert sorted(r.json["temperature"] for r in server.requests) == [0.2, 0.5]


def test_a_lone_surrogate_in_a_json_line_fails_the_row_and_is_written_as_u_fffd(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": "ok"}\n{"id": "b\\ud800", "text": "bad \\udfff"}\n')
    out = tmp_path / "out.csv"
    args = batch_args(config_file(tmp_path, server), rows, out, "--include-input", "--key", "id")
    code, err = run_main(args, capsys)
    assert code == 1, err
    text = out.read_bytes().decode("utf-8")  # UTF-8 throughout
    assert "b\ufffd" in text and "bad \ufffd" in text
    assert "lone surrogate \\udfff" in text
    assert len(server.requests) == 1
    # The key as written is the key a resumed run compares: nothing runs twice.
    code, err = run_main([*args, "--resume"], capsys)
    assert code == 0, err
    assert "0 ok, 0 failed, 2 skipped" in err
    assert len(server.requests) == 1


def test_a_value_json_has_no_spelling_for_fails_only_its_row(server: MockServer) -> None:
    import datetime

    async def main() -> list[Any]:
        config = make_config(server.url, request_format=TEMPLATE_FORMAT)
        data = [
            {"text": datetime.date(2024, 5, 1), "when": 1},
            {"text": "x", "when": datetime.date(2024, 5, 1)},
        ]
        mapping = [{"name": "metadata.when", "value": "when"}]
        async with run_batch(config, data, mapping=mapping, rate=None, retry=NO_RETRY) as run:
            return sorted([r async for r in run], key=lambda r: r.index)

    first, second = asyncio.run(main())
    assert first.error is None
    assert server.requests[0].json["messages"][0]["content"] == "2024-05-01"
    assert second.error is not None
    assert "metadata.when is a date, which JSON cannot hold" in second.error["message"]


# -- keys ----------------------------------------------------------------------------------------


def test_a_duplicate_key_mid_file_is_a_failed_row_and_the_run_goes_on(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    ids = ["t0", "t1", "t1", "t2"]
    rows.write_text(
        "".join(json.dumps({"id": i, "text": f"row {n}"}) + "\n" for n, i in enumerate(ids))
    )
    out = tmp_path / "out.jsonl"
    args = batch_args(config_file(tmp_path, server), rows, out, "--key", "id")
    code, err = run_main(args, capsys)
    assert code == 1, err
    lines = by_key(out)
    assert sorted(lines) == ["row:2", "t0", "t1", "t2"]
    words = message(lines["row:2"])
    assert "row 2 is a duplicate" in words and "'t1'" in words and "row 1" in words
    assert "choose a unique column" in words
    assert len(server.requests) == 3

    for mode, exit_code in (("--resume", 0), ("--retry-failed", 1)):
        code, err = run_main([*args, mode], capsys)
        assert code == exit_code, err
        assert sorted(by_key(out)) == ["row:2", "t0", "t1", "t2"]
    assert len(server.requests) == 3


def test_a_key_column_the_first_row_lacks_is_exit_2_before_sending(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n')
    out = tmp_path / "out.jsonl"
    code, err = run_main(
        batch_args(config_file(tmp_path, server), rows, out, "--key", "ID"), capsys
    )
    assert code == 2
    assert "key: the first row has no column 'ID' (its columns: 'id', 'text')" in err
    assert server.requests == []
    assert not out.exists() or out.read_bytes() == b""


def test_a_later_row_without_a_key_is_a_failed_row_saying_so(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": "x"}\n{"text": "y"}\n{"id": "", "text": "z"}\n')
    out = tmp_path / "out.jsonl"
    code, err = run_main(
        batch_args(config_file(tmp_path, server), rows, out, "--key", "id"), capsys
    )
    assert code == 1, err
    lines = by_key(out)
    assert lines["a"]["error"] is None
    for index in (1, 2):
        assert f"row {index} has no value in the key column 'id'" in message(lines[f"row:{index}"])
    assert len(server.requests) == 1


# -- concurrency -------------------------------------------------------------------------------


def test_concurrency_above_the_maximum_is_exit_2_before_sending(
    server: MockServer, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n')
    out = tmp_path / "out.jsonl"
    result = run_cli(
        batch_args(config_file(tmp_path, server), rows, out, "--concurrency", "100000000")
    )
    assert result.returncode == 2
    assert "concurrency: must be 1 to 10000" in result.stderr
    assert server.requests == []


async def test_workers_follow_the_rows_not_the_concurrency(server: MockServer) -> None:
    config = make_config(server.url, request_format=TEMPLATE_FORMAT)
    data = [{"text": f"r{i}"} for i in range(3)]
    most = 0

    async def count_tasks() -> None:
        nonlocal most
        while True:
            most = max(most, len(asyncio.all_tasks()))
            await asyncio.sleep(0)

    sampler = asyncio.create_task(count_tasks())
    async with run_batch(config, data, concurrency=10_000, rate=None, retry=NO_RETRY) as run:
        results = [result async for result in run]
    sampler.cancel()
    assert [r.error for r in results] == [None, None, None]
    # This test, the sampler, the supervisor, the feeder, one worker per row and the HTTP
    # client's own few: not one worker per unit of --concurrency (that was 10,004 tasks).
    assert 7 <= most <= 20
    assert len(server.requests) == 3


# -- the output is not the input ---------------------------------------------------------------


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink", "relative"])
def test_an_output_that_is_the_input_is_refused_before_any_file_is_touched(
    server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n{"text": "b"}\n')
    before = rows.read_bytes()
    out: Path | str = rows
    if link == "symlink":
        out = tmp_path / "out.jsonl"
        out.symlink_to(rows)
    elif link == "hardlink":
        out = tmp_path / "out.jsonl"
        os.link(rows, out)
    elif link == "relative":
        monkeypatch.chdir(tmp_path)
        (tmp_path / "sub").mkdir()
        out = "sub/../rows.jsonl"
    for mode in ("--overwrite", "--resume", "--retry-failed"):
        result = run_cli(batch_args(config_file(tmp_path, server), rows, Path(out), mode))
        assert result.returncode == 2, result.stderr
        assert "is the input file" in result.stderr and "choose another --output" in result.stderr
        assert rows.read_bytes() == before
    assert server.requests == []


def test_stdin_or_stdout_redirected_to_the_same_file_is_refused(
    server: MockServer, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n')
    before = rows.read_bytes()
    config = config_file(tmp_path, server)
    with open(rows, "rb") as stdin:
        result = run_cli(batch_args(config, "-", rows, "--overwrite"), stdin=stdin)
    assert result.returncode == 2
    assert "is the input file (stdin)" in result.stderr
    with open(rows, "ab") as stdout:
        proc = subprocess.run(
            batch_args(config, rows, Path("-")), stdout=stdout, stderr=subprocess.PIPE, timeout=60
        )
    assert proc.returncode == 2
    assert b"stdout is the input file" in proc.stderr
    assert rows.read_bytes() == before
    assert server.requests == []


def test_a_terminal_or_pipe_as_both_stdin_and_stdout_is_fine(
    server: MockServer, tmp_path: Path
) -> None:
    result = run_cli(
        batch_args(config_file(tmp_path, server), "-", Path("-")), input='{"text": "a"}\n'
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["error"] is None


def test_nan_and_a_lone_surrogate_in_an_answer_are_written_as_strict_json(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A server that writes Python's NaN (not JSON) and an escaped lone surrogate.
    body = (
        b'{"choices": [{"message": {"role": "assistant", "content": "hi \\ud800"}}],'
        b' "score": NaN, "usage": {"total_tokens": Infinity}}'
    )
    server.enqueue(Reply(status=200, headers={"content-type": "application/json"}, pieces=(body,)))
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n')
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(["choices.0.message.content", "score"]))
    out = tmp_path / "out.jsonl"
    args = batch_args(
        config_file(tmp_path, server), rows, out, "--outputs", str(outputs), "--include-response"
    )
    code, err = run_main(args, capsys)
    assert code == 0, err
    (line,) = strict_lines(out)
    assert line["output"] == {"choices.0.message.content": "hi \ufffd", "score": None}
    assert line["response"]["score"] is None
    assert line["response"]["usage"] == {"total_tokens": None}
