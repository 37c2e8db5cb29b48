"""llmock: forced statuses (x-llmock-force-status, sent with advanced.headers), real --rpm 429s
with retry-after, and scripted stream faults (truncate, disconnect, malformed, stall)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openai_compat import Endpoint, EndpointError, RetryPolicy

from ..conftest import CANARY, NO_RETRY
from ._helpers import check, complete, config_for, errors, joined_deltas, payload, records, run
from ._launch import LLMOCK_RPM, Running

pytestmark = [pytest.mark.compat, pytest.mark.server("llmock")]
MODEL = "gpt-4o-mini"
ECHO = "Hello! You said: Say hello"


@pytest.fixture
def mock(llmock: Running, request: pytest.FixtureRequest) -> Iterator[Running]:
    """llmock with an empty scenario queue and a key of this test's own (limits are per key)."""
    httpx.delete(f"{llmock.base_url}/_llmock/scenario").raise_for_status()
    own = Running(
        llmock.name, llmock.version, llmock.base_url, f"{CANARY}-{request.node.name}", llmock.log
    )
    yield own
    httpx.delete(f"{llmock.base_url}/_llmock/scenario").raise_for_status()


def _script(server: Running, *behaviors: dict[str, Any]) -> None:
    reply = httpx.post(f"{server.base_url}/_llmock/scenario", json={"behaviors": list(behaviors)})
    reply.raise_for_status()


def _forced(server: Running, status: int, *, stream: bool = False) -> dict[str, Any]:
    return config_for(server, MODEL, stream=stream, headers={"x-llmock-force-status": str(status)})


@pytest.mark.cell("check", note="llmock checks no key: the bad key is a forced 401")
def test_check_succeeds(mock: Running) -> None:
    assert check(config_for(mock, MODEL)) == ("succeeded", None)


@pytest.mark.cell("check")
def test_check_with_a_refused_key(mock: Running) -> None:
    assert check(_forced(mock, 401)) == (
        "failed",
        "HTTP 401 Unauthorized from the endpoint: Unauthorized. (type authentication_error; "
        "code invalid_api_key). Hint: check the API key",
    )


@pytest.mark.cell("non-stream")
def test_read_non_streamed(mock: Running) -> None:
    messages = run(config_for(mock, MODEL), payload(MODEL))
    assert errors(messages) == []
    [answer] = records(messages)
    assert answer["choices"][0]["message"]["content"] == ECHO
    assert answer["choices"][0]["finish_reason"] == "stop"


@pytest.mark.cell("stream")
def test_read_streamed(mock: Running) -> None:
    messages = run(config_for(mock, MODEL, stream=True), payload(MODEL))
    assert [m.type for m in messages] == ["record"] * len(messages)
    chunks = records(messages)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined_deltas(chunks) == ECHO
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.cell("assemble")
async def test_streamed_answer_assembled(mock: Running) -> None:
    done = await complete(config_for(mock, MODEL, stream=True), payload(MODEL))
    assert done.streamed and not done.truncated
    [choice] = done.response["choices"]
    assert choice["message"]["content"] == ECHO
    assert choice["finish_reason"] == "stop"


@pytest.mark.cell("usage")
async def test_usage_non_streamed_and_streamed(mock: Running) -> None:
    plain = await complete(config_for(mock, MODEL), payload(MODEL))
    body = payload(MODEL, stream_options={"include_usage": True})
    streamed = await complete(config_for(mock, MODEL, stream=True), body)
    assert streamed.chunks is not None
    assert streamed.chunks[-1]["choices"] == []  # the spec's usage chunk
    assert (
        plain.usage
        == streamed.usage
        == {
            "prompt_tokens": 2,
            "completion_tokens": 6,
            "total_tokens": 8,
        }
    )


_FORCED = {
    400: "HTTP 400 Bad Request from the endpoint: Bad request. (type invalid_request_error; "
    "code bad_request). Hint: the endpoint rejected the request body; compare it with the "
    "OpenAI chat-completions spec",
    403: "HTTP 403 Forbidden from the endpoint: Forbidden. (type permission_error; code "
    "forbidden). Hint: the key is not allowed to use this endpoint or model",
    404: "HTTP 404 Not Found from the endpoint: Resource not found. (type invalid_request_error; "
    "code not_found). Hint: check that the URL is the full chat-completions URL and that the "
    "model exists",
    422: "HTTP 422 Unprocessable Entity from the endpoint: Unprocessable entity. (type "
    "invalid_request_error; code unprocessable_entity). Hint: the endpoint could not process "
    "the request body",
    429: "HTTP 429 Too Many Requests from the endpoint: Rate limit exceeded. (type "
    "rate_limit_error; code rate_limit_exceeded). Hint: rate limit or quota exceeded; slow "
    "down, or check the plan and quota of the key",
    500: "HTTP 500 Internal Server Error from the endpoint: Internal server error. (type "
    "server_error; code internal_error). Hint: the server failed; try again later or check "
    "the server's logs",
    502: "HTTP 502 Bad Gateway from the endpoint: Bad gateway. (type server_error; code "
    "bad_gateway). Hint: the server failed; try again later or check the server's logs",
    503: "HTTP 503 Service Unavailable from the endpoint: Service unavailable. (type "
    "server_error; code service_unavailable). Hint: the server failed; try again later or "
    "check the server's logs",
    504: "HTTP 504 Gateway Timeout from the endpoint: Gateway timeout. (type server_error; code "
    "gateway_timeout). Hint: the server failed; try again later or check the server's logs",
}


