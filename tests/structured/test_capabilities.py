"""``check --capabilities``: one protocol record of what the scripted server does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openai_compat.cli import main
from tests.conftest import CANARY, make_config


def _check(tmp_path: Path, url: str, capsys: Any) -> dict[str, Any]:
    (tmp_path / "conn.json").write_text(json.dumps(make_config(url)))
    code = main(["check", "--config", str(tmp_path / "conn.json"), "--capabilities"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert CANARY not in captured.out + captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["type"] == "record"
    found: dict[str, Any] = record["record"]["data"]["capabilities"]
    return found


def test_a_plain_server_accepts_but_does_not_enforce(
    tmp_path: Path, server: Any, capsys: Any
) -> None:
    found = _check(tmp_path, server.url, capsys)
    assert found == {
        "json_schema": "accepted",
        "json_object": "ignored",
        "tools": "ignored",
        "stream_options.include_usage": True,
        "reasoning_field": None,
        "n>1": False,
        "logprobs": False,
        "models": ["mock-model"],
    }
    sent = [r.json for r in server.requests if r.method == "POST"]
    assert sent[0]["response_format"]["type"] == "json_schema"
    assert all(body["max_tokens"] <= 64 for body in sent)


def test_a_schema_following_server_is_enforced_and_refusals_are_seen(
    tmp_path: Path, server: Any, capsys: Any
) -> None:
    found = _check(tmp_path, f"{server.url}?scenario=structured", capsys)
    assert (found["json_schema"], found["tools"]) == ("enforced", "accepted")
    found = _check(tmp_path, f"{server.url}?scenario=structured&refuse=response_format", capsys)
    assert (found["json_schema"], found["json_object"], found["tools"]) == (
        "refused",
        "refused",
        "accepted",
    )
