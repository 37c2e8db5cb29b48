"""The mock server itself, exercised with plain httpx over real sockets."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openai_compat.testing import (
    MockServer,
    Reply,
    chat_chunks,
    chat_completion,
    error_reply,
    html_reply,
    json_reply,
    raw_reply,
    sse_reply,
)

BODY = {"model": "m1", "messages": [{"role": "user", "content": "ping"}]}


@pytest.fixture
def srv(server: MockServer) -> MockServer:
    """The suite's shared, cleared server (tests/conftest.py), under a short name."""
    return server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def sse_data(text: str) -> list[str]:
    """The data payloads of an SSE body (enough for the well-formed bodies the mock sends)."""
    events = text.replace("\r\n", "\n").split("\n\n")
    out = []
    for event in events:
        lines = [ln[6:] for ln in event.split("\n") if ln.startswith("data: ")]
        if lines:
            out.append("\n".join(lines))
    return out


def chunks_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(d) for d in sse_data(text) if d != "[DONE]"]


# -- default behaviour ----------------------------------------------------------------------


def test_default_completion_echoes_last_user_message(srv: MockServer, client: httpx.Client) -> None:
    body = {
        "model": "my-model",
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    }
    r1 = client.post(srv.url, json=body)
    r2 = client.post(srv.url, json=body)
    assert r1.status_code == 200
    assert r1.headers["content-type"] == "application/json"
    assert r1.headers["x-request-id"] == "req_" + r1.headers["x-request-id"][4:]
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]
    data = r1.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "my-model"
    assert data["id"] != r2.json()["id"]
    choice = data["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "You said: second",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_default_stream(srv: MockServer, client: httpx.Client) -> None:
    r = client.post(srv.url, json={**BODY, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    assert sse_data(r.text)[-1] == "[DONE]"
    chunks = chunks_of(r.text)
    assert all(c["object"] == "chat.completion.chunk" and c["choices"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "You said: ping"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_default_stream_usage_only_when_asked(srv: MockServer, client: httpx.Client) -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    chunks = chunks_of(client.post(srv.url, json=body).text)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


def test_bad_requests(srv: MockServer, client: httpx.Client) -> None:
    r = client.post(srv.url, content=b"not json")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"

    r = client.post(srv.url, json={"messages": []})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "message": "you must provide a model parameter",
            "type": "invalid_request_error",
            "param": "model",
            "code": None,
        }
    }

    r = client.post(srv.base_url + "/v1/other", json=BODY)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Not found"
    assert "x-request-id" in r.headers

    r = client.get(srv.url)
    assert r.status_code == 405
    assert "error" in r.json()

    assert client.get(srv.base_url + "/v1/models").json()["data"][0]["id"] == "mock-model"


def test_any_prefix_before_chat_completions(srv: MockServer, client: httpx.Client) -> None:
    r = client.post(srv.base_url + "/openai/deployments/x/chat/completions", json=BODY)
    assert r.json()["choices"][0]["message"]["content"] == "You said: ping"


def test_api_key() -> None:
    with MockServer(api_key="sk-right") as srv, httpx.Client() as client:
        srv.enqueue(json_reply({"scripted": True}))
        for headers in ({}, {"authorization": "Bearer sk-wrong-secret"}):
            r = client.post(srv.url, json=BODY, headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "invalid_api_key"
            assert "sk-wrong" not in r.text
        # The unauthorised requests did not use up the scripted reply.
        r = client.post(srv.url, json=BODY, headers={"authorization": "Bearer sk-right"})
        assert r.json() == {"scripted": True}
        assert len(srv.requests) == 3


# -- scripting --------------------------------------------------------------------------------


def test_queue_order_any_path_then_default(srv: MockServer, client: httpx.Client) -> None:
    srv.enqueue(json_reply({"n": 1}), error_reply(418, "teapot", code="tea"))
    srv.enqueue(raw_reply("third", status=201))
    assert srv.pending == 3
    assert client.get(srv.base_url + "/anything").json() == {"n": 1}
    r = client.post(srv.url, json=BODY)
    assert r.status_code == 418
    assert r.json() == {
        "error": {
            "message": "teapot",
            "type": "invalid_request_error",
            "param": None,
            "code": "tea",
        }
    }
    r = client.post(srv.url, json=BODY)
    assert (r.status_code, r.text, r.headers["content-type"]) == (201, "third", "text/plain")
    assert srv.pending == 0
    assert client.post(srv.url, json=BODY).json()["object"] == "chat.completion"


def test_recorded_requests_and_clear(srv: MockServer, client: httpx.Client) -> None:
    client.post(srv.url + "?a=1&b=x", json=BODY, headers={"X-Custom": "V"})
    client.post(srv.url, content=b"\xff raw")
    reqs = srv.requests
    assert len(reqs) == 2
    first = reqs[0]
    assert (first.method, first.path, first.query) == (
        "POST",
        "/v1/chat/completions",
        {"a": "1", "b": "x"},
    )
    assert first.headers["x-custom"] == "V"
    assert first.json == BODY
    assert json.loads(first.body) == BODY
    assert reqs[1].json is None and reqs[1].body == b"\xff raw"
    reqs.clear()  # a copy: the server's record is untouched
    assert len(srv.requests) == 2
    srv.enqueue(json_reply({}))
    srv.clear()
    assert srv.requests == [] and srv.pending == 0


def test_split_reply_arrives_in_separate_reads(srv: MockServer, client: httpx.Client) -> None:
    reply = sse_reply(chat_chunks("one two three"), split_at=[3, 10, 40, 41, 90])
    assert len(reply.pieces) == 6
    srv.enqueue(reply)
    with client.stream("POST", srv.url, json=BODY) as r:
        reads = [b for b in r.iter_raw() if b]
    assert len(reads) > 1
    assert b"".join(reads) == reply.body
    assert reads[0] == reply.body[:3]


def test_disconnect_breaks_the_body_and_logs_nothing(
    srv: MockServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    srv.enqueue(sse_reply(chat_chunks("a b"), done=False, disconnect=True))
    received = b""
    with (
        caplog.at_level(logging.INFO),
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", srv.url, json=BODY) as r,
    ):
        for b in r.iter_raw():
            received += b
    assert received.startswith(b"data: {")
    assert client.post(srv.url, json=BODY).status_code == 200  # still serving
    assert not [rec for rec in caplog.records if rec.name.startswith("uvicorn")]


def test_stall_times_out_and_stop_is_prompt() -> None:
    srv = MockServer()
    srv.start()
    srv.enqueue(sse_reply(chat_chunks("a"), stall_s=30))
    with httpx.Client(timeout=httpx.Timeout(5, read=0.3)) as client:
        with pytest.raises(httpx.ReadTimeout), client.stream("POST", srv.url, json=BODY) as r:
            for _ in r.iter_raw():
                pass
        t = time.perf_counter()
        srv.stop()
        assert time.perf_counter() - t < 1.0


def test_delays(srv: MockServer, client: httpx.Client) -> None:
    srv.enqueue(Reply(pieces=(b"{}",), delay_s=0.2))
    t = time.perf_counter()
    assert client.post(srv.url, json=BODY).json() == {}
    assert time.perf_counter() - t >= 0.2

    t = time.perf_counter()
    client.post(srv.url + "?latency_ms=150", json=BODY)
    assert time.perf_counter() - t >= 0.15


# -- scenarios --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "content_type"),
    [
        ("401", 401, "application/json"),
        ("403", 403, "application/json"),
        ("404", 404, "application/json"),
        ("429", 429, "application/json"),
        ("500", 500, "application/json"),
        ("502-html", 502, "text/html; charset=utf-8"),
        ("503-text", 503, "text/plain"),
        ("detail", 422, "application/json"),
        ("string-error", 400, "application/json"),
        ("html-200", 200, "text/html; charset=utf-8"),
        ("error-in-200", 200, "application/json"),
    ],
)
def test_error_scenarios(
    srv: MockServer, client: httpx.Client, scenario: str, status: int, content_type: str
) -> None:
    r = client.post(f"{srv.url}?scenario={scenario}", json=BODY)
    assert (r.status_code, r.headers["content-type"]) == (status, content_type)
    assert r.headers["x-request-id"].startswith("req_")
    if content_type == "application/json":
        data = r.json()
        if scenario == "detail":
            assert isinstance(data["detail"], list)
        elif scenario == "string-error":
            assert isinstance(data["error"], str)
        else:
            assert isinstance(data["error"]["message"], str)
    elif "html" in content_type:
        assert r.text.lstrip().lower().startswith("<!doctype html>")
    if scenario == "429":
        assert (r.headers["retry-after"], r.headers["retry-after-ms"]) == ("1", "20")


def test_stream_scenarios(srv: MockServer, client: httpx.Client) -> None:
    def get(name: str, **params: str) -> httpx.Response:
        return client.post(srv.url, params={"scenario": name, **params}, json=BODY)

    r = get("stream")
    assert r.headers["content-type"] == "text/event-stream"
    assert sse_data(r.text)[-1] == "[DONE]"
    assert "\r" not in r.text

    crlf = get("crlf").text
    assert crlf.count("\r\n\r\n") == crlf.count("data: ")
    assert "\n\n" not in crlf.replace("\r\n", "")

    comments = get("comments").text
    assert comments.startswith(": keep-alive")
    assert len(chunks_of(comments)) == len(chunks_of(r.text))

    no_done = get("no-done").text
    assert "[DONE]" not in no_done and chunks_of(no_done)

    errored = sse_data(get("error-in-stream").text)
    assert "error" in json.loads(errored[2]) and len(errored) == 4

    with client.stream("POST", srv.url, params={"scenario": "split"}, json=BODY) as resp:
        reads = [b for b in resp.iter_raw() if b]
    assert len(reads) > 10 and max(map(len, reads)) < 100
    assert (
        "".join(
            c["choices"][0]["delta"].get("content", "") for c in chunks_of(b"".join(reads).decode())
        )
        == "You said: ping"
    )


def test_broken_stream_scenarios(srv: MockServer, client: httpx.Client) -> None:
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", srv.url + "?scenario=disconnect", json=BODY) as r,
    ):
        for _ in r.iter_raw():
            pass
    slow_client = httpx.Client(timeout=httpx.Timeout(5, read=0.2))
    with (
        pytest.raises(httpx.ReadTimeout),
        slow_client.stream("POST", srv.url + "?scenario=stall&stall_s=3", json=BODY) as r,
    ):
        for _ in r.iter_raw():
            pass
    slow_client.close()


def test_slow_and_bad_scenario(srv: MockServer, client: httpx.Client) -> None:
    t = time.perf_counter()
    r = client.post(srv.url + "?scenario=slow&delay_s=0.2", json=BODY)
    assert r.status_code == 200 and time.perf_counter() - t >= 0.2
    assert client.post(srv.url + "?scenario=nope", json=BODY).status_code == 400
    assert client.post(srv.url + "?scenario=slow&delay_s=x", json=BODY).status_code == 400


# -- server lifecycle -------------------------------------------------------------------------


async def test_async_context_manager() -> None:
    async with MockServer() as srv, httpx.AsyncClient() as client:
        r = await client.post(srv.url, json=BODY)
        assert r.json()["choices"][0]["message"]["content"] == "You said: ping"


def test_fixed_port_and_restart() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for _ in range(2):
        with MockServer(port=port) as srv, httpx.Client() as client:
            assert srv.base_url == f"http://127.0.0.1:{port}"
            assert client.post(srv.url, json=BODY).status_code == 200


def test_concurrent_clients_and_enqueue(srv: MockServer) -> None:
    srv.enqueue(*[json_reply({"i": i}) for i in range(40)])
    seen: list[int] = []
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client() as client:
            for _ in range(10):
                r = client.post(srv.url, json=BODY)
                with lock:
                    seen.append(r.json()["i"])
                    ids.append(r.headers["x-request-id"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(40))
    assert len(set(ids)) == 40
    assert len(srv.requests) == 40


# -- builders ---------------------------------------------------------------------------------


def test_chat_completion_builder() -> None:
    obj = chat_completion(
        None,
        reasoning="think",
        tool_calls=[{"name": "f", "arguments": {"x": 1}}],
        finish_reason="tool_calls",
        usage=False,
    )
    message = obj["choices"][0]["message"]
    assert message["content"] is None and message["reasoning_content"] == "think"
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x":1}'}
    assert message["tool_calls"][0]["type"] == "function"
    assert "usage" not in obj


def test_chat_chunks_builder() -> None:
    args = '{"city": "Paris", "unit": "celsius"}'
    chunks = chat_chunks(
        "Hi you",
        reasoning="Let me think",
        tool_calls=[
            {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": args}}
        ],
        empty_first=True,
        include_usage=True,
        finish_reason="tool_calls",
    )
    assert chunks[0]["choices"] == [] and chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-1]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me think"
    assert "".join(d.get("content") or "" for d in deltas) == "Hi you"
    fragments = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert fragments[0]["id"] == "call_1" and fragments[0]["function"]["name"] == "w"
    assert len(fragments) > 2
    assert all(
        set(f) == {"index", "function"} and set(f["function"]) == {"arguments"}
        for f in fragments[1:]
    )
    assert "".join(f["function"]["arguments"] for f in fragments) == args
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    pieces = chat_chunks(pieces=["a", "", "b"])
    assert [c["choices"][0]["delta"].get("content") for c in pieces[1:-1]] == ["a", "", "b"]


def test_sse_reply_serialisation() -> None:
    reply = sse_reply([{"a": 1}, "x\ny"], line_ending="\r\n", comments=True)
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.body == (
        b': keep-alive\r\n\r\ndata: {"a":1}\r\n\r\n'
        b": keep-alive\r\n\r\ndata: x\r\ndata: y\r\n\r\n"
        b": keep-alive\r\n\r\ndata: [DONE]\r\n\r\n"
    )
    assert reply.piece_delay_s == 0
    assert sse_reply(["z"], done=False, event_separator="\n\n\n").body == b"data: z\n\n\n"
    split = sse_reply(["z"], split_at=[2, 4])
    assert split.pieces == (b"da", b"ta", b": z\n\ndata: [DONE]\n\n") and split.piece_delay_s > 0
    assert html_reply(401).status == 401
