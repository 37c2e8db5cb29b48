"""Events to chunks, in-stream errors, and assembling chunks into one chat.completion."""

from __future__ import annotations

import pytest

from openai_compat.apis import ChunkAssembler
from openai_compat.errors import StreamError
from openai_compat.stream import chunks_from_event, error_from_chunk


def test_one_json_object_per_event() -> None:
    assert list(chunks_from_event('{"a": 1}')) == [{"a": 1}]


def test_event_holding_several_json_lines_gives_one_chunk_per_line() -> None:
    data = (
        '{"choices":[{"delta":{"content":"can help "}}]}\n{"choices":[{"delta":{"content":"you"}}]}'
    )
    chunks = list(chunks_from_event(data))
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["can help ", "you"]


def test_non_json_data_is_a_stream_error_naming_the_data() -> None:
    with pytest.raises(StreamError, match="not JSON: <html>"):
        list(chunks_from_event("<html>"))
    with pytest.raises(StreamError, match="JSON list"):
        list(chunks_from_event("[1, 2]"))


def test_error_chunk_shapes() -> None:
    err = error_from_chunk(
        {"error": {"message": "overloaded", "type": "server_error", "code": 503}}
    )
    assert err is not None
    assert "overloaded" in str(err) and "code 503" in str(err) and err.code == "503"
    text_err = error_from_chunk({"error": "plain text"})
    assert text_err is not None and "plain text" in str(text_err)
    assert error_from_chunk({"choices": [], "error": None}) is None


def _delta(content: str | None = None, **extra: object) -> dict[str, object]:
    delta: dict[str, object] = dict(extra)
    if content is not None:
        delta["content"] = content
    return {"id": "c1", "model": "m", "created": 1, "choices": [{"index": 0, "delta": delta}]}


def test_assembles_content_reasoning_refusal_finish_and_usage() -> None:
    asm = ChunkAssembler()
    asm.add({"id": "c1", "choices": [], "object": "chat.completion.chunk"})  # Azure first chunk
    asm.add(_delta(role="assistant", reasoning_content="think "))
    asm.add(_delta(reasoning="more"))
    asm.add(_delta("Hello"))
    asm.add(_delta(" world", refusal="no"))
    asm.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "obfuscation": "x"})
    asm.add(
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    )
    result = asm.result()
    assert result["object"] == "chat.completion"
    assert result["id"] == "c1" and result["model"] == "m"
    message = result["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "Hello world",
        "reasoning_content": "think more",
        "refusal": "no",
    }
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["total_tokens"] == 5
    assert asm.finished


def _tool(**fragment: object) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]}


def test_tool_calls_merged_by_index() -> None:
    asm = ChunkAssembler()
    asm.add(_tool(index=0, id="call_a", type="function", function={"name": "f", "arguments": ""}))
    asm.add(_tool(index=1, id="call_b", type="function", function={"name": "g", "arguments": "{"}))
    asm.add(_tool(index=0, function={"arguments": '{"x":'}))
    asm.add(_tool(index=0, function={"arguments": " 1}"}))
    asm.add(_tool(index=1, function={"arguments": "}"}))
    calls = asm.result()["choices"][0]["message"]["tool_calls"]
    assert calls == [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]


def test_tool_calls_without_index_fall_back_to_id_then_open_call() -> None:
    asm = ChunkAssembler()
    asm.add(_tool(id="call_a", function={"name": "f", "arguments": "{"}))
    asm.add(_tool(function={"arguments": "}"}))  # no index, no id: the open call
    asm.add(_tool(id="call_b", function={"name": "g", "arguments": "[]"}))
    asm.add(_tool(id="call_a", function={"arguments": ""}))
    calls = asm.result()["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [
        ("call_a", "{}"),
        ("call_b", "[]"),
    ]


def test_tool_calls_reusing_index_zero_with_new_ids_are_separate_calls() -> None:
    asm = ChunkAssembler()
    asm.add(_tool(index=0, id="call_a", function={"name": "f", "arguments": "1"}))
    asm.add(_tool(index=0, id="call_b", function={"name": "g", "arguments": "2"}))
    calls = asm.result()["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("f", "1"),
        ("g", "2"),
    ]


def test_several_choices_and_usage_inside_last_content_chunk() -> None:
    asm = ChunkAssembler()
    asm.add(
        {
            "choices": [
                {"index": 1, "delta": {"content": "B"}},
                {"index": 0, "delta": {"content": "A"}},
            ]
        }
    )
    asm.add(
        {
            "choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}],
            "usage": {"total_tokens": 9},
        }
    )
    result = asm.result()
    assert [c["message"]["content"] for c in result["choices"]] == ["A!", "B"]
    assert result["usage"] == {"total_tokens": 9}


def test_non_chat_chunks_assemble_to_an_empty_message_without_error() -> None:
    asm = ChunkAssembler()
    asm.add({"message": "streaming data chunk 1"})
    assert asm.result()["choices"] == []
    assert not asm.finished


def test_a_chunk_without_content_keeps_the_finish_reason_already_given() -> None:
    # A server's trailing usage chunk with an empty delta and "stop" must not turn a
    # truncated answer ("length") into a complete one.
    asm = ChunkAssembler()
    asm.add(_delta("Hello"))
    asm.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    asm.add(
        {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"total_tokens": 7},
        }
    )
    result = asm.result()
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"] == {"total_tokens": 7}


def test_a_chunk_with_content_after_a_finish_reason_gives_its_own() -> None:
    asm = ChunkAssembler()
    asm.add({"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "length"}]})
    asm.add({"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]})
    assert asm.result()["choices"][0]["finish_reason"] == "stop"
