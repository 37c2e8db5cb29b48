"""What an error answer's body says, kept in the error: its detail lists, and a hint that
names the cause the body gives (context window, unknown model, a missing header, the header
a key goes in) instead of the status's generic one."""

from __future__ import annotations

import re
from typing import Any

import pytest

from openai_compat import Endpoint, EndpointError
from openai_compat._error_builder import error_from_body
from openai_compat.testing import MockServer, error_reply, json_reply
from tests.conftest import CANARY, NO_RETRY, make_config

PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}
GENERIC_400 = "compare it with the OpenAI chat-completions spec"


def _shown(err: EndpointError) -> str:
    """The message without the scripted server's request id."""
    return re.sub(r"(; )?request id req_\d+", "", str(err)).replace(" ()", "")


async def _error(server: MockServer, **extra: Any) -> EndpointError:
    with pytest.raises(EndpointError) as caught:
        async with Endpoint(make_config(server.url, **extra), retry=NO_RETRY) as endpoint:
            await endpoint.complete(PAYLOAD)
    return caught.value


async def test_a_gateways_error_list_is_shown_with_its_message(server: MockServer) -> None:
    body = {
        "status": "failure",
        "message": "Invalid config passed",
        "errors": [
            {"path": "provider", "message": "Invalid value. Expected one of openai, anthropic"},
            {"path": "retry.attempts", "message": "must be at most 5"},
        ],
    }
    server.enqueue(json_reply(body, status=400))
    err = await _error(server)
    shown = _shown(err)
    assert shown.startswith(
        "HTTP 400 Bad Request from the endpoint: Invalid config passed [errors: provider: "
        "Invalid value. Expected one of openai, anthropic; retry.attempts: must be at most 5]"
    )
    assert err.provider_message == "Invalid config passed"
    assert err.body == body


GUARDRAIL = {
    "error": {
        "message": "The guardrail checks defined in the config failed. You can find more "
        "information in the `hook_results` object.",
        "type": "hooks_failed",
        "param": None,
        "code": None,
    },
    "hook_results": {
        "before_request_hooks": [
            {
                "verdict": False,
                "id": "pg-guard-1",
                "checks": [
                    {"verdict": True, "id": "default.wordCount", "data": {}},
                    {"verdict": False, "id": "default.regexMatch", "data": {"explanation": "x"}},
                ],
            }
        ],
        "after_request_hooks": [],
    },
}


async def test_a_guardrail_denial_names_the_failed_check(server: MockServer) -> None:
    server.enqueue(json_reply(GUARDRAIL, status=446))
    err = await _error(server)
    shown = _shown(err)
    assert shown.startswith("HTTP 446 from the endpoint: The guardrail checks")
    assert "[hook_results: failed default.regexMatch (before_request_hooks pg-guard-1)]" in shown
    assert "wordCount" not in shown  # a check that passed is not a cause
    assert err.status == 446 and err.body == GUARDRAIL


async def test_a_detail_list_is_capped_and_each_item_cut(server: MockServer) -> None:
    errors = [{"field": f"f{i}", "reason": "x" * 500} for i in range(12)]
    server.enqueue(json_reply({"message": "bad", "errors": errors}, status=400))
    shown = _shown(await _error(server))
    assert "[errors: f0: xxx" in shown and "f4: " in shown and "f5: " not in shown
    assert "and 7 more]" in shown
    assert len(shown) < 2000


async def test_a_detail_list_echoing_the_key_is_masked(server: MockServer) -> None:
    body = {"message": "bad", "errors": [{"path": "headers", "message": f"Bearer {CANARY}"}]}
    server.enqueue(json_reply(body, status=400))
    err = await _error(server)
    assert CANARY not in str(err) and CANARY not in repr(err.body)
    assert "[errors: headers: Bearer " in str(err)