@pytest.mark.cell("errors", note="every forced status")
@pytest.mark.parametrize("status", sorted(_FORCED))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_forced_status(mock: Running, status: int, stream: bool) -> None:
    messages = run(_forced(mock, status, stream=stream), payload(MODEL))
    assert records(messages) == []
    assert errors(messages) == [_FORCED[status]]


@pytest.mark.cell("errors", note="retry-after honoured")
async def test_retry_after_is_honoured_then_the_answer_comes(mock: Running) -> None:
    _script(mock, {"type": "fail", "status": 503, "retry_after": 0.3, "times": 2})
    waits: list[float] = []
    policy = RetryPolicy(max_retries=2, initial_delay=5, max_delay=5)
    async with Endpoint(
        config_for(mock, MODEL), retry=policy, on_retry=lambda n, e, w: waits.append(w)
    ) as endpoint:
        done = await endpoint.complete(payload(MODEL))
    assert done.attempts == 3
    assert waits == [0.3, 0.3]  # retry-after-ms, not the 5 s backoff
    assert done.response["choices"][0]["message"]["content"] == ECHO


@pytest.mark.cell("errors", note="real --rpm 429")
async def test_requests_per_minute_limit(mock: Running) -> None:
    config = config_for(mock, MODEL)
    for _ in range(LLMOCK_RPM):
        await complete(config, payload(MODEL))
    with pytest.raises(EndpointError) as caught:
        await complete(config, payload(MODEL), NO_RETRY)
    err = caught.value
    assert err.status == 429 and err.code == "rate_limit_exceeded"
    assert err.retry_after is not None and 1 < err.retry_after <= 60
    assert re.fullmatch(
        r"HTTP 429 Too Many Requests from the endpoint: Rate limit reached for requests per "
        rf"minute: limit {LLMOCK_RPM}\. Please try again in [0-9.]+s\. \(type rate_limit_error; "
        r"code rate_limit_exceeded\)\. Hint: rate limit or quota exceeded; slow down, or check "
        r"the plan and quota of the key",
        str(err),
    )


def _faulted(mock: Running, kind: str, **extra: Any) -> list[Any]:
    _script(mock, {"type": "stream_fault", "kind": kind, "after_chunks": 2, **extra})
    config = config_for(mock, MODEL, stream=True)
    config["config"] = {"timeout": 1}
    return run(config, payload(MODEL))


@pytest.mark.cell("errors", note="stream faults")
def test_truncated_stream_is_flagged(mock: Running) -> None:
    messages = _faulted(mock, "truncate")
    assert [m.type for m in messages] == ["record", "record", "log"]
    assert messages[-1].log is not None and messages[-1].log.level == "warn"
    assert messages[-1].log.message == (
        "the stream ended after 2 chunk(s) with neither [DONE] nor a finish_reason: it may "
        "have been cut off"
    )


@pytest.mark.cell("errors")
def test_disconnected_stream(mock: Running) -> None:
    messages = _faulted(mock, "disconnect")
    assert len(records(messages)) == 2
    [message] = errors(messages)
    assert message.startswith(
        f"{mock.base_url.removeprefix('http://')} closed the connection during the stream, "
        "after 2 chunk(s): "
    )


@pytest.mark.cell("errors")
def test_malformed_chunk(mock: Running) -> None:
    messages = _faulted(mock, "malformed")
    assert len(records(messages)) == 2
    [message] = errors(messages)
    assert message.startswith("the stream sent data that is not JSON: {")


@pytest.mark.cell("errors")
def test_stalled_stream_times_out(mock: Running) -> None:
    messages = _faulted(mock, "stall", stall_seconds=5)
    assert len(records(messages)) == 2
    assert errors(messages) == [
        f"timed out after 1 s waiting for the next chunk from "
        f"{mock.base_url.removeprefix('http://')} during the stream, after 2 chunk(s); raise "
        "config.timeout for slow models"
    ]
