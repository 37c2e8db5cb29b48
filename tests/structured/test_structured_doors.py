"""Structured outputs through the doors: the command line (typed Parquet), Endpoint.parse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from openai_compat import Endpoint
from openai_compat.cli import main
from openai_compat.structured import StructuredOutputError
from openai_compat.testing import chat_completion, json_reply
from tests.conftest import CANARY, NO_RETRY, make_config

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["bug", "question"]},
        "urgency": {"type": "integer"},
        "score": {"type": "number"},
        "done": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "who": {"type": "object", "properties": {"name": {"type": "string"}}},
        "extra": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["label", "urgency"],
}
ANSWER = {
    "label": "bug",
    "urgency": 2,
    "score": 1,
    "done": True,
    "tags": ["a", "b"],
    "who": {"name": "Ann"},
    "extra": 5,
}


def _files(tmp_path: Path, server: Any, schema: Any = SCHEMA) -> list[str]:
    config = make_config(
        server.url,
        request_format='{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}',
    )
    (tmp_path / "conn.json").write_text(json.dumps(config))
    (tmp_path / "in.csv").write_text("id,text\nt1,printer\nt2,vpn\n")
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    return [
        "batch",
        "--config",
        str(tmp_path / "conn.json"),
        "--input",
        str(tmp_path / "in.csv"),
        "--key",
        "id",
        "--concurrency",
        "1",
        "--rate",
        "off",
        "--schema",
        str(tmp_path / "schema.json"),
    ]


def test_cli_writes_typed_parquet_columns(tmp_path: Path, server: Any, capsys: Any) -> None:
    server.enqueue(
        json_reply(chat_completion(json.dumps(ANSWER))),
        json_reply(chat_completion(json.dumps({"label": "question", "urgency": "x"}))),
        json_reply(chat_completion(json.dumps({"label": "question", "urgency": 1}))),
    )
    out = tmp_path / "out.parquet"
    code = main([*_files(tmp_path, server), "--schema-mode", "json_schema", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "schema mode json_schema: 1 valid first, 1 after re-asks, 0 invalid" in err
    assert CANARY not in err
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["label"] == pa.large_string()
    assert types["urgency"] == pa.int64()
    assert types["score"] == pa.float64()
    assert types["done"] == pa.bool_()
    assert types["tags"] == pa.large_list(pa.large_string())
    assert types["who"] == pa.struct([pa.field("name", pa.large_string())])
    assert types["extra"] == pa.large_string()  # a union: JSON text
    rows = sorted(table.to_pylist(), key=lambda r: r["key"])
    assert rows[0]["urgency"] == 2 and rows[0]["tags"] == ["a", "b"]
    assert rows[0]["who"] == {"name": "Ann"} and rows[0]["extra"] == "5"
    assert rows[1]["label"] == "question" and rows[1]["attempts"] == 2
    assert len(server.requests) == 3


def test_cli_jsonl_lines_keep_typed_values_and_the_mode(
    tmp_path: Path, server: Any, capsys: Any
) -> None:
    server.enqueue(*[json_reply(chat_completion(json.dumps(ANSWER)))] * 2)
    out = tmp_path / "out.jsonl"
    code = main([*_files(tmp_path, server), "--schema-mode", "prompt", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["output"] == ANSWER
    assert lines[0]["schema"] == {"mode": "prompt", "answers": 1, "valid": True}


def test_cli_never_valid_is_a_failed_row_exit_1(tmp_path: Path, server: Any, capsys: Any) -> None:
    bad = json_reply(chat_completion(json.dumps({"label": "soon", "urgency": 1})))
    server.enqueue(*[bad] * 4)
    out = tmp_path / "out.jsonl"
    code = main(
        [
            *_files(tmp_path, server),
            "--schema-mode",
            "json_schema",
            "--reasks",
            "1",
            "--include-response",
            "--output",
            str(out),
        ]
    )
    assert code == 1, capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(server.requests) == 4
    assert lines[0]["error"]["message"].startswith("after 2 attempts: $.label: ")
    assert json.loads(lines[0]["response"]["choices"][0]["message"]["content"])["label"] == "soon"


@pytest.mark.parametrize(
    ("schema", "extra", "words"),
    [
        ({"type": "string"}, [], "the top level must be an object"),
        ({"type": "object", "required": "x"}, [], "is not a valid JSON Schema"),
        (SCHEMA, ["--reasks", "-1"], "reasks: must be 0 to 20"),
    ],
)
def test_cli_bad_schema_is_exit_2_before_any_request(
    tmp_path: Path, server: Any, capsys: Any, schema: Any, extra: list[str], words: str
) -> None:
    code = main([*_files(tmp_path, server, schema), *extra, "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and "Traceback" not in err
    assert server.requests == []


class Ticket(BaseModel):
    label: Literal["bug", "question", "billing"]
    urgency: int
    summary: str


PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "Printer on fire"}]}


async def test_parse_returns_the_model_instance_after_a_reask(server: Any) -> None:
    server.enqueue(
        json_reply(chat_completion('{"label": "bug", "urgency": "soon", "summary": "x"}')),
        json_reply(chat_completion('```json\n{"label": "bug", "urgency": 3, "summary": "x"}\n```')),
    )
    async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
        ticket = await endpoint.parse(PAYLOAD, schema=Ticket, mode="json_schema")
    assert ticket == Ticket(label="bug", urgency=3, summary="x")
    assert server.requests[0].json["response_format"]["json_schema"]["name"] == "Ticket"
    assert len(server.requests) == 2


def test_parse_sync_raises_with_the_last_answer_when_never_valid(server: Any) -> None:
    server.enqueue(*[json_reply(chat_completion('{"label": "soon"}'))] * 3)
    endpoint = Endpoint(make_config(server.url), retry=NO_RETRY)
    with pytest.raises(StructuredOutputError) as caught:
        endpoint.parse_sync(PAYLOAD, schema=Ticket, mode="prompt")
    assert len(server.requests) == 3
    assert str(caught.value).startswith("after 3 attempts: $: ")
    assert caught.value.answers == 3
    assert caught.value.response["choices"][0]["message"]["content"] == '{"label": "soon"}'
    assert CANARY not in str(caught.value)


def test_cli_sql_table_columns_are_typed(tmp_path: Path, server: Any, capsys: Any) -> None:
    import sqlite3

    server.enqueue(*[json_reply(chat_completion(json.dumps(ANSWER)))] * 2)
    db = tmp_path / "out.db"
    code = main(
        [*_files(tmp_path, server), "--schema-mode", "json_schema",
         "--output", f"sqlite:///{db}", "--output-table", "tickets"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with sqlite3.connect(db) as connection:
        declared = {row[1]: row[2] for row in connection.execute("PRAGMA table_info(tickets)")}
        row = connection.execute(
            "SELECT label, urgency, score, done, tags, who, extra FROM tickets WHERE id = 't1'"
        ).fetchone()
    assert (declared["label"], declared["urgency"], declared["score"]) == (
        "TEXT",
        "BIGINT",
        "FLOAT",
    )
    assert (declared["done"], declared["tags"], declared["who"], declared["extra"]) == (
        "BOOLEAN",
        "JSON",
        "JSON",
        "JSON",
    )
    # SQLite gives a column declared JSON numeric affinity: the JSON text 5 reads back as 5.
    assert row == ("bug", 2, 1.0, 1, '["a","b"]', '{"name":"Ann"}', 5)
