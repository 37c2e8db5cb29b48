"""The per-row shortcuts of issue 14 give what the longer ways gave.

Payloads are fresh copies of the request format, JSON Lines input reads as ``json.loads``
reads it (msgspec first, ``json.loads`` for what msgspec refuses), and results that are
ready together are written in one go, each line as ``jsonl_line`` spells it, in the order
they are reported.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from openai_compat.batch import run_batch_sync
from openai_compat.batch.results import BatchResult
from openai_compat.batch.sources.files import UnreadableRow, _jsonl_rows
from openai_compat.batch.writers import JsonlWriter, jsonl_line
from openai_compat.mapping import PayloadBuilder
from openai_compat.testing import MockServer
from tests.conftest import NO_RETRY, make_config


def test_each_payload_is_a_fresh_copy_with_the_keys_in_order() -> None:
    builder = PayloadBuilder(
        {
            "model": "m",
            "static": {"a": [1, {"b": 2}]},
            "messages": [{"role": "user", "content": "x {{text}} y {{n}}"}],
            "last": "{{n}}",
        },
        [{"name": "max_tokens", "value": "n", "type": "number"}],
    )
    first = builder.build({"text": "one", "n": "1"})
    first["static"]["a"][1]["b"] = 99
    first["static"]["a"].append(3)
    first["messages"][0]["content"] = "changed"
    second = builder.build({"text": "two", "n": "2"})
    assert second == {
        "model": "m",
        "static": {"a": [1, {"b": 2}]},
        "messages": [{"role": "user", "content": "x two y 2"}],
        "last": "2",
        "max_tokens": 2,
    }
    assert list(second) == ["model", "static", "messages", "last", "max_tokens"]
    payload, body = builder.build_body({"text": "three", "n": "3"})
    assert body == json.dumps(payload, ensure_ascii=False).encode()


def _read(lines: list[bytes]) -> list[Any]:
    return list(_jsonl_rows(io.BytesIO(b"\n".join(lines) + b"\n")))


def test_input_lines_read_as_json_loads_reads_them() -> None:
    plain = [
        b'{"a": 1, "a": 2, "b": [1.5, -0, 1e5, "\\u00e9\\ud83d\\ude00"]}',
        b'{"n": 123456789012345678901234567890, "tiny": 5e-324}',
    ]
    assert _read(plain) == [json.loads(line) for line in plain]
    # What msgspec refuses, json.loads still reads: NaN, a number past a float, a byte
    # order mark, a lone surrogate.
    nan, inf, bom, surrogate = _read(
        [b'{"x": NaN}', b'{"x": 1E400}', b'\xef\xbb\xbf{"x": 1}', b'{"x": "\\ud800"}']
    )
    assert math.isnan(nan["x"]) and inf["x"] == math.inf
    assert bom == {"x": 1} and surrogate == {"x": "\ud800"}


def test_input_lines_json_loads_refuses_are_still_refused() -> None:
    digits, tab, deep, listed = _read(
        [
            b'{"x": ' + b"1" * 5000 + b"}",
            b'{"x": "a\tb"}',
            b'{"x": ' + b"[" * 70 + b"]" * 70 + b"}",
            b"[1]",
        ]
    )
    assert isinstance(digits, UnreadableRow) and "line 1 is not valid JSON" in digits.reason
    assert isinstance(tab, UnreadableRow) and "line 2 is not valid JSON" in tab.reason
    assert isinstance(deep, UnreadableRow) and "line 3 is nested more than" in deep.reason
    assert isinstance(listed, UnreadableRow) and "a JSON list, not an object" in listed.reason


def test_results_written_together_are_the_lines_written_one_by_one(tmp_path: Path) -> None:
    results = [
        BatchResult(key=1, index=1, output={"a": "é"}, attempts=1, latency_ms=2.5),
        BatchResult(key="k", index=2, error={"status": 500, "message": "x"}, attempts=3),
        BatchResult(key=3, index=3, output={"a": float("nan"), "b": "\ud800"}),
    ]
    writer = JsonlWriter(str(tmp_path / "together.jsonl"))
    writer.write_many(results[:1])
    writer.write_many(results[1:])
    writer.close()
    assert (tmp_path / "together.jsonl").read_bytes() == b"".join(map(jsonl_line, results))
    assert b'"a":null,"b":"\xef\xbf\xbd"' in jsonl_line(results[2])


def test_every_result_is_reported_after_its_line_is_written(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    template = json.dumps({"model": "m", "messages": [{"role": "user", "content": "{{text}}"}]})
    seen: list[tuple[BatchResult, int]] = []

    def on_result(result: BatchResult) -> None:
        seen.append((result, len(out.read_bytes().splitlines())))

    summary = run_batch_sync(
        make_config(server.url, request_format=template),
        [{"text": f"row {i}"} for i in range(300)],
        out,
        on_result=on_result,
        concurrency=32,
        rate=None,
        retry=NO_RETRY,
    )
    assert summary.ok == 300
    lines = out.read_bytes().splitlines(keepends=True)
    # The file holds the results in the order they were reported, each line as spelt
    # one by one, and each was in the file when it was reported.
    assert lines == [jsonl_line(result) for result, _ in seen]
    assert all(written > at for at, (_, written) in enumerate(seen))
    assert sorted(result.index for result, _ in seen) == list(range(300))
