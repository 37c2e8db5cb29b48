"""LiteLLM proxy: mock_response models for text and for its error classes, a master key."""

from __future__ import annotations

import pytest

from openai_compat import EndpointError

from ..conftest import FAST_RETRY
from ._helpers import check, complete, config_for, errors, joined_deltas, payload, records, run
from ._launch import LITELLM_TEXT, Running

pytestmark = [pytest.mark.compat, pytest.mark.server("litellm")]


@pytest.mark.cell("check")
def test_check_with_the_master_key(litellm: Running) -> None:
    assert check(config_for(litellm, "mock-text")) == ("succeeded", None)


@pytest.mark.cell("check")
def test_check_with_a_wrong_key(litellm: Running) -> None:
    status, message = check(config_for(litellm, "mock-text", key="sk-wrong-key-1234"))
    assert status == "failed"
    # Without a database, LiteLLM answers any other key with a 400 that does not say "key".
    assert message == (
        "HTTP 400 Bad Request from the endpoint: No connected db. "
        "(type no_db_connection; code 400). Hint: a LiteLLM proxy without a database accepts "
        "only its master key; check the API key"
    )


@pytest.mark.cell("check")
def test_check_without_a_key(litellm: Running) -> None:
    status, message = check(config_for(litellm, "mock-text", auth="none"))
    assert status == "failed"
    # LiteLLM sends "param": "None" (a string); it is not shown as a parameter.
    assert message == (
        "HTTP 401 Unauthorized from the endpoint: Authentication Error, No api key passed in. "
        "(type auth_error; code 401). Hint: check the API key"
    )


@pytest.mark.cell("check", note="also with the key in an Azure-style api-key header")
def test_check_with_the_key_in_an_api_key_header(litellm: Running) -> None:
    assert check(config_for(litellm, "mock-text", auth="api-key")) == ("succeeded", None)


@pytest.mark.cell("errors", note='{"detail": ...} bodies')
def test_wrong_route_answers_a_detail_body(litellm: Running) -> None:
    config = config_for(litellm, "mock-text")
    config["url"] = f"{litellm.base_url}/v1/chat/completion"
    status, message = check(config)
    assert status == "failed"
    # A FastAPI {"detail": "Not Found"} body, not OpenAI's error shape.
    assert message == (
        "HTTP 404 Not Found from the endpoint: Not Found. Hint: check that the URL is the full "
        "chat-completions URL and that the model exists"
    )


@pytest.mark.cell("non-stream")
def test_read_non_streamed(litellm: Running) -> None:
    messages = run(config_for(litellm, "mock-text"), payload("mock-text"))
    assert errors(messages) == []
    [answer] = records(messages)
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": LITELLM_TEXT}
    assert answer["choices"][0]["finish_reason"] == "stop"


@pytest.mark.cell("stream")
def test_read_streamed(litellm: Running) -> None:
    messages = run(config_for(litellm, "mock-text", stream=True), payload("mock-text"))
    assert errors(messages) == []
    chunks = records(messages)
    assert len(chunks) > 3
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert joined_deltas(chunks) == LITELLM_TEXT
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.cell("assemble")
async def test_streamed_answer_assembled(litellm: Running) -> None:
    done = await complete(config_for(litellm, "mock-text", stream=True), payload("mock-text"))
    assert done.streamed and not done.truncated
    assert done.response["object"] == "chat.completion"
    assert done.response["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": LITELLM_TEXT},
            "finish_reason": "stop",
        }
    ]


@pytest.mark.cell("usage")
async def test_usage_non_streamed(litellm: Running) -> None:
    done = await complete(config_for(litellm, "mock-text"), payload("mock-text"))
    assert done.usage == {"completion_tokens": 20, "prompt_tokens": 10, "total_tokens": 30}


@pytest.mark.cell("usage", note="usage chunk has a non-empty choices list")
async def test_usage_chunk_with_non_empty_choices(litellm: Running) -> None:
    body = payload("mock-text", stream_options={"include_usage": True})
    done = await complete(config_for(litellm, "mock-text", stream=True), body)
    assert done.chunks is not None
    usage_chunks = [c for c in done.chunks if c.get("usage")]
    # LiteLLM's usage chunk carries "choices": [{"index": 0, "delta": {}}], not [].
    assert [len(c["choices"]) for c in usage_chunks] == [1]
    usage = done.usage
    assert usage is not None
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    # ...and it neither adds a choice nor erases the finish reason.
    assert done.response["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": LITELLM_TEXT},
            "finish_reason": "stop",
        }
    ]


@pytest.mark.cell("errors", note="string codes")
async def test_rate_limit_error_is_retried_then_reported(litellm: Running) -> None:
    model = "mock-rate-limit"
    messages = run(config_for(litellm, model), payload(model))
    assert records(messages) == []
    assert errors(messages) == [
        "HTTP 429 Too Many Requests from the endpoint: litellm.RateLimitError: this is a mock "
        "rate limit error LiteLLM: model group 'mock-rate-limit' failed with the error above. "
        "No fallback was attempted. (type throttling_error; code 429). Hint: rate limit or "
        "quota exceeded; slow down, or check the plan and quota of the key"
    ]
    with pytest.raises(EndpointError) as caught:
        await complete(config_for(litellm, model), payload(model), FAST_RETRY)
    assert (caught.value.status, caught.value.code, caught.value.attempts) == (429, "429", 3)


@pytest.mark.cell("errors")
def test_internal_server_error(litellm: Running) -> None:
    messages = run(config_for(litellm, "mock-server-error"), payload("mock-server-error"))
    assert errors(messages) == [
        "HTTP 500 Internal Server Error from the endpoint: litellm.InternalServerError: this is "
        "a mock internal server error LiteLLM: model group 'mock-server-error' failed with the "
        "error above. No fallback was attempted. (type internal_server_error; code 500). Hint: "
        "the server failed; try again later or check the server's logs"
    ]


@pytest.mark.cell("errors")
def test_context_window_exceeded(litellm: Running) -> None:
    model = "mock-context-window"
    [message] = errors(run(config_for(litellm, model), payload(model)))
    assert message.startswith(
        "HTTP 400 Bad Request from the endpoint: litellm.ContextWindowExceededError: "
        "litellm.BadRequestError: this is a mock context window exceeded error "
        "model=mock-context-window. context_window_fallbacks=None. fallbacks=None. "
    )
    assert "\n" not in message
    assert message.endswith(
        "(type invalid_request_error; code 400). Hint: the prompt is longer than the model's "
        "context window; shorten the messages, lower max_tokens, or use a model (or server "
        "setting) with a larger context"
    )


@pytest.mark.cell("errors")
def test_unknown_model(litellm: Running) -> None:
    [message] = errors(run(config_for(litellm, "mock-text"), payload("no-such-model")))
    assert message == (
        "HTTP 400 Bad Request from the endpoint: /chat/completions: Invalid model name passed in "
        "model=no-such-model. Call `/v1/models` to view available models for your key. "
        "(type invalid_request_error; code 400). Hint: the endpoint does not know the model "
        'named in the request; check "model" in request_format against the models the server '
        "serves (GET /v1/models)"
    )


@pytest.mark.cell("errors")
def test_error_on_a_streamed_request_comes_before_any_record(litellm: Running) -> None:
    model = "mock-server-error"
    messages = run(config_for(litellm, model, stream=True), payload(model))
    assert records(messages) == []
    [message] = errors(messages)
    assert message.startswith("HTTP 500 Internal Server Error from the endpoint: ")
