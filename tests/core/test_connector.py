"""The connector against the scripted server: check, read, streaming, errors, retries."""

from __future__ import annotations

import time
from typing import Any

import pytest

from openai_compat import (
    Endpoint,
    EndpointError,
    OpenAICompatError,
    OpenAICompatibleConnector,
    RetryPolicy,
)
from openai_compat import TimeoutError as OCTimeoutError
from openai_compat.testing import (
    MockServer,
    chat_chunks,
    chat_completion,
    error_reply,
    html_reply,
    json_reply,
    raw_reply,
    sse_reply,
)
from tests.conftest import FAST_RETRY, NO_RETRY, make_config


def status_of(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = message.to_dict()["connection_status"]
    return data


def run(config: dict[str, Any], payload: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    connector = OpenAICompatibleConnector(retry=kw.pop("retry", NO_RETRY))
    return [m.to_dict() for m in connector.run_model(config, payload, **kw)]


PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "ping"}]}


# -- check ---------------------------------------------------------------------------


def test_check_succeeds_against_the_default_server(
    server: MockServer, config: dict[str, Any]
) -> None:
    assert status_of(OpenAICompatibleConnector().check_connection(config)) == {
        "status": "succeeded"
    }
    assert server.requests[0].json["model"] == "mock-model"


def test_check_succeeds_on_a_streamed_answer(server: MockServer) -> None:
    config = make_config(
        server.url, request_format='{"model": "m", "messages": [], "stream": true}'
    )
    server.enqueue(sse_reply(chat_chunks("hi")))
    assert status_of(OpenAICompatibleConnector().check_connection(config))["status"] == "succeeded"


def test_check_succeeds_for_reasoning_model_with_empty_content_cut_by_length(
    server: MockServer, config: dict[str, Any]
) -> None:
    server.enqueue(json_reply(chat_completion("", finish_reason="length", reasoning="hmm")))
    assert status_of(OpenAICompatibleConnector().check_connection(config))["status"] == "succeeded"


def test_check_accepts_json_text_config(server: MockServer, config: dict[str, Any]) -> None:
    import json

    assert status_of(OpenAICompatibleConnector().check_connection(json.dumps(config)))[
        "status"
    ] == ("succeeded")


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        ("", "/v1/chat/completions"),
        ("/v1", "/v1/chat/completions"),
        ("/v1/", "/v1/chat/completions"),
        ("/v1/chat/completions/chat/completions", "/v1/chat/completions"),
    ],
)
def test_check_explains_base_and_doubled_urls_without_sending(
    server: MockServer, suffix: str, expected: str
) -> None:
    status = status_of(
        OpenAICompatibleConnector().check_connection(make_config(server.base_url + suffix))
    )
    assert status["status"] == "failed"
    assert server.base_url + expected in status["message"]
    assert server.requests == []


@pytest.mark.parametrize(
    ("reply", "needles"),
    [
        (html_reply(200), ["HTTP 200", "HTML page", "wrong route"]),
        (raw_reply("OK", content_type="text/plain"), ["HTTP 200", "'OK'", "not JSON"]),
        (
            json_reply({"error": {"message": "quota gone", "type": "insufficient_quota"}}),
            ["HTTP 200", "quota gone", "insufficient_quota"],
        ),
        (
            error_reply(401, "Incorrect API key provided: sk-***", code="invalid_api_key"),
            ["HTTP 401", "Incorrect API key provided", "invalid_api_key", "check the API key"],
        ),
        (
            json_reply(
                {"detail": [{"loc": ["body", "model"], "msg": "field required"}]}, status=422
            ),
            ["HTTP 422", "field required"],
        ),
        (json_reply({"error": "model not loaded"}, status=400), ["HTTP 400", "model not loaded"]),
        (raw_reply("upstream overloaded", status=503), ["HTTP 503", "upstream overloaded"]),
        (html_reply(502, title="502 Bad Gateway"), ["HTTP 502", "502 Bad Gateway"]),
        (
            json_reply({"error": {"message": "no such model", "code": 404}}, status=404),
            ["HTTP 404", "no such model", "code 404", "full chat-completions URL"],
        ),
    ],
)
def test_check_failures_carry_status_provider_message_and_request_id(
    server: MockServer, config: dict[str, Any], reply: Any, needles: list[str]
) -> None:
    server.enqueue(reply)
    status = status_of(OpenAICompatibleConnector(retry=NO_RETRY).check_connection(config))
    assert status["status"] == "failed"
    for needle in needles:
        assert needle in status["message"]
    if status["message"].startswith("HTTP") and "from the endpoint" in status["message"]:
        assert "request id req_" in status["message"]


