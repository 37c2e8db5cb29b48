"""The shortcuts of the hot paths (issue 14) change no byte and no message.

Each shortcut is checked against the long way it replaced: a payload encoded once (by the
payload builder, or by the connector) is the body the client would have encoded; a
connector's reused endpoint is an endpoint of the same configuration and options; the
connector's one guard (the encoder) refuses what the walk over the payload refused, with
the same words; a whole JSON answer decodes as ``json.loads`` decodes it; and the record
builder's messages serialise byte for byte as pydantic's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_compat import (
    Endpoint,
    OpenAICompatError,
    OpenAICompatibleConnector,
    PayloadBuilder,
    RowMappingError,
)
from openai_compat.config import SourceConfig
from openai_compat.endpoint import _with_stream
from openai_compat.protocol import ProtocolMessage, record_message
from openai_compat.retries import RetryPolicy
from openai_compat.testing import MockServer, raw_reply
from tests.conftest import NO_RETRY, make_config

# JSON values as an answer or a payload holds them: non-ASCII text, big integers, floats.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(st.text(), json_values, max_size=5)


def _client_body(payload: dict[str, Any]) -> bytes:
    """The body the client encodes for a payload (Python's json, as it always did)."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")


@pytest.fixture
def server(_module_server: MockServer) -> Iterator[MockServer]:
    _module_server.clear()
    yield _module_server
    _module_server.clear()


# -- the record builder -----------------------------------------------------------------------


@given(data=objects, emitted_at=st.integers(min_value=0, max_value=2**40))
def test_record_message_serialises_as_the_validated_model(
    data: dict[str, Any], emitted_at: int
) -> None:
    fast = record_message(data, emitted_at)
    slow = ProtocolMessage.model_validate(
        {"type": "record", "record": {"data": data, "emitted_at": emitted_at}}
    )
    assert fast.to_json() == slow.to_json()
    assert fast.to_dict() == slow.to_dict()
    assert fast.model_dump_json(exclude_none=True) == slow.model_dump_json(exclude_none=True)


# -- the payload builder's body ---------------------------------------------------------------


@given(text=st.text(), number=st.integers(min_value=-(10**20), max_value=10**20))
def test_build_body_is_the_body_the_client_would_encode(text: str, number: int) -> None:
    builder = PayloadBuilder(
        {"model": "m", "messages": [{"role": "user", "content": "Q: {{q}}"}]},
        [{"name": "max_tokens", "value": "n", "type": "number"}],
    )
    row = {"q": text, "n": number}
    try:
        payload, body = builder.build_body(row)
    except RowMappingError as exc:  # a lone surrogate in the text: refused alike by build
        with pytest.raises(RowMappingError) as again:
            builder.build(row)
        assert str(again.value) == str(exc)
        return
    assert payload == builder.build(row)
    assert body == _client_body(payload)


def test_build_body_of_a_subclass_with_its_own_build_leaves_the_encoding_to_the_client() -> None:
    class Fixed(PayloadBuilder):
        def build(self, row: Any) -> dict[str, Any]:
            return {"model": "fixed"}

    payload, body = Fixed({"model": "m"}).build_body({})
    assert payload == {"model": "fixed"} and body is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"q": float("nan")}, "the payload cannot be sent as JSON: temperature is nan"),
        ({"q": "a\ud800"}, "the payload cannot be sent as JSON: temperature holds text"),
    ],
)
def test_build_body_refuses_with_build_s_words(row: dict[str, Any], message: str) -> None:
    builder = PayloadBuilder({"model": "m"}, [{"name": "temperature", "value": "q"}])
    with pytest.raises(RowMappingError) as info:
        builder.build_body(row)
    assert str(info.value).startswith(message)
    with pytest.raises(RowMappingError) as again:
        builder.build(row)
    assert str(again.value) == str(info.value)


@given(payload=objects)
def test_the_stream_flag_added_to_a_body_is_the_body_of_the_flagged_payload(
    payload: dict[str, Any],
) -> None:
    body = _with_stream(_client_body(payload), payload)
    if not payload or "stream" in payload:
        assert body is None  # encoded again, from the flagged payload
    else:
        assert body == _client_body({**payload, "stream": True})


async def test_an_encoded_payload_is_sent_as_the_client_would_have_sent_it(
    server: MockServer,
) -> None:
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "é ☃ 1e400"}]}
    builder = PayloadBuilder(payload)
    built, body = builder.build_body({})
    for streamed in (False, True):
        config = make_config(server.url, is_stream=streamed)
        async with Endpoint(config, retry=NO_RETRY) as endpoint:
            server.clear()
            await endpoint.complete(built)
            plain = server.requests[-1].body
            server.clear()
            await endpoint.complete(built, encoded=body)
            assert server.requests[-1].body == plain
            assert json.loads(plain) == endpoint.prepare(payload)


