"""The API dialect seam: the exchange shows each chunk to its dialect with the SSE event
type, the consumer assembles and warns in the dialect's words, and one `Usage` reads token
counts in either spelling."""

from __future__ import annotations

from typing import Any

import pytest

from openai_compat import Endpoint
from openai_compat.apis import CHAT, ChatDialect, Dialect, Usage, dialect_for
from openai_compat.testing import MockServer, raw_reply
from tests.conftest import NO_RETRY, make_config

PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True}

# A stream that ends with neither [DONE] nor a finish_reason, its last event of type "end".
STREAM = (
    'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
    'event: end\ndata: {"choices": []}\n\n'
)


class _EndsOnEvent(ChatDialect):
    """Chat, except that an event of type ``end`` completes the answer."""

    end_marker = "an end event"

    def finishes(self, chunk: dict[str, Any], event: str) -> bool:
        self.seen.append(event)
        return event == "end"

    def __init__(self) -> None:
        self.seen: list[str] = []


async def _complete(server: MockServer, dialect: Dialect | None) -> Any:
    server.enqueue(raw_reply(STREAM, content_type="text/event-stream"))
    async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
        if dialect is not None:
            endpoint.client.dialect = dialect
        return await endpoint.complete(PAYLOAD)


async def test_the_exchange_asks_the_dialect_with_the_event_type(server: MockServer) -> None:
    dialect = _EndsOnEvent()
    completion = await _complete(server, dialect)
    assert dialect.seen == ["message", "end"]
    assert completion.warnings == []
    # The chat assembler still made the answer.
    assert completion.response["choices"][0]["message"]["content"] == "Hi"


async def test_a_stream_the_dialect_does_not_call_finished_is_warned_in_its_words(
    server: MockServer,
) -> None:
    completion = await _complete(server, None)
    assert completion.warnings == [
        "the stream ended after 2 chunk(s) with neither [DONE] nor a finish_reason: "
        "it may have been cut off"
    ]


def test_chat_is_the_dialect_of_a_chat_url() -> None:
    assert dialect_for("http://127.0.0.1:1/v1/chat/completions") is CHAT
    assert CHAT.default_output == ("choices", 0, "message", "content")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "http://h/v1/chat/completions/chat/completions",
            'the path repeats "/chat/completions"; use http://h/v1/chat/completions',
        ),
        (
            "http://h",
            "the URL has no path; the full chat-completions URL is http://h/v1/chat/completions",
        ),
        (
            "http://h/v1",
            "the URL looks like a base URL (it ends in /v1); the connector posts to the URL as "
            "given, so use the full chat-completions URL http://h/v1/chat/completions",
        ),
        ("http://h/v1/chat/completions", None),
    ],
)
def test_url_problems_are_worded_from_the_dialect(url: str, problem: str | None) -> None:
    assert CHAT.url_problem(url) == problem


def test_status_hints_name_the_api() -> None:
    assert CHAT.status_hint(404) == (
        "check that the URL is the full chat-completions URL and that the model exists"
    )
    assert CHAT.status_hint(401) is None  # not about the API: the error builder's own


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
            Usage(input=10, output=5, cached=4, reasoning=2, total=15),
        ),
        (
            {
                "input_tokens": 7,
                "output_tokens": 3,
                "total_tokens": 10,
                "input_tokens_details": {"cached_tokens": 1},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
            Usage(input=7, output=3, cached=1, reasoning=0, total=10),
        ),
        ({"prompt_tokens": 3, "total_tokens": 3}, Usage(input=3, total=3)),
        # JSON's true is not a count, nor is text.
        ({"prompt_tokens": True, "completion_tokens": "4"}, Usage()),
    ],
)
def test_usage_reads_either_spelling(usage: dict[str, Any], expected: Usage) -> None:
    assert Usage.parse(usage) == expected


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        ({"total_tokens": 9, "prompt_tokens": 1}, 9),
        ({"prompt_tokens": 4, "completion_tokens": 3}, 7),
        ({"completion_tokens": 3}, 3),
        ({"something": 1}, None),
    ],
)
def test_tokens_is_the_total_else_input_plus_output(usage: dict[str, Any], tokens: int) -> None:
    counts = Usage.parse(usage)
    assert counts is not None and counts.tokens == tokens


@pytest.mark.parametrize("usage", [None, {}, [], "x"])
def test_no_usage_is_none(usage: Any) -> None:
    assert Usage.parse(usage) is None
    assert CHAT.usage({"usage": usage}) is None