def test_check_hints_missing_model(server: MockServer) -> None:
    config = make_config(server.url, request_format='{"messages": []}')
    status = status_of(OpenAICompatibleConnector(retry=NO_RETRY).check_connection(config))
    assert "you must provide a model parameter" in status["message"]
    assert 'request has no "model"' in status["message"]


def test_check_names_dns_failures() -> None:
    config = make_config("http://no-such-host.invalid/v1/chat/completions")
    status = status_of(OpenAICompatibleConnector(retry=NO_RETRY).check_connection(config))
    assert "DNS" in status["message"] and "no-such-host.invalid" in status["message"]


def test_check_reports_invalid_configuration_as_failed() -> None:
    status = status_of(OpenAICompatibleConnector().check_connection({"url": "x", "api_key": "k"}))
    assert status["status"] == "failed"
    assert status["message"].startswith("invalid configuration: url:")


def test_empty_api_key_sends_no_authorization(server: MockServer, config: dict[str, Any]) -> None:
    OpenAICompatibleConnector().check_connection({**config, "api_key": ""})
    assert "authorization" not in server.requests[0].headers


# -- read, not streaming ---------------------------------------------------------------


def test_read_json_answer_is_one_record(server: MockServer, config: dict[str, Any]) -> None:
    messages = run(config, PAYLOAD)
    assert len(messages) == 1
    data = messages[0]["record"]["data"]
    assert data["choices"][0]["message"]["content"] == "You said: ping"
    assert "stream" not in server.requests[0].json


def test_read_error_inside_200_is_an_error_not_a_record(
    server: MockServer, config: dict[str, Any]
) -> None:
    server.enqueue(json_reply({"error": {"message": "context too long", "code": "context_length"}}))
    messages = run(config, PAYLOAD)
    assert [m["type"] for m in messages] == ["log"]
    assert "context too long" in messages[0]["log"]["message"]


def test_read_payload_must_be_an_object_and_nothing_is_sent(
    server: MockServer, config: dict[str, Any]
) -> None:
    messages = run(config, "[1, 2]")  # type: ignore[arg-type]
    assert messages[0]["log"]["level"] == "error"
    assert "payload: must be a JSON object" in messages[0]["log"]["message"]
    assert server.requests == []


# -- read, streaming -------------------------------------------------------------------


def stream_config(server: MockServer) -> dict[str, Any]:
    return make_config(server.url, is_stream=True)


def contents(messages: list[dict[str, Any]]) -> str:
    text = ""
    for m in messages:
        if m["type"] == "record":
            for choice in m["record"]["data"].get("choices", []):
                text += (choice.get("delta") or {}).get("content") or ""
    return text


@pytest.mark.parametrize("scenario", ["stream", "crlf", "comments", "split"])
def test_streaming_scenarios_give_the_same_text(server: MockServer, scenario: str) -> None:
    config = make_config(server.url + f"?scenario={scenario}", is_stream=True)
    messages = run(config, PAYLOAD)
    assert contents(messages) == "You said: ping"
    assert all(m["type"] == "record" for m in messages), messages
    assert server.requests[0].json["stream"] is True


def test_stream_sets_stream_true_and_yields_records_as_they_arrive(server: MockServer) -> None:
    server.enqueue(sse_reply(chat_chunks("a b c"), split_at=[10, 50, 120], piece_delay_s=0.02))
    messages = run(stream_config(server), PAYLOAD)
    assert contents(messages) == "a b c"
    assert server.requests[0].json == {**PAYLOAD, "stream": True}


def test_empty_choices_and_usage_chunks_are_records(server: MockServer) -> None:
    server.enqueue(sse_reply(chat_chunks("hi", include_usage=True, empty_first=True)))
    messages = run(stream_config(server), PAYLOAD)
    datas = [m["record"]["data"] for m in messages]
    assert datas[0]["choices"] == []
    assert datas[-1]["choices"] == [] and datas[-1]["usage"]["total_tokens"] > 0


def test_assemble_adds_one_chat_completion_record(server: MockServer) -> None:
    tool = {"name": "lookup", "arguments": '{"q": "x"}'}
    server.enqueue(
        sse_reply(
            chat_chunks("Hello world", reasoning="thinking", include_usage=True, tool_calls=[tool])
        )
    )
    messages = run(stream_config(server), PAYLOAD, assemble=True)
    assembled = messages[-1]["record"]["data"]
    assert assembled["object"] == "chat.completion"
    message = assembled["choices"][0]["message"]
    assert message["content"] == "Hello world"
    assert message["reasoning_content"] == "thinking"
    assert message["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q": "x"}'}
    assert assembled["usage"]["total_tokens"] > 0
    assert assembled["choices"][0]["finish_reason"] is not None