# -- the connector ----------------------------------------------------------------------------


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {"model": "m"}
    node = root
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return root


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"model": "m", "messages": [{"role": "user", "content": "a\ud800"}]},
            "nothing was sent: payload: holds U+D800 (a lone surrogate) at position 2 of the "
            "text at messages.0.content, which cannot be encoded as UTF-8; remove it",
        ),
        (
            {"model": "m", "a": float("nan"), "b": "\udfff"},
            "nothing was sent: payload: holds U+DFFF (a lone surrogate) at position 1 of the "
            "text at b, which cannot be encoded as UTF-8; remove it",
        ),
        (
            _deep(64),
            "nothing was sent: payload: is nested more than 64 levels deep; flatten it "
            "(objects and arrays inside each other)",
        ),
        (
            _deep(5_000),
            "nothing was sent: payload: is nested more than 64 levels deep; flatten it "
            "(objects and arrays inside each other)",
        ),
        (
            {"model": "m", "temperature": float("nan")},
            "payload: cannot be sent as JSON: temperature is nan, which JSON cannot hold",
        ),
    ],
)
async def test_an_unsendable_dict_payload_is_refused_with_the_words_it_always_had(
    server: MockServer, payload: dict[str, Any], message: str
) -> None:
    connector = OpenAICompatibleConnector(retry=NO_RETRY)
    (log,) = [m async for m in connector.arun_model(make_config(server.url), payload)]
    assert log.log is not None and log.log.level == "error"
    assert log.log.message == message
    assert server.requests == []


async def test_a_payload_as_deep_as_allowed_is_sent(server: MockServer) -> None:
    payload = _deep(63)
    connector = OpenAICompatibleConnector(retry=NO_RETRY)
    messages = [m async for m in connector.arun_model(make_config(server.url), payload)]
    assert messages[0].record is not None
    assert server.requests[-1].json == payload


async def test_a_shared_client_endpoint_is_reused_only_while_nothing_it_was_made_with_changes(
    server: MockServer,
) -> None:
    async with httpx.AsyncClient() as client, httpx.AsyncClient() as other:
        connector = OpenAICompatibleConnector(client=client)
        config = SourceConfig.parse(make_config(server.url))
        first = connector.endpoint(config)
        assert connector.endpoint(config) is first
        # Another configuration object, even an equal one, gets its own.
        assert connector.endpoint(SourceConfig.parse(make_config(server.url))) is not first
        connector.retry = RetryPolicy(max_retries=0)
        changed = connector.endpoint(config)
        assert changed is not first and changed.client.retry.max_retries == 0
        connector.client = other
        assert connector.endpoint(config) is not changed
        # Used and closed, the reused endpoint still works: it never closes a shared client.
        for _ in range(2):
            async with connector.endpoint(config) as endpoint:
                answer = await endpoint.complete({"model": "m", "messages": []})
            assert answer.response["choices"]
        assert not other.is_closed
        # Without a shared client, every endpoint owns (and closes) its own.
        alone = OpenAICompatibleConnector()
        assert alone.endpoint(config) is not alone.endpoint(config)


def test_a_configuration_with_its_own_client_options_is_never_reused(server: MockServer) -> None:
    connector = OpenAICompatibleConnector(client=httpx.AsyncClient())
    config = SourceConfig.parse(make_config(server.url, advanced={"verify_tls": False}))
    assert connector.endpoint(config) is not connector.endpoint(config)


# -- a whole JSON answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": 123456789012345678901234567890, "m": -9223372036854775809}',
        b'{"x": NaN, "y": -Infinity, "z": 1e400}',
        b'{"s": "\\ud800 lone", "t": "\xc3\xa9 \\u2028"}',
        b'{"f": [0.1, 1e16, 5e-324, -0.0, 1.7976931348623157e308], "k": 1, "k": 2}',
        b'\xef\xbb\xbf{"bom": true}',
        '{"utf16": "é"}'.encode("utf-16"),
        b'  {"spaced" : [ 1 , 2 ] }  ',
    ],
)
async def test_a_json_answer_decodes_as_json_loads_decodes_it(
    server: MockServer, body: bytes
) -> None:
    try:
        want: Any = json.loads(body)
    except ValueError:
        want = None
    server.enqueue(raw_reply(body, content_type="application/json"))
    async with (
        Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint,
        endpoint.request({"model": "m"}) as exchange,
    ):
        if want is None:
            with pytest.raises(OpenAICompatError):
                [item async for item in exchange]
            return
        got = [item async for item in exchange]
    assert repr(got) == repr([want])  # repr: NaN != NaN, and int vs float must show
    assert not exchange.streamed and exchange.finished


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(answer=objects)
async def test_any_json_object_answer_decodes_as_json_loads_decodes_it(
    server: MockServer, answer: dict[str, Any]
) -> None:
    answer.pop("error", None)  # an error answer is another test's subject
    body = json.dumps(answer, ensure_ascii=False).encode()
    server.clear()
    server.enqueue(raw_reply(body, content_type="application/json"))
    async with (
        Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint,
        endpoint.request({"model": "m"}) as exchange,
    ):
        got = [item async for item in exchange]
    assert repr(got) == repr([json.loads(body)])
