"""Redaction: whole secrets are masked, and a short secret is neither spelled out nor sized."""

from __future__ import annotations

import pytest

from openai_compat import Endpoint, OpenAICompatError
from openai_compat.errors import MIN_SECRET_LENGTH, redact, redact_data
from openai_compat.testing import MockServer, error_reply
from tests.conftest import CANARY, NO_RETRY, make_config


def test_a_long_secret_is_masked_wherever_it_occurs() -> None:
    assert len(CANARY) >= MIN_SECRET_LENGTH
    text = f"key {CANARY}; glued:x{CANARY}y; twice {CANARY}{CANARY}"
    assert redact(text, [CANARY]) == "key ***; glued:x***y; twice ******"


def test_a_one_character_key_is_masked_only_as_a_whole_token() -> None:
    message = "Incorrect API key provided: k. Make sure your key is valid (k)."
    assert redact(message, ["k"]) == (
        "Incorrect API key provided: ***. Make sure your key is valid (***)."
    )
    # Inside words the character is left alone: masking it there would spell the key out.
    assert redact("make keys work", ["k"]) == "make keys work"
    assert redact_data({"kind": "token k", "n": [1, "ok"]}, ["k"]) == {
        "kind": "token ***",
        "n": [1, "ok"],
    }


def test_a_three_character_key_is_masked_only_as_a_whole_token() -> None:
    message = 'bad key "abc" (abcdef and xabc are other words), Bearer abc'
    assert redact(message, ["abc"]) == (
        'bad key "***" (abcdef and xabc are other words), Bearer ***'
    )


@pytest.mark.parametrize("secret", ["k", "abc", "1234567", "x" * MIN_SECRET_LENGTH, CANARY])
def test_the_mask_never_tells_the_secrets_length(secret: str) -> None:
    assert redact(f"key={secret}.", [secret]) == "key=***."


def test_a_secret_containing_another_is_masked_whole() -> None:
    inner = CANARY[:MIN_SECRET_LENGTH]
    assert redact(f"{CANARY} and {inner}", [inner, CANARY]) == "*** and ***"
    # A short secret that is part of the mask text is not applied to masks already written.
    assert redact(f"{CANARY} *", [CANARY, "*"]) == "*** ***"


async def test_an_endpoint_echoing_a_one_character_key_keeps_its_message_readable(
    server: MockServer,
) -> None:
    server.enqueue(error_reply(401, "Incorrect API key provided: k. Check the key.", code="x"))
    config = make_config(server.url) | {"api_key": "k"}
    async with Endpoint(config, retry=NO_RETRY) as endpoint:
        with pytest.raises(OpenAICompatError) as info:
            await endpoint.complete({"model": "m", "messages": []})
    assert server.requests[0].headers["authorization"] == "Bearer k"
    message = str(info.value)
    assert "provided: ***. Check the key." in message
    assert " k." not in message and "Check the key" in message


async def test_the_canary_echoed_by_an_endpoint_is_masked(server: MockServer) -> None:
    server.enqueue(error_reply(401, f"Incorrect API key provided: {CANARY}.", code="x"))
    async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
        with pytest.raises(OpenAICompatError) as info:
            await endpoint.complete({"model": "m", "messages": []})
    assert CANARY not in str(info.value)
    assert "provided: ***." in str(info.value)