def test_no_done_but_finish_reason_is_complete(server: MockServer) -> None:
    config = make_config(server.url + "?scenario=no-done", is_stream=True)
    messages = run(config, PAYLOAD)
    assert all(m["type"] == "record" for m in messages)


def test_stream_cut_without_done_or_finish_reason_warns(server: MockServer) -> None:
    chunks = chat_chunks("cut off", finish_reason=None)
    server.enqueue(sse_reply(chunks, done=False))
    messages = run(stream_config(server), PAYLOAD)
    assert messages[-1]["type"] == "log" and messages[-1]["log"]["level"] == "warn"
    assert "may have been cut off" in messages[-1]["log"]["message"]


def test_error_event_in_stream_ends_the_read_with_an_error(server: MockServer) -> None:
    config = make_config(server.url + "?scenario=error-in-stream", is_stream=True)
    messages = run(config, PAYLOAD)
    assert [m["type"] for m in messages] == ["record", "record", "log"]
    assert messages[-1]["log"]["level"] == "error"
    assert "error in the stream" in messages[-1]["log"]["message"]


@pytest.mark.parametrize("scenario", ["401", "500", "502-html", "429"])
def test_non_2xx_streaming_answer_is_an_error_never_records(
    server: MockServer, scenario: str
) -> None:
    config = make_config(server.url + f"?scenario={scenario}", is_stream=True)
    messages = run(config, PAYLOAD)
    assert [m["type"] for m in messages] == ["log"]
    assert f"HTTP {scenario[:3]}" in messages[0]["log"]["message"]


def test_html_200_to_a_streaming_request_is_an_error(server: MockServer) -> None:
    config = make_config(server.url + "?scenario=html-200", is_stream=True)
    messages = run(config, PAYLOAD)
    assert [m["type"] for m in messages] == ["log"]
    assert "HTML page" in messages[0]["log"]["message"]


def test_server_ignoring_stream_flag_gives_one_json_record(server: MockServer) -> None:
    server.enqueue(json_reply(chat_completion("whole")))
    messages = run(stream_config(server), PAYLOAD, assemble=True)
    assert [m["type"] for m in messages] == ["record"]
    assert messages[0]["record"]["data"]["choices"][0]["message"]["content"] == "whole"


def test_stall_between_chunks_is_bounded_by_the_timeout(server: MockServer) -> None:
    config = make_config(
        server.url + "?scenario=stall&stall_s=5", is_stream=True, config={"timeout": "0.3"}
    )
    started = time.monotonic()
    messages = run(config, PAYLOAD)
    assert time.monotonic() - started < 4
    assert [m["type"] for m in messages] == ["record", "record", "log"]
    assert "timed out after 0.3 s waiting for the next chunk" in messages[-1]["log"]["message"]


def test_disconnect_mid_stream_keeps_the_records_and_reports_it(server: MockServer) -> None:
    config = make_config(server.url + "?scenario=disconnect", is_stream=True)
    messages = run(config, PAYLOAD)
    assert [m["type"] for m in messages] == ["record", "record", "log"]
    assert (
        "closed the connection during the stream, after 2 chunk(s)"
        in messages[-1]["log"]["message"]
    )


# -- retries ---------------------------------------------------------------------------


