"""Hugging Face transformers' ``transformers serve`` through the Responses API: a tiny random
llama model (built offline, ``tools/make_tiny_hf_llama.py``) answering ``/v1/responses``
streamed and whole, through ``check``, ``openai-compat read``, ``Endpoint.complete`` and a
batch run.

It streams ``data:`` lines with a ``type`` and no ``event:`` line, ends with
``response.completed`` holding the whole response and its usage, checks no API key, and
answers a model other than the one it is pinned to with a 400 ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_compat import run_batch_sync
from openai_compat.cli import main

from ..conftest import CANARY, NO_RETRY
from ._helpers import check, complete, errors, records, run
from ._launch import Running, start_transformers_serve
from .conftest import _register

pytestmark = [pytest.mark.compat, pytest.mark.server("transformers")]
PROMPT = "Say hello"
TOKENS = 12


@pytest.fixture(scope="module")
def tfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with start_transformers_serve(tmp_path_factory.mktemp("transformers")) as running:
        _register("transformers", running)
        yield running


def _body(server: Running, text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {"model": server.model, "input": text, "max_output_tokens": TOKENS, **extra}


def _config(server: Running, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    return {
        "url": server.base_url + "/v1/responses",
        "api_key": CANARY,
        "is_stream": stream,
        "config": {"timeout": 120},
        "request_format": json.dumps(body),
    }


def _deltas(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["delta"] for c in chunks if c.get("type") == "response.output_text.delta")


def _no_key_in(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text


@pytest.mark.cell("check", note="no key check: any key is taken")
def test_check_on_the_responses_url(tfs: Running) -> None:
    body = _body(tfs)
    assert check(_config(tfs, body, stream=True)) == ("succeeded", None)
    # A chat request format on a Responses URL: the smallest Responses request is sent.
    chat = {"model": tfs.model, "messages": [{"role": "user", "content": "Hi"}]}
    status, message = check(_config(tfs, chat, stream=True))
    assert status == "succeeded"
    assert message is not None and "set request_format" in message
    _no_key_in(tfs.log.read_text(errors="replace"))


@pytest.mark.cell("stream", note="/v1/responses: data lines with a type, no event lines")
def test_responses_streamed_text_is_assembled_from_the_events(tfs: Running) -> None:
    body = _body(tfs)
    completion = asyncio.run(complete(_config(tfs, body, stream=True), body))
    assert completion.streamed is True
    assert completion.warnings == [] and completion.truncated is False
    chunks = completion.chunks or []
    types = [c.get("type") for c in chunks]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.count("response.output_text.delta") >= 1
    answer = completion.response
    assert answer["status"] == "completed"
    text = answer["output_text"]
    assert isinstance(text, str) and text
    assert _deltas(chunks) == text
    assert answer["output"][0]["content"][0]["text"] == text


@pytest.mark.cell("non-stream", note="/v1/responses")
def test_responses_whole_is_the_streamed_answer(tfs: Running) -> None:
    body = _body(tfs)
    whole = asyncio.run(complete(_config(tfs, body, stream=False), body))
    streamed = asyncio.run(complete(_config(tfs, body, stream=True), body))
    assert whole.streamed is False and whole.warnings == []
    assert whole.response["status"] == "completed"
    # Greedy decoding of the same prompt, and a vocabulary of ASCII tokens: the same text.
    assert whole.response["output_text"] == streamed.response["output_text"] != ""


@pytest.mark.cell("usage", note="/v1/responses: input, output, cached and reasoning tokens")
def test_responses_usage_streamed(tfs: Running) -> None:
    body = _body(tfs)
    completion = asyncio.run(complete(_config(tfs, body, stream=True), body))
    usage = completion.usage
    assert usage is not None
    assert usage["input_tokens"] > 0
    assert 0 < usage["output_tokens"] <= TOKENS
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens_details"]["cached_tokens"] == 0
    assert usage["output_tokens_details"]["reasoning_tokens"] == 0


@pytest.mark.cell("assemble", note="openai-compat read --assemble on /v1/responses")
def test_read_streams_the_events_then_the_assembled_response(
    tfs: Running, tmp_path: Path, capsys: Any
) -> None:
    body = _body(tfs)
    (tmp_path / "c.json").write_text(json.dumps(_config(tfs, body, stream=True)))
    (tmp_path / "p.json").write_text(json.dumps(body))
    code = main(
        [
            "read", "--config", str(tmp_path / "c.json"),
            "--payload", str(tmp_path / "p.json"), "--assemble",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    data = [line["record"]["data"] for line in lines if line["type"] == "record"]
    *events, assembled = data
    assert [e.get("type") for e in events][-1] == "response.completed"
    assert assembled["object"] == "response" and assembled["status"] == "completed"
    assert assembled["output_text"] == _deltas(events) != ""
    _no_key_in(out, err)


@pytest.mark.cell("stream", note="a streamed batch run on /v1/responses")
def test_a_streamed_batch_run_writes_output_text_and_usage(tfs: Running, tmp_path: Path) -> None:
    body = _body(tfs, "{{text}}")
    config = _config(tfs, body, stream=True)
    rows = [{"id": f"r{i}", "text": f"Say hello to {i}"} for i in range(6)]
    rows.append({"id": "again", "text": PROMPT})
    out = tmp_path / "out.jsonl"
    summary = run_batch_sync(config, rows, out, key="id", rate=None, concurrency=2, retry=NO_RETRY)
    assert (summary.ok, summary.failed) == (7, 0)
    text = out.read_text()
    lines = {line["key"]: line for line in map(json.loads, text.splitlines())}
    assert set(lines) == {row["id"] for row in rows}
    for line in lines.values():
        assert isinstance(line["output"]["output_text"], str) and line["output"]["output_text"]
        # A batch line keeps the usage under the dialect's names.
        assert 0 < line["usage"]["output_tokens"] <= TOKENS
    assert summary.total_tokens == sum(line["usage"]["total_tokens"] for line in lines.values())
    # The row whose prompt is the read's gets the read's answer.
    single = asyncio.run(complete(_config(tfs, _body(tfs), stream=True), _body(tfs)))
    assert lines["again"]["output"]["output_text"] == single.response["output_text"]
    _no_key_in(text, tfs.log.read_text(errors="replace"))


@pytest.mark.cell("errors", note='{"detail": ...} bodies')
@pytest.mark.parametrize("stream", [False, True])
def test_a_model_it_does_not_serve_is_a_400_with_its_message(tfs: Running, stream: bool) -> None:
    body = {**_body(tfs), "model": "not-the-pinned-model"}
    messages = run(_config(tfs, body, stream=stream), body)
    [error] = errors(messages)
    assert "400" in error
    assert "Server is pinned to" in error and "'not-the-pinned-model'" in error
    assert records(messages) == []
