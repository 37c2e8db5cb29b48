"""Structured outputs against llama.cpp's llama-server, which turns ``json_schema`` into a
grammar: every row valid on its first answer, typed Parquet columns, ``auto`` choosing
``json_schema``, and ``check --capabilities`` measuring it as enforced.

The server runs with a chat template of no generation prompt: with the tiny model's own
template, this llama-server build puts the prompt ("assistant:") into the grammar and
answers 400 "Failed to initialize samplers" to any schema (then ``auto`` leaves the mode).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openai_compat.cli import main
from tests.conftest import CANARY

from ._helpers import config_for
from ._launch import Running, start_llama_server

pytestmark = [pytest.mark.compat, pytest.mark.server("llama")]
ROWS = 200  # the figure: about 0.4 s a row on a quiet 2-core machine, 5 s under heavy load
TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["bug", "question", "billing"]},
        "urgency": {"type": "integer", "minimum": 0, "maximum": 9},
        "summary": {"type": "string", "maxLength": 6},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
    },
    "required": ["label", "urgency", "summary", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def grammar_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    extra = ["--jinja", "--chat-template", TEMPLATE]
    with start_llama_server(tmp_path_factory.mktemp("llama-json"), CANARY, *extra) as running:
        yield running


def _config(server: Running, tmp: Path) -> Path:
    config = config_for(server, "tiny-llama")
    config["request_format"] = {
        "model": "tiny-llama",
        "messages": [{"role": "user", "content": "Classify this ticket: {{text}}"}],
        "max_tokens": 120,
        "temperature": 0,
    }
    path = tmp / "conn.json"
    path.write_text(json.dumps(config))
    return path


def test_batch_every_row_valid_with_typed_parquet(
    grammar_llama: Running, tmp_path: Path, capsys: Any
) -> None:
    conn = _config(grammar_llama, tmp_path)
    rows = "id,text\n" + "".join(f"t{i},printer {i} on fire\n" for i in range(ROWS))
    (tmp_path / "in.csv").write_text(rows)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    out = tmp_path / "out.parquet"
    code = main(
        [
            "batch", "--config", str(conn), "--input", str(tmp_path / "in.csv"),
            "--output", str(out), "--key", "id", "--schema", str(tmp_path / "schema.json"),
            "--concurrency", "1", "--rate", "off",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"schema mode json_schema: {ROWS} valid first, 0 after re-asks, 0 invalid" in err
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["label"] == pa.large_string()
    assert types["urgency"] == pa.int64()
    assert types["summary"] == pa.large_string()
    assert types["tags"] == pa.large_list(pa.large_string())
    rows_out = table.to_pylist()
    assert len(rows_out) == ROWS
    for row in rows_out:
        assert row["error_message"] is None
        assert row["label"] in ("bug", "question", "billing")
        assert 0 <= row["urgency"] <= 9
        assert len(row["summary"]) <= 6
        assert set(row["tags"]) <= {"a", "b"}


def test_capabilities_say_json_schema_is_enforced(
    grammar_llama: Running, tmp_path: Path, capsys: Any
) -> None:
    conn = _config(grammar_llama, tmp_path)
    code = main(["check", "--config", str(conn), "--capabilities"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    found = json.loads(captured.out)["record"]["data"]["capabilities"]
    assert found["json_schema"] == "enforced"
    assert found["models"] == ["tiny-llama"]
    assert CANARY not in captured.out + captured.err
