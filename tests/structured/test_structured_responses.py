"""Structured outputs in the Responses dialect: ``text.format``, its flat function tools,
the answer's ``output_text`` — against the scripted server's ``/v1/responses``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openai_compat import Endpoint
from openai_compat.cli import main
from tests.conftest import CANARY, NO_RETRY, make_config

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["bug", "question"]},
        "urgency": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["label", "urgency"],
}
PAYLOAD = {"model": "mock-model", "input": "The printer is on fire"}
_SAMPLE = '{"output": [{"type": "message", "content": [{"type": "output_text", "text": "x"}]}]}'


def _endpoint(server: Any, query: str = "scenario=structured") -> Endpoint:
    raw = make_config(
        f"{server.base_url}/v1/responses?{query}",
        request_format=json.dumps(PAYLOAD),
        response_format=_SAMPLE,
    )
    return Endpoint(raw, retry=NO_RETRY)


def _bodies(server: Any) -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.path.endswith("/responses")]


async def test_json_schema_mode_sends_text_format_and_reads_output_text(server: Any) -> None:
    async with _endpoint(server) as endpoint:
        value = await endpoint.parse(PAYLOAD, schema=SCHEMA, mode="json_schema")
    assert value["label"] in ("bug", "question") and isinstance(value["urgency"], int)
    (body,) = _bodies(server)
    fmt = body["text"]["format"]
    assert fmt["type"] == "json_schema" and fmt["schema"] == SCHEMA and fmt["strict"] is True
    assert isinstance(fmt["name"], str) and fmt["name"]
    assert "response_format" not in body and body["input"] == PAYLOAD["input"]


async def test_tools_mode_sends_the_flat_function_tool_and_reads_its_call(server: Any) -> None:
    async with _endpoint(server) as endpoint:
        value = await endpoint.parse(PAYLOAD, schema=SCHEMA, mode="tools")
    assert isinstance(value["urgency"], int)
    (body,) = _bodies(server)
    (tool,) = body["tools"]
    assert tool["type"] == "function" and tool["parameters"] == SCHEMA
    assert "function" not in tool
    assert body["tool_choice"] == {"type": "function", "name": tool["name"]}


@pytest.mark.parametrize("mode", ["json_object", "prompt"])
async def test_instruction_modes_state_the_schema_in_instructions(server: Any, mode: str) -> None:
    payload = {**PAYLOAD, "instructions": "Be brief."}
    async with _endpoint(server) as endpoint:
        value = await endpoint.parse(payload, schema=SCHEMA, mode=mode)
    assert isinstance(value["urgency"], int)
    (body,) = _bodies(server)
    assert body["instructions"].startswith("Be brief.")
    assert json.dumps(SCHEMA) in body["instructions"]
    expected = {"type": "json_object"} if mode == "json_object" else None
    assert (body.get("text") or {}).get("format") == expected


async def test_auto_leaves_a_refused_text_format_for_tools(server: Any) -> None:
    async with _endpoint(server, "scenario=structured&refuse=text") as endpoint:
        value = await endpoint.parse(PAYLOAD, schema=SCHEMA)
    assert isinstance(value["urgency"], int)
    first, second = _bodies(server)
    assert "text" in first and "tools" in second and "text" not in second


async def test_an_invalid_answer_is_asked_again_with_the_history_as_input(server: Any) -> None:
    async with _endpoint(server, "scenario=structured&invalid_pct=100") as endpoint:
        value = await endpoint.parse(PAYLOAD, schema=SCHEMA, mode="json_schema")
    assert isinstance(value["urgency"], int)
    first, again = _bodies(server)
    assert first["input"] == PAYLOAD["input"]
    user, assistant, reask = again["input"]
    assert user == {"role": "user", "content": PAYLOAD["input"]}
    assert assistant["role"] == "assistant" and "not json" in assistant["content"]
    assert reask["role"] == "user" and "not valid against the JSON Schema" in reask["content"]
    assert again["text"] == first["text"]


def test_batch_run_on_a_responses_url_writes_typed_columns(
    tmp_path: Path, server: Any, capsys: Any
) -> None:
    raw = make_config(
        f"{server.base_url}/v1/responses?scenario=structured",
        request_format='{"model": "mock-model", "input": "{{text}}"}',
        response_format=_SAMPLE,
    )
    (tmp_path / "conn.json").write_text(json.dumps(raw))
    (tmp_path / "in.csv").write_text("id,text\nt1,printer\nt2,vpn\nt3,bill\n")
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    out = tmp_path / "out.parquet"
    code = main(
        [
            "batch",
            "--config",
            str(tmp_path / "conn.json"),
            "--input",
            str(tmp_path / "in.csv"),
            "--key",
            "id",
            "--rate",
            "off",
            "--schema",
            str(tmp_path / "schema.json"),
            "--output",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "schema mode json_schema: 3 valid first" in err
    table = pq.read_table(out)
    assert table.schema.field("urgency").type == pa.int64()
    assert pa.types.is_large_list(table.schema.field("tags").type)
    assert sorted(table.column("key").to_pylist()) == ["t1", "t2", "t3"]
    assert all(isinstance(n, int) for n in table.column("urgency").to_pylist())
    assert all("text" in body and "format" in body["text"] for body in _bodies(server))
    assert CANARY not in err


@pytest.mark.parametrize("path", ["/v1/embeddings", "/v1/completions"])
def test_a_schema_on_a_url_without_structured_outputs_is_exit_2(
    tmp_path: Path, server: Any, capsys: Any, path: str
) -> None:
    raw = make_config(server.base_url + path, request_format='{"model": "m", "input": "{{text}}"}')
    (tmp_path / "conn.json").write_text(json.dumps(raw))
    (tmp_path / "in.csv").write_text("id,text\nt1,a\n")
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    code = main(
        [
            "batch",
            "--config",
            str(tmp_path / "conn.json"),
            "--input",
            str(tmp_path / "in.csv"),
            "--schema",
            str(tmp_path / "schema.json"),
            "--output",
            str(tmp_path / "out.jsonl"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "structured outputs need the chat or responses API" in err
    assert server.requests == []


async def test_a_structured_made_for_chat_is_refused_on_a_responses_url(server: Any) -> None:
    from openai_compat.errors import ConfigurationError
    from openai_compat.structured import Structured

    async with _endpoint(server) as endpoint:
        with pytest.raises(ConfigurationError, match="api='responses'"):
            await endpoint.parse(PAYLOAD, schema=Structured(SCHEMA))
        value = await endpoint.parse(PAYLOAD, schema=Structured(SCHEMA, api="responses"))
    assert isinstance(value["urgency"], int)
    assert len(_bodies(server)) == 1