def test_429_with_retry_after_ms_is_retried_then_succeeds(
    server: MockServer, config: dict[str, Any]
) -> None:
    server.enqueue(
        error_reply(429, "slow down", headers={"retry-after-ms": "300", "retry-after": "30"}),
        json_reply(chat_completion("finally")),
    )
    started = time.monotonic()
    messages = run(config, PAYLOAD, retry=RetryPolicy(max_retries=2))
    assert time.monotonic() - started >= 0.29  # retry-after-ms wins over retry-after
    assert messages[0]["record"]["data"]["choices"][0]["message"]["content"] == "finally"
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retryable_statuses_are_tried_three_times_in_all(
    server: MockServer, config: dict[str, Any], status: int
) -> None:
    server.enqueue(*[error_reply(status, "nope") for _ in range(3)])
    messages = run(config, PAYLOAD, retry=FAST_RETRY)
    assert len(server.requests) == 3
    assert "HTTP" in messages[0]["log"]["message"]
    assert f"HTTP {status}" in messages[0]["log"]["message"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_never_retried(
    server: MockServer, config: dict[str, Any], status: int
) -> None:
    server.enqueue(*[error_reply(status, "nope") for _ in range(3)])
    run(config, PAYLOAD, retry=FAST_RETRY)
    assert len(server.requests) == 1


def test_connection_refused_is_retried(config: dict[str, Any]) -> None:
    calls: list[float] = []
    connector = OpenAICompatibleConnector(
        retry=FAST_RETRY, on_retry=lambda n, err, wait: calls.append(wait)
    )
    messages = connector.run_model(
        {**config, "url": "http://127.0.0.1:1/v1/chat/completions"}, PAYLOAD
    )
    assert len(calls) == 2
    assert "connection refused" in messages[0].to_dict()["log"]["message"]


def test_broken_stream_after_first_record_is_not_retried(server: MockServer) -> None:
    config = make_config(server.url + "?scenario=disconnect", is_stream=True)
    run(config, PAYLOAD, retry=FAST_RETRY)
    assert len(server.requests) == 1


async def test_endpoint_complete_assembles_and_counts_attempts(server: MockServer) -> None:
    server.enqueue(error_reply(500, "flaky"), sse_reply(chat_chunks("ok then", include_usage=True)))
    async with Endpoint(stream_config(server), retry=FAST_RETRY) as endpoint:
        done = await endpoint.complete(PAYLOAD)
    assert done.response["choices"][0]["message"]["content"] == "ok then"
    assert done.attempts == 2 and done.streamed and not done.truncated
    assert done.usage is not None and done.usage["total_tokens"] > 0


async def test_endpoint_errors_carry_data(server: MockServer, config: dict[str, Any]) -> None:
    server.enqueue(error_reply(403, "not for you", type="permission_error", code="forbidden"))
    async with Endpoint(config, retry=NO_RETRY) as endpoint:
        with pytest.raises(EndpointError) as info:
            await endpoint.complete(PAYLOAD)
    err = info.value
    assert err.attempts == 1
    assert (err.status, err.provider_message, err.type, err.code) == (
        403,
        "not for you",
        "permission_error",
        "forbidden",
    )
    assert err.request_id and err.request_id.startswith("req_")


async def test_async_read_yields_records_incrementally(server: MockServer) -> None:
    server.enqueue(sse_reply(chat_chunks("one two three"), split_at=[40, 90], piece_delay_s=0.05))
    connector = OpenAICompatibleConnector()
    seen = [m async for m in connector.arun_model(stream_config(server), PAYLOAD)]
    assert len(seen) >= 4


async def test_timeout_before_any_answer_is_named(server: MockServer) -> None:
    config = make_config(server.url + "?scenario=slow&delay_s=3", config={"timeout": 0.2})
    async with Endpoint(config, retry=NO_RETRY) as endpoint:
        with pytest.raises(OCTimeoutError, match="timed out after 0\\.2 s waiting for an answer"):
            await endpoint.complete(PAYLOAD)


async def test_errors_after_retries_count_the_attempts(
    server: MockServer, config: dict[str, Any]
) -> None:
    server.enqueue(*[error_reply(503, "busy") for _ in range(3)])
    async with Endpoint(config, retry=FAST_RETRY) as endpoint:
        with pytest.raises(EndpointError) as info:
            await endpoint.complete(PAYLOAD)
    assert info.value.attempts == 3 and info.value.status == 503


def test_retry_numbers_and_waits_reported_in_order(
    server: MockServer, config: dict[str, Any]
) -> None:
    seen: list[tuple[int, str]] = []
    server.enqueue(
        error_reply(500, "one"), error_reply(502, "two"), json_reply(chat_completion("three"))
    )
    connector = OpenAICompatibleConnector(
        retry=FAST_RETRY, on_retry=lambda n, err, wait: seen.append((n, str(err)[:8]))
    )
    messages = [m.to_dict() for m in connector.run_model(config, PAYLOAD)]
    assert seen == [(1, "HTTP 500"), (2, "HTTP 502")]
    assert messages[0]["record"]["data"]["choices"][0]["message"]["content"] == "three"
    assert len(server.requests) == 3


async def test_stream_errors_after_the_request_count_the_attempt(server: MockServer) -> None:
    config = make_config(server.url + "?scenario=disconnect", is_stream=True)
    async with Endpoint(config, retry=NO_RETRY) as endpoint:
        with pytest.raises(OpenAICompatError) as info:
            await endpoint.complete(PAYLOAD)
    assert info.value.attempts == 1
