"""llama.cpp's llama-server on a tiny random model: real inference, real --api-key checks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ._helpers import check, complete, config_for, errors, joined_deltas, records, run
from ._launch import Running

pytestmark = [pytest.mark.compat, pytest.mark.server("llama")]
MODEL = "tiny-llama"
MAX_TOKENS = 8


def _body(**extra: Any) -> dict[str, Any]:
    """A short, deterministic generation (greedy, a few tokens)."""
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "seed": 1,
        **extra,
    }


def _config(server: Running, **kwargs: Any) -> dict[str, Any]:
    config = config_for(server, MODEL, **kwargs)
    config["request_format"] = _body()
    return config


@pytest.fixture(scope="module")
def reference(llama: Running) -> dict[str, Any]:
    """The non-streamed answer to ``_body()``, which the streamed tests must reproduce."""
    [answer] = records(run(_config(llama), _body()))
    return answer


@pytest.mark.cell("check")
def test_check_with_the_key(llama: Running) -> None:
    assert check(_config(llama)) == ("succeeded", None)


@pytest.mark.cell("check", note="integer codes")
def test_check_with_a_wrong_key(llama: Running) -> None:
    assert check(_config(llama, key="sk-wrong-key")) == (
        "failed",
        "HTTP 401 Unauthorized from the endpoint: Invalid API Key (type authentication_error; "
        "code 401). Hint: check the API key",
    )


@pytest.mark.cell("check")
def test_check_without_a_key(llama: Running) -> None:
    status, message = check(_config(llama, auth="none"))
    assert status == "failed"
    assert message == (
        "HTTP 401 Unauthorized from the endpoint: Invalid API Key (type authentication_error; "
        "code 401). Hint: check the API key"
    )


@pytest.mark.cell("non-stream")
def test_read_non_streamed(reference: dict[str, Any]) -> None:
    assert reference["object"] == "chat.completion"
    [choice] = reference["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] == "length"  # random weights never stop on their own


@pytest.mark.cell("stream")
def test_read_streamed_gives_the_same_text(llama: Running, reference: dict[str, Any]) -> None:
    messages = run(_config(llama, stream=True), _body())
    assert errors(messages) == []
    chunks = records(messages)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert joined_deltas(chunks) == reference["choices"][0]["message"]["content"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"


@pytest.mark.cell("assemble")
async def test_streamed_answer_assembled(llama: Running, reference: dict[str, Any]) -> None:
    done = await complete(_config(llama, stream=True), _body())
    assert done.streamed and not done.truncated
    assert done.response["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": reference["choices"][0]["message"]["content"],
            },
            "finish_reason": "length",
        }
    ]


@pytest.mark.cell("usage")
def test_usage_non_streamed(reference: dict[str, Any]) -> None:
    usage = reference["usage"]
    assert usage["completion_tokens"] == MAX_TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + MAX_TOKENS


@pytest.mark.cell("usage", note="spec usage chunk, choices: []")
async def test_usage_chunk(llama: Running, reference: dict[str, Any]) -> None:
    body = _body(stream_options={"include_usage": True})
    done = await complete(_config(llama, stream=True), body)
    assert done.chunks is not None
    [usage_chunk] = [c for c in done.chunks if c.get("usage")]
    assert usage_chunk["choices"] == []
    assert "timings" in usage_chunk  # llama.cpp's own field, ignored
    assert done.usage is not None
    assert (done.usage["prompt_tokens"], done.usage["completion_tokens"]) == (
        reference["usage"]["prompt_tokens"],
        MAX_TOKENS,
    )


@pytest.mark.cell("errors")
def test_prompt_longer_than_the_context(llama: Running) -> None:
    body = _body(messages=[{"role": "user", "content": "hello " * 3000}])
    [message] = errors(run(_config(llama), body))
    assert re.fullmatch(
        r"HTTP 400 Bad Request from the endpoint: request \(\d+ tokens\) exceeds the available "
        r"context size \(1024 tokens\), try increasing it \(type exceed_context_size_error; "
        r"code 400\)\. Hint: the prompt is longer than the model's context window; shorten the "
        r"messages, lower max_tokens, or use a model \(or server setting\) with a larger context",
        message,
    )


@pytest.mark.cell("errors")
def test_request_without_messages(llama: Running) -> None:
    [message] = errors(run(_config(llama), {"model": MODEL}))
    assert message == (
        "HTTP 400 Bad Request from the endpoint: 'messages' is required (type "
        "invalid_request_error; code 400). Hint: the endpoint rejected the request body; "
        "compare it with the OpenAI chat-completions spec"
    )


@pytest.mark.cell("errors")
def test_wrong_route(llama: Running) -> None:
    config = _config(llama)
    config["url"] = f"{llama.base_url}/v1/chat/completion"
    [message] = errors(run(config, _body()))
    assert message == (
        "HTTP 404 Not Found from the endpoint: File Not Found (type not_found_error; code 404). "
        "Hint: check that the URL is the full chat-completions URL and that the model exists"
    )


@pytest.mark.cell("errors")
def test_streamed_request_with_a_wrong_key(llama: Running) -> None:
    messages = run(_config(llama, stream=True, key="sk-wrong-key"), _body())
    assert records(messages) == []
    assert errors(messages) == [
        "HTTP 401 Unauthorized from the endpoint: Invalid API Key (type authentication_error; "
        "code 401). Hint: check the API key"
    ]