CONTEXT_HINT = "Hint: the prompt is longer than the model's context window"


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 4097 tokens. However, your messages resulted "
        "in 5000 tokens. Please reduce the length of the messages.",
        "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens "
        "(1000 in the messages, 2000 in the completion).",
    ],
    ids=["openai", "vllm"],
)
async def test_openais_context_wording_gets_the_context_hint(
    server: MockServer, message: str
) -> None:
    # OpenAI's own wording comes without llama.cpp's type or a context code.
    server.enqueue(error_reply(400, message, type="invalid_request_error"))
    shown = _shown(await _error(server))
    assert CONTEXT_HINT in shown
    assert GENERIC_400 not in shown
    assert ".." not in shown


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (404, "The model `gpt-9` does not exist or you do not have access to it.", None),
        (400, "Invalid model name passed in model=gpt-9", None),
        (400, "Model 'gpt-9' not found", None),
        (400, "unknown", "model_not_found"),
    ],
    ids=["openai", "litellm", "llama-stack", "code"],
)
async def test_an_unknown_model_is_named_as_such(
    server: MockServer, status: int, message: str, code: str | None
) -> None:
    server.enqueue(error_reply(status, message, code=code))
    shown = _shown(await _error(server))
    assert shown.endswith(
        'Hint: the endpoint does not know the model named in the request; check "model" in '
        "request_format against the models the server serves (GET /v1/models)"
    )
    assert ".." not in shown


async def test_a_missing_header_is_named_as_such(server: MockServer) -> None:
    body = {
        "status": "failure",
        "message": "Either x-portkey-config or x-portkey-provider header is required",
    }
    server.enqueue(json_reply(body, status=400))
    shown = _shown(await _error(server))
    assert shown == (
        "HTTP 400 Bad Request from the endpoint: Either x-portkey-config or x-portkey-provider "
        "header is required. Hint: the endpoint wants a request header it did not get (its "
        "message names it); send it with advanced.headers (advanced.secret_headers for a key)"
    )


async def test_a_plain_400_keeps_the_generic_hint(server: MockServer) -> None:
    server.enqueue(error_reply(400, "messages: field required"))
    assert _shown(await _error(server)).endswith(
        "Hint: the endpoint rejected the request body; compare it with the OpenAI "
        "chat-completions spec"
    )


def test_a_message_ending_in_a_full_stop_gets_no_second_one() -> None:
    # The scripted server always sends a request id, which hides this: a real server
    # without one answered "Too many requests.. Hint: ...".
    err = error_from_body(429, {}, b'{"detail": "Too many requests."}')
    assert str(err) == (
        "HTTP 429 Too Many Requests from the endpoint: Too many requests. Hint: rate limit or "
        "quota exceeded; slow down, or check the plan and quota of the key"
    )


@pytest.mark.parametrize(
    ("challenge", "header"),
    [("APIKey", "X-API-Key"), ('APIKey realm="x", header="X-Gateway-Key"', "X-Gateway-Key")],
    ids=["bare", "named"],
)
async def test_a_401_asking_for_a_key_header_names_advanced_auth(
    server: MockServer, challenge: str, header: str
) -> None:
    server.enqueue(
        error_reply(401, "Unauthorized", type="auth_error", headers={"www-authenticate": challenge})
    )
    shown = _shown(await _error(server))
    assert shown.endswith(
        f"Hint: the server wants its key in a header (WWW-Authenticate: {challenge.split()[0]}), "
        'not as "Authorization: Bearer"; set advanced.auth to "header" and advanced.auth_header '
        f'to the header it reads ("{header}"'
        + (", if its docs say so)" if header == "X-API-Key" else ")")
    )
    assert "check the API key" not in shown


async def test_a_401_asking_for_a_key_header_when_one_is_sent(server: MockServer) -> None:
    server.enqueue(error_reply(401, "Unauthorized", headers={"www-authenticate": "APIKey"}))
    shown = _shown(await _error(server, advanced={"auth": "header", "auth_header": "X-Wrong-Key"}))
    assert shown.endswith(
        'Hint: check the API key, and that "X-Wrong-Key" (advanced.auth_header) is the header '
        "the server reads its key from"
    )


async def test_a_401_with_a_bearer_challenge_keeps_the_plain_hint(server: MockServer) -> None:
    server.enqueue(error_reply(401, "Unauthorized", headers={"www-authenticate": "Bearer"}))
    assert _shown(await _error(server)).endswith("Hint: check the API key")
