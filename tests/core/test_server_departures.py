"""Departures from the OpenAI spec met on real servers (see tests/compat), replayed on the
scripted server so that plain ``make test`` keeps them handled."""

from __future__ import annotations

import re
from typing import Any

import pytest

from openai_compat import Endpoint, EndpointError
from openai_compat.testing import MockServer, chat_chunks, error_reply, json_reply, sse_reply
from tests.conftest import NO_RETRY, make_config

PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}


def _shown(err: EndpointError) -> str:
    """The message without the scripted server's request id."""
    return re.sub(r"(; )?request id req_\d+", "", str(err)).replace(" ()", "")


async def _error(server: MockServer) -> EndpointError:
    with pytest.raises(EndpointError) as caught:
        async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
            await endpoint.complete(PAYLOAD)
    return caught.value


@pytest.mark.parametrize(("code", "shown"), [(401, "401"), ("429", "429"), (0, "0")])
async def test_integer_and_string_codes(server: MockServer, code: Any, shown: str) -> None:
    server.enqueue(error_reply(401, "Invalid API Key", type="authentication_error", code=code))
    err = await _error(server)
    assert err.code == shown
    assert _shown(err) == (
        "HTTP 401 Unauthorized from the endpoint: Invalid API Key (type authentication_error; "
        f"code {shown}). Hint: check the API key"
    )


async def test_stringified_none_param_is_no_param(server: MockServer) -> None:
    server.enqueue(
        error_reply(401, "No api key passed in.", type="auth_error", code="401", param="None")
    )
    err = await _error(server)
    assert err.param is None
    assert "param" not in _shown(err)


async def test_multi_line_provider_message_is_one_line(server: MockServer) -> None:
    text = "litellm.RateLimitError: mock\n\nLiteLLM: model group 'm' failed.\n  No fallback."
    server.enqueue(error_reply(429, text, type="throttling_error", code="429"))
    err = await _error(server)
    assert err.provider_message == text  # kept as sent
    assert _shown(err).startswith(
        "HTTP 429 Too Many Requests from the endpoint: litellm.RateLimitError: mock LiteLLM: "
        "model group 'm' failed. No fallback. (type throttling_error; code 429)"
    )


async def test_detail_body(server: MockServer) -> None:
    server.enqueue(json_reply({"detail": "Not Found"}, status=404))
    err = await _error(server)
    assert _shown(err) == (
        "HTTP 404 Not Found from the endpoint: Not Found. Hint: check that the URL is the full "
        "chat-completions URL and that the model exists"
    )


async def test_litellm_no_db_answer_points_at_the_key(server: MockServer) -> None:
    server.enqueue(error_reply(400, "No connected db.", type="no_db_connection", code="400"))
    err = await _error(server)
    assert _shown(err) == (
        "HTTP 400 Bad Request from the endpoint: No connected db. (type no_db_connection; "
        "code 400). Hint: a LiteLLM proxy without a database accepts only its master key; "
        "check the API key"
    )


async def test_usage_chunk_with_a_non_empty_choices_list(server: MockServer) -> None:
    chunks = chat_chunks("Hello there")
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    chunks.append(
        {
            "id": chunks[0]["id"],
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}}],
            "usage": usage,
        }
    )
    server.enqueue(sse_reply(chunks))
    config = make_config(server.url, is_stream=True)
    async with Endpoint(config, retry=NO_RETRY) as endpoint:
        done = await endpoint.complete(PAYLOAD)
    assert done.usage == usage
    assert done.response["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there"},
            "finish_reason": "stop",
        }
    ]


@pytest.mark.parametrize(
    ("kind", "code"),
    [("exceed_context_size_error", 400), ("invalid_request_error", "context_length_exceeded")],
    ids=["llama.cpp", "openai"],
)
async def test_context_window_errors_say_so(server: MockServer, kind: str, code: Any) -> None:
    server.enqueue(error_reply(400, "too long", type=kind, code=code))
    err = await _error(server)
    assert _shown(err).endswith(
        "Hint: the prompt is longer than the model's context window; shorten the messages, "
        "lower max_tokens, or use a model (or server setting) with a larger context"
    )


async def test_trailing_usage_chunk_does_not_hide_a_truncated_answer(server: MockServer) -> None:
    chunks = chat_chunks("Hello there", finish_reason="length")
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    chunks.append(
        {
            "id": chunks[0]["id"],
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": usage,
        }
    )
    server.enqueue(sse_reply(chunks))
    config = make_config(server.url, is_stream=True)
    async with Endpoint(config, retry=NO_RETRY) as endpoint:
        done = await endpoint.complete(PAYLOAD)
    assert done.usage == usage
    assert done.response["choices"][0]["finish_reason"] == "length"
    assert done.response["choices"][0]["message"]["content"] == "Hello there"
