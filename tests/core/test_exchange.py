"""Streamed answers through ``Exchange``: the inline fast path and the careful path agree."""

from __future__ import annotations

import json
from typing import Any

from openai_compat import Endpoint, OpenAICompatibleConnector
from openai_compat.testing import (
    MockServer,
    chat_chunks,
    chat_completion,
    json_reply,
    raw_reply,
    sse_reply,
)
from tests.conftest import NO_RETRY, make_config

PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "ping"}]}


def run(server: MockServer) -> list[dict[str, Any]]:
    config = make_config(server.url, is_stream=True)
    connector = OpenAICompatibleConnector(retry=NO_RETRY)
    return [m.to_dict() for m in connector.run_model(config, PAYLOAD)]


def test_null_or_false_error_members_are_ordinary_chunks(server: MockServer) -> None:
    chunks = chat_chunks("a b")
    chunks[1]["error"] = None
    chunks[2]["error"] = False
    server.enqueue(sse_reply(chunks))
    messages = run(server)
    assert [m["record"]["data"] for m in messages] == chunks


def test_falsy_but_present_error_is_still_an_error(server: MockServer) -> None:
    server.enqueue(sse_reply([*chat_chunks("a")[:1], {"error": 0}]))
    messages = run(server)
    assert [m["type"] for m in messages] == ["record", "log"]
    assert messages[-1]["log"]["level"] == "error"
    assert "error in the stream: 0" in messages[-1]["log"]["message"]


def test_non_object_json_after_chunks_ends_with_an_error(server: MockServer) -> None:
    server.enqueue(sse_reply([*chat_chunks("a")[:2], "[1, 2]"]))
    messages = run(server)
    assert [m["type"] for m in messages] == ["record", "record", "log"]
    assert "JSON list, not an object" in messages[-1]["log"]["message"]


def test_chunks_split_across_lines_and_pieces_are_all_read(server: MockServer) -> None:
    chunks = chat_chunks("one two three four")
    lines = [f"data: {json.dumps(c)}\n" for c in chunks]
    body = ("".join(lines) + "\ndata: [DONE]\n\n").encode()
    # One event holding every chunk on its own data line, cut into 7-byte pieces.
    cuts = range(7, len(body), 7)
    server.enqueue(
        raw_reply(body, content_type="text/event-stream", split_at=cuts, piece_delay_s=0)
    )
    messages = run(server)
    assert [m["record"]["data"] for m in messages] == chunks


async def test_counters_after_a_normal_stream(server: MockServer) -> None:
    chunks = chat_chunks("x y z")
    server.enqueue(sse_reply(chunks))
    async with Endpoint(make_config(server.url, is_stream=True), retry=NO_RETRY) as endpoint:
        async with endpoint.request(PAYLOAD) as exchange:
            got = [chunk async for chunk in exchange]
        assert got == chunks
        assert exchange.streamed and exchange.done and exchange.finished
        assert exchange.chunks == len(chunks) and not exchange.truncated


def test_json_answer_with_null_error_member_is_one_record(server: MockServer) -> None:
    answer = {**chat_completion("hi"), "error": None}
    server.enqueue(json_reply(answer))
    connector = OpenAICompatibleConnector(retry=NO_RETRY)
    messages = [m.to_dict() for m in connector.run_model(make_config(server.url), PAYLOAD)]
    assert [m["record"]["data"] for m in messages] == [answer]


async def test_sse_body_without_its_content_type_is_still_a_stream(server: MockServer) -> None:
    chunks = chat_chunks("p q")
    body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"
    server.enqueue(raw_reply(body, content_type="text/plain"))
    async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
        async with endpoint.request(PAYLOAD) as exchange:
            got = [chunk async for chunk in exchange]
        assert got == chunks
        assert exchange.streamed and exchange.done


async def test_chunks_the_fast_parser_refuses_decode_as_json_loads_does(
    server: MockServer,
) -> None:
    # Integers beyond 64 bits, NaN and infinities, a lone surrogate escape, invalid UTF-8:
    # each chunk must come out exactly as json.loads reads the decoded text.
    datas = [
        b'{"n": 123456789012345678901234567890, "m": -9223372036854775809}',
        b'{"x": NaN, "y": -Infinity, "z": 1e400}',
        b'{"s": "\\ud800 lone"}',
        b'{"c": "bad \xff\xfe bytes"}',
        b'{"f": [0.1, 1e16, 5e-324, -0.0], "k": 1, "k": 2}',
    ]
    body = b"".join(b"data: " + d + b"\n\n" for d in datas) + b"data: [DONE]\n\n"
    server.enqueue(raw_reply(body, content_type="text/event-stream"))
    config = make_config(server.url, is_stream=True)
    async with (
        Endpoint(config, retry=NO_RETRY) as endpoint,
        endpoint.request(PAYLOAD) as exchange,
    ):
        got = [chunk async for chunk in exchange]
    want = [json.loads(d.decode("utf-8", "replace")) for d in datas]
    assert repr(got) == repr(want)  # repr: NaN != NaN, and int vs float must show
    assert exchange.chunks == len(datas) and exchange.done
