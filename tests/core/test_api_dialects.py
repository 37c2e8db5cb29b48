"""Every OpenAI API the connector speaks, against the scripted server: the dialect follows
the URL's path or ``api``; Responses event streams (split anywhere, cut off, failed, error
events, built from deltas), legacy completions, embeddings (never streamed), and chat's two
names for reasoning text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import Endpoint, OpenAICompatibleConnector
from openai_compat.apis import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    RESPONSES,
    Usage,
    decode_embedding,
    dialect_for,
)
from openai_compat.config import SourceConfig
from openai_compat.errors import ConfigurationError, StreamError
from openai_compat.mapping import extract_outputs, output_fields
from openai_compat.testing import (
    MockServer,
    chat_chunks,
    embedding_vector,
    encode_typed_sse,
    response_events,
    responses_sse_reply,
    sse_reply,
)
from tests.conftest import CANARY, NO_RETRY, make_config

RESPONSES_PAYLOAD = {"model": "mock-model", "input": "hello there"}
COMPLETIONS_PAYLOAD = {"model": "mock-model", "prompt": "hello there"}


def _config(server: MockServer, path: str, **extra: Any) -> dict[str, Any]:
    return make_config(server.base_url + path, **extra)


async def _complete(
    server: MockServer, path: str, payload: dict[str, Any], *, stream: bool = True, **extra: Any
) -> Any:
    async with Endpoint(_config(server, path, is_stream=stream, **extra), retry=NO_RETRY) as ep:
        return await ep.complete(payload)


# -- choosing the dialect ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/v1/chat/completions", CHAT),
        ("/v1/completions", COMPLETIONS),
        ("/v1/embeddings/", EMBEDDINGS),
        ("/openai/v1/responses", RESPONSES),
        ("/api/generate", CHAT),
    ],
)
def test_the_dialect_follows_the_path(path: str, dialect: Any) -> None:
    assert dialect_for("http://127.0.0.1:1" + path) is dialect
    assert SourceConfig.parse({"url": "http://127.0.0.1:1" + path}).dialect is dialect


def test_api_overrides_the_path_and_an_unknown_one_is_refused_saying_the_choices() -> None:
    cfg = SourceConfig.parse({"url": "http://127.0.0.1:1/odd/path", "api": "embeddings"})
    assert cfg.dialect is EMBEDDINGS
    with pytest.raises(ConfigurationError) as caught:
        SourceConfig.parse({"url": "http://127.0.0.1:1/v1/x", "api": "embedding"})
    assert caught.value.field == "api"
    assert '"embeddings"' in str(caught.value) and '"embedding"' in str(caught.value)
    with pytest.raises(ConfigurationError):
        SourceConfig.parse({"url": "http://127.0.0.1:1/v1/x", "api": 3})


# -- Responses -------------------------------------------------------------------------------


async def test_a_streamed_response_assembles_into_the_completed_response(
    server: MockServer,
) -> None:
    completion = await _complete(server, "/v1/responses", RESPONSES_PAYLOAD)
    assert completion.streamed and completion.warnings == [] and not completion.truncated
    answer = completion.response
    assert answer["object"] == "response" and answer["status"] == "completed"
    assert answer["output_text"] == "You said: hello there"
    assert Usage.parse(answer["usage"]) == Usage(
        input=10, output=4, cached=2, reasoning=0, total=14
    )
    sent = server.requests[-1].json
    assert sent["stream"] is True and "stream_options" not in sent


async def test_a_response_split_at_every_byte_is_the_same_answer(server: MockServer) -> None:
    whole = await _complete(server, "/v1/responses", RESPONSES_PAYLOAD)
    split = await _complete(server, "/v1/responses?scenario=split", RESPONSES_PAYLOAD)
    assert split.response["output"] == whole.response["output"]
    assert split.response["output_text"] == "You said: hello there"
    assert split.warnings == []


async def test_a_response_cut_off_is_warned_once_and_built_from_its_deltas(
    server: MockServer,
) -> None:
    completion = await _complete(server, "/v1/responses?scenario=no-done", RESPONSES_PAYLOAD)
    assert completion.truncated
    assert completion.warnings == [
        "the stream ended after 9 chunk(s) with neither [DONE] nor "
        "a response.completed event: it may have been cut off"
    ]
    assert completion.response["output_text"] == "You said: hello there"


async def test_a_terminal_event_without_its_response_gets_the_answer_from_the_deltas(
    server: MockServer,
) -> None:
    events = response_events(
        "Hi you",
        reasoning="Think first",
        with_response=False,
        tool_call={"name": "lookup", "arguments": '{"q": "weather"}'},
    )
    server.enqueue(responses_sse_reply(events))
    completion = await _complete(server, "/v1/responses", RESPONSES_PAYLOAD)
    answer = completion.response
    assert completion.warnings == [] and answer["status"] == "completed"
    assert answer["output_text"] == "Hi you"
    kinds = [item["type"] for item in answer["output"]]
    assert kinds == ["reasoning", "message", "function_call"]
    assert answer["output"][0]["content"] == [{"type": "reasoning_text", "text": "Think first"}]
    assert answer["output"][2]["name"] == "lookup"
    assert json.loads(answer["output"][2]["arguments"]) == {"q": "weather"}


@pytest.mark.parametrize(
    ("scenario", "message", "code"),
    [("failed", "The model crashed.", "server_error"), ("error-event", "Too many tokens.", None)],
)
async def test_failed_responses_and_error_events_are_stream_errors(
    server: MockServer, scenario: str, message: str, code: str | None
) -> None:
    with pytest.raises(StreamError) as caught:
        await _complete(server, f"/v1/responses?scenario={scenario}", RESPONSES_PAYLOAD)
    assert message in str(caught.value)
    expected = code or "rate_limit_exceeded"
    assert caught.value.code == expected and expected in str(caught.value)
    assert CANARY not in str(caught.value)


async def test_an_incomplete_response_finishes_the_stream(server: MockServer) -> None:
    completion = await _complete(server, "/v1/responses?scenario=incomplete", RESPONSES_PAYLOAD)
    assert completion.warnings == []
    assert completion.response["status"] == "incomplete"
    assert completion.response["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_a_whole_response_gets_output_text_too(server: MockServer) -> None:
    completion = await _complete(
        server, "/v1/responses?scenario=reasoning", RESPONSES_PAYLOAD, stream=False
    )
    assert not completion.streamed
    assert completion.response["output_text"] == "You said: hello there"
    assert "stream" not in server.requests[-1].json


def test_responses_events_split_at_every_byte_decode_the_same() -> None:
    body = encode_typed_sse(response_events("a b c"))
    assert body.startswith(b"event: response.created\ndata: {")
    assert body.count(b"\n\nevent: ") == len(response_events("a b c")) - 1


def test_the_default_output_of_a_responses_run_is_output_text() -> None:
    # The connection's default response_format is a chat sample: another API's answer.
    cfg = SourceConfig.parse({"url": "http://127.0.0.1:1/v1/responses"})
    fields = output_fields(None, cfg.response_format, cfg.dialect)
    assert [f.name for f in fields] == ["output_text"]
    assert extract_outputs({"output_text": "x"}, fields) == ({"output_text": "x"}, [])


def test_the_read_door_streams_responses_and_assembles_them(server: MockServer) -> None:
    config = _config(server, "/v1/responses", is_stream=True)
    messages = [
        m.model_dump(mode="json")
        for m in OpenAICompatibleConnector().run_model(config, RESPONSES_PAYLOAD, assemble=True)
    ]
    records = [m["record"]["data"] for m in messages if m["type"] == "record"]
    assert records[0]["type"] == "response.created"
    deltas = [r["delta"] for r in records if r.get("type") == "response.output_text.delta"]
    assert "".join(deltas) == "You said: hello there"
    assert records[-1]["output_text"] == "You said: hello there"
    assert not [m for m in messages if m["type"] == "log"]


def test_check_succeeds_on_a_responses_url(server: MockServer) -> None:
    config = _config(
        server, "/v1/responses", request_format=json.dumps(RESPONSES_PAYLOAD), is_stream=True
    )
    status = OpenAICompatibleConnector().check_connection(config).model_dump(mode="json")
    assert status["connection_status"]["status"] == "succeeded"


# -- completions -----------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["normal", "split"])
async def test_completions_streamed_and_whole(server: MockServer, scenario: str) -> None:
    path = f"/v1/completions?scenario={scenario}"
    streamed = await _complete(server, path, COMPLETIONS_PAYLOAD)
    whole = await _complete(server, path, COMPLETIONS_PAYLOAD, stream=False)
    assert streamed.streamed and not whole.streamed and streamed.warnings == []
    for completion in (streamed, whole):
        assert completion.response["object"] == "text_completion"
        assert completion.response["choices"][0]["text"] == "You said: hello there"
        assert completion.response["choices"][0]["finish_reason"] == "stop"
    # Completions streams report usage when asked, as chat ones do: a run asks.
    cfg = SourceConfig.parse(_config(server, "/v1/completions"))
    assert cfg.dialect.asks_stream_usage
    fields = output_fields(None, cfg.response_format, cfg.dialect)
    assert extract_outputs(whole.response, fields)[0] == {"choices.0.text": "You said: hello there"}


async def test_a_completions_stream_without_finish_reason_is_cut_off(server: MockServer) -> None:
    completion = await _complete(server, "/v1/completions?scenario=no-done", COMPLETIONS_PAYLOAD)
    assert completion.truncated and len(completion.warnings) == 1
    assert "a finish_reason" in completion.warnings[0]


# -- embeddings ------------------------------------------------------------------------------


async def test_embeddings_are_never_streamed_even_with_streaming_on(server: MockServer) -> None:
    payload = {"model": "mock-model", "input": ["one", "two words"], "dimensions": 4}
    completion = await _complete(server, "/v1/embeddings", payload, stream=True)
    assert "stream" not in server.requests[-1].json
    vectors = [item["embedding"] for item in completion.response["data"]]
    assert vectors == [embedding_vector("one", 4), embedding_vector("two words", 4)]


async def test_base64_embeddings_decode_to_the_same_floats(server: MockServer) -> None:
    payload = {"model": "mock-model", "input": "some text", "encoding_format": "base64"}
    completion = await _complete(server, "/v1/embeddings", payload, stream=False)
    # Sent in base64, handed on decoded (as decode_embedding decodes the wire's text).
    assert completion.response["data"][0]["embedding"] == embedding_vector("some text")
    assert server.requests[-1].json["encoding_format"] == "base64"


@pytest.mark.parametrize(
    ("value", "problem"),
    [("abc", "not base64"), ("AAA=", "not a whole number"), ({"x": 1}, "not a list")],
)
def test_a_bad_embedding_says_what_is_wrong(value: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_embedding(value)


def test_the_default_output_of_an_embeddings_run_is_the_vector_named_embedding() -> None:
    cfg = SourceConfig.parse({"url": "http://127.0.0.1:1/v1/embeddings"})
    fields = output_fields(None, cfg.response_format, cfg.dialect)
    assert [(f.name, f.source) for f in fields] == [("embedding", "data.0.embedding")]


# -- chat's two names for reasoning ----------------------------------------------------------


def _reasoning_chunks(key: str) -> list[dict[str, Any]]:
    chunks = chat_chunks("Answer", reasoning="Let me think")
    for chunk in chunks:
        delta = chunk["choices"][0]["delta"]
        if "reasoning_content" in delta:
            delta[key] = delta.pop("reasoning_content")
    return chunks


@pytest.mark.parametrize("key", ["reasoning", "reasoning_content"])
async def test_reasoning_is_assembled_under_the_name_the_server_used(
    server: MockServer, key: str
) -> None:
    server.enqueue(sse_reply(_reasoning_chunks(key)))
    completion = await _complete(
        server, "/v1/chat/completions", {"model": "m", "messages": []}, stream=True
    )
    message = completion.response["choices"][0]["message"]
    assert message[key] == "Let me think"
    other = "reasoning" if key == "reasoning_content" else "reasoning_content"
    assert other not in message
    # An output named either way reads whichever the server sent.
    for name in ("reasoning", "reasoning_content"):
        fields = output_fields([f"choices.0.message.{name}"], {})
        assert extract_outputs(completion.response, fields)[0] == {
            f"choices.0.message.{name}": "Let me think"
        }


async def test_events_without_output_index_are_merged_by_item_id(server: MockServer) -> None:
    # llama.cpp names each event's item by its id only.
    events = response_events("Hi you", reasoning="Think first", with_response=False)
    for event in events:
        event.pop("output_index", None)
    server.enqueue(responses_sse_reply(events))
    completion = await _complete(server, "/v1/responses", RESPONSES_PAYLOAD)
    answer = completion.response
    assert [item["type"] for item in answer["output"]] == ["reasoning", "message"]
    assert answer["output_text"] == "Hi you"
    assert answer["output"][0]["content"][0]["text"] == "Think first"
