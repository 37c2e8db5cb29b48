"""The advanced connection options, each against a real server on 127.0.0.1: extra and secret
headers, how the key is sent, a CA bundle for a self-signed TLS server, turning verification
off, a forward proxy (explicit and from the environment), the retry count, and the deadline."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from openai_compat import OpenAICompatibleConnector
from openai_compat._transports._aiohttp import AiohttpTransport
from openai_compat.advanced import AdvancedOptions
from openai_compat.config import SourceConfig
from openai_compat.endpoint import Endpoint
from openai_compat.errors import (
    ConfigurationError,
    ConnectError,
    EndpointError,
    TimeoutError,
)
from openai_compat.resources import spec
from openai_compat.testing import MockServer, chat_chunks, error_reply, sse_reply
from openai_compat.testing._app import MockApp
from tests._servers import KeyHeaderApp, forward_proxy, self_signed_certificate, serve_asgi
from tests.conftest import CANARY, FAST_RETRY, make_config

PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}
GATEWAY_SECRET = "gw-secret-5d1b-DO-NOT-LEAK"


def _advanced(url: str, **advanced: Any) -> dict[str, Any]:
    return make_config(url, advanced=advanced)


async def _answer(config: dict[str, Any], payload: dict[str, Any] = PAYLOAD) -> str:
    async with Endpoint(config, retry=FAST_RETRY) as endpoint:
        completion = await endpoint.complete(payload)
    return str(completion.response["choices"][0]["message"]["content"])


async def _batch_answer(config: dict[str, Any], payload: dict[str, Any] = PAYLOAD) -> str:
    """`_answer` through the batch runs' client (aiohttp), which must trust the same."""
    transport = AiohttpTransport(4)
    try:
        async with Endpoint(config, client=transport, retry=FAST_RETRY) as endpoint:
            completion = await endpoint.complete(payload)
    finally:
        await transport.aclose()
    return str(completion.response["choices"][0]["message"]["content"])


Answer = Callable[[dict[str, Any]], Awaitable[str]]


# -- the specification -------------------------------------------------------------------


def test_spec_puts_the_advanced_group_after_the_six_fields() -> None:
    connection = spec()["connection_specification"]
    properties = connection["properties"]
    assert list(properties)[:6] == [
        "url",
        "api_key",
        "is_stream",
        "config",
        "request_format",
        "response_format",
    ]
    assert connection["required"] == ["url", "api_key", "request_format", "response_format"]
    advanced = properties["advanced"]
    assert advanced["order"] > max(p["order"] for n, p in properties.items() if n != "advanced")
    assert set(advanced["properties"]) == set(AdvancedOptions.model_fields)
    assert advanced["properties"]["secret_headers"]["multiwoven_secret"] is True
    assert advanced["properties"]["proxy"]["multiwoven_secret"] is True
    assert advanced["properties"]["auth"]["enum"] == ["bearer", "api-key", "header", "none"]


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("advanced", "expected"),
    [
        ({"auth": "basic"}, 'advanced.auth: must be "bearer"'),
        ({"auth": "header"}, "advanced.auth_header: is required when advanced.auth is"),
        ({"headers": "{not json"}, "advanced.headers: is not valid JSON"),
        ({"headers": {"Bad Name": "x"}}, "advanced.headers: has an invalid header name 'Bad Name'"),
        ({"headers": {"Content-Type": "text/plain"}}, 'cannot set "Content-Type"'),
        (
            {"headers": {"X-A": "line\r\nbreak"}},
            'header "X-A" has U+000D CARRIAGE RETURN (a line break) at position 5',
        ),
        ({"headers": {"Authorization": "Basic x"}}, 'set advanced.auth to "none"'),
        ({"ca_bundle": "/no/such/ca.pem"}, "advanced.ca_bundle: no file at '/no/such/ca.pem'"),
        (
            {"ca_bundle": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
            "advanced.ca_bundle: could not load the certificates",
        ),
        ({"verify_tls": "maybe"}, "advanced.verify_tls: must be true or false"),
        ({"proxy": "ftp://user:pw-secret@host"}, "advanced.proxy: must be a proxy URL"),
        ({"max_retries": -1}, "advanced.max_retries: must be a whole number from 0 to 20"),
        ({"deadline": "soon"}, 'advanced.deadline: must be a number of seconds such as "30"'),
        ({"deadline": 0}, "advanced.deadline: must be a positive number of seconds, got 0"),
        ({"retries": 3}, "advanced.retries: is not an advanced option; the options are: headers"),
    ],
)
def test_bad_advanced_options_are_explained(advanced: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SourceConfig.parse(make_config("http://127.0.0.1:9/v1/chat/completions", advanced=advanced))
    assert expected in str(caught.value)
    assert "pw-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("advanced", "field", "reason"),
    [
        ({"auth": "header"}, "auth_header", 'is required when advanced.auth is "header"'),
        ({"auth": "header", "auth_header": "X Key"}, "auth_header", "'X Key' is not a header name"),
        ({"secret_headers": {"Authorization": "x"}}, "headers", '"Authorization" is the header'),
        ({"headers": {"X-A": "1"}, "secret_headers": {"x-a": "2"}}, "secret_headers", '"x-a" is'),
        ({"ca_bundle": "/no/such/ca.pem"}, "ca_bundle", "no file at '/no/such/ca.pem'"),
    ],
)
def test_checks_across_options_name_their_field_in_the_error_not_its_text(
    advanced: dict[str, Any], field: str, reason: str
) -> None:
    # Pydantic places a model validator's error at the model; the option is in its context.
    with pytest.raises(ValidationError) as raw:
        AdvancedOptions.model_validate(advanced)
    [error] = raw.value.errors()
    assert error["loc"] == () and error["ctx"]["field"] == field
    assert error["msg"] == error["ctx"]["reason"] and error["msg"].startswith(reason)
    # Next to a problem of another field, each keeps its own field.
    with pytest.raises(ConfigurationError) as caught:
        SourceConfig.parse({"url": "ftp://h/v1", "advanced": advanced})
    assert [p.field for p in caught.value.problems] == ["url", f"advanced.{field}"]
    assert caught.value.problems[1].message == error["msg"]


def test_advanced_accepts_json_text_and_string_values() -> None:
    config = SourceConfig.parse(
        make_config(
            "http://127.0.0.1:9/v1/chat/completions",
            advanced='{"headers": "{\\"X-Team\\": \\"data\\"}", "verify_tls": "true", '
            '"max_retries": "3", "deadline": "600", "auth": "API-KEY"}',
        )
    )
    assert config.advanced.headers == {"X-Team": "data"}
    assert (config.advanced.max_retries, config.advanced.deadline) == (3, 600.0)
    assert config.advanced.auth == "api-key"


def test_secret_values_are_masked_in_the_config_and_known_for_redaction() -> None:
    config = SourceConfig.parse(
        make_config(
            "http://127.0.0.1:9/v1/chat/completions",
            advanced={
                "secret_headers": {"X-Gateway-Key": GATEWAY_SECRET},
                "proxy": "http://user:proxy-pass-91@127.0.0.1:3128",
            },
        )
    )
    shown = repr(config) + str(config) + config.model_dump_json()
    for secret in (CANARY, GATEWAY_SECRET, "proxy-pass-91"):
        assert secret not in shown
        assert secret in config.secrets


# -- headers and how the key is sent ---------------------------------------------------------


async def test_extra_and_secret_headers_are_sent(server: MockServer) -> None:
    config = _advanced(
        server.url, headers={"X-Team": "data"}, secret_headers={"X-Gateway-Key": GATEWAY_SECRET}
    )
    assert await _answer(config) == "You said: Hi"
    sent = server.requests[-1].headers
    assert sent["x-team"] == "data"
    assert sent["x-gateway-key"] == GATEWAY_SECRET
    assert sent["authorization"] == f"Bearer {CANARY}"


async def test_a_secret_header_echoed_in_an_error_is_redacted(server: MockServer) -> None:
    server.enqueue(error_reply(403, f"gateway key {GATEWAY_SECRET} is not allowed here"))
    config = _advanced(server.url, secret_headers={"X-Gateway-Key": GATEWAY_SECRET})
    with pytest.raises(EndpointError) as caught:
        await _answer(config)
    assert str(caught.value).startswith("HTTP 403 Forbidden from the endpoint: gateway key ***")
    assert GATEWAY_SECRET not in str(caught.value)
    assert GATEWAY_SECRET not in (caught.value.provider_message or "")


async def test_header_values_pasted_with_a_line_break_are_sent_stripped(
    server: MockServer,
) -> None:
    config = _advanced(
        server.url,
        headers={"X-Team": " data\r\n"},
        secret_headers={"X-Gateway-Key": f"{GATEWAY_SECRET}\n"},
    )
    config["api_key"] = f"{CANARY}\r\n"
    assert await _answer(config) == "You said: Hi"
    sent = server.requests[-1].headers
    assert sent["x-team"] == "data"
    assert sent["x-gateway-key"] == GATEWAY_SECRET
    assert sent["authorization"] == f"Bearer {CANARY}"


@pytest.mark.parametrize("option", ["headers", "secret_headers"])
@pytest.mark.parametrize(
    ("value", "named"),
    [
        (f"{GATEWAY_SECRET}\u2013x", "U+2013 EN DASH at position 27"),
        (f"{GATEWAY_SECRET}\u00e9", "U+00E9 LATIN SMALL LETTER E WITH ACUTE at position 27"),
        (
            f"{GATEWAY_SECRET}\rX-Injected: 1",
            "U+000D CARRIAGE RETURN (a line break) at position 27",
        ),
        (f"{GATEWAY_SECRET}\ud800", "U+D800 (a lone surrogate) at position 27"),
        (f"{GATEWAY_SECRET}\x7f", "U+007F DELETE at position 27"),
    ],
)
def test_header_values_that_cannot_be_sent_are_refused_without_quoting_them(
    option: str, value: str, named: str
) -> None:
    for headers in ({"X-Gateway-Key": value}, json.dumps({"X-Gateway-Key": value})):
        with pytest.raises(ConfigurationError) as caught:
            SourceConfig.parse(
                _advanced("http://127.0.0.1:9/v1/chat/completions", **{option: headers})
            )
        err = caught.value
        assert err.field == f"advanced.{option}"
        assert err.reason.startswith(f'header "X-Gateway-Key" has {named}; a header value')
        assert GATEWAY_SECRET not in str(err) and "Injected" not in str(err)
        str(err).encode("utf-8")


@pytest.mark.parametrize(
    "name", ["Host", "content-length", "Transfer-Encoding", "Connection", "Content-Type"]
)
def test_a_header_the_transport_owns_cannot_carry_the_key(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SourceConfig.parse(
            _advanced("http://127.0.0.1:9/v1/chat/completions", auth="header", auth_header=name)
        )
    assert caught.value.field == "advanced.auth_header"
    assert caught.value.reason.startswith(f'cannot be "{name}": the connector sets that header')


def test_a_header_name_with_a_trailing_line_break_is_refused() -> None:
    for advanced in ({"headers": {"X-A\n": "1"}}, {"auth": "header", "auth_header": "X-A\nB"}):
        with pytest.raises(ConfigurationError) as caught:
            SourceConfig.parse(_advanced("http://127.0.0.1:9/v1/chat/completions", **advanced))
        assert "\\n" in caught.value.reason  # the name shown escaped, on one line
        assert "\n" not in caught.value.reason


@pytest.mark.parametrize(
    ("bundle", "why"),
    [
        ("/tmp/" + "a" * 400, "cannot read '/tmp/aaaa"),  # longer than a file name may be
        ("/" + "/".join(["d" * 200] * 30), "cannot read '/ddd"),  # longer than a path may be
        ("~no-such-user-3f1c/ca.pem", "cannot read '~no-such-user-3f1c/ca.pem': not a usable path"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\u2014\n-----END CERTIFICATE-----",
            "the PEM text has U+2014 EM DASH at position 33; PEM certificates are plain ASCII",
        ),
    ],
)
def test_a_ca_bundle_that_cannot_be_read_is_a_clear_problem(bundle: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SourceConfig.parse(_advanced("http://127.0.0.1:9/v1/chat/completions", ca_bundle=bundle))
    assert caught.value.field == "advanced.ca_bundle"
    assert caught.value.reason.startswith(why)
    assert len(caught.value.reason) < 300


@pytest.mark.parametrize(
    ("advanced", "expected"),
    [
        ({"deadline": 10**400}, "advanced.deadline: must be at most 86400 seconds (one day)"),
        ({"deadline": "1e400"}, "advanced.deadline: must be at most 86400 seconds (one day)"),
        ({"deadline": 86_401}, "advanced.deadline: must be at most 86400 seconds (one day)"),
        ({"max_retries": "9" * 5000}, "advanced.max_retries: must be a whole number from 0 to 20"),
        ({"max_retries": "\u00b2"}, "advanced.max_retries: must be a whole number from 0 to 20"),
        ({"proxy": "http://proxy.internal:99999"}, "advanced.proxy: has an invalid port (99999)"),
        (
            {"proxy": "http://proxy.internal\r\nX: 1"},
            "advanced.proxy: has U+000D CARRIAGE RETURN (a line break) at position 22",
        ),
        ({"proxy": "http://proxy.internal:3128/\x00"}, "advanced.proxy: has U+0000 NUL"),
        ({"headers": '{"X-A": ' + "9" * 5000 + "}"}, "advanced.headers: holds a number of more"),
        ({"headers": "[" * 100_000}, "advanced.headers: is nested more than 64 levels deep"),
        ({"secret_headers": "[" * 1000 + "]" * 1000}, "advanced.secret_headers: is nested more"),
    ],
)
def test_out_of_range_advanced_options_are_problems(
    advanced: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SourceConfig.parse(_advanced("http://127.0.0.1:9/v1/chat/completions", **advanced))
    assert str(caught.value).startswith(expected)
    assert len(str(caught.value)) < 300


@pytest.fixture(scope="module")
def azure_like() -> Iterator[tuple[str, KeyHeaderApp]]:
    app = KeyHeaderApp("api-key", CANARY)
    with serve_asgi(app) as port:
        yield f"http://127.0.0.1:{port}/openai/deployments/gpt/chat/completions", app


async def test_api_key_header_for_azure_style_servers(azure_like: tuple[str, KeyHeaderApp]) -> None:
    url, app = azure_like
    assert await _answer(_advanced(url, auth="api-key")) == "hello from the key server"
    assert app.seen[-1]["api-key"] == CANARY
    assert "authorization" not in app.seen[-1]


def test_bearer_key_is_refused_by_an_api_key_server(azure_like: tuple[str, KeyHeaderApp]) -> None:
    url, _ = azure_like
    status = OpenAICompatibleConnector(retry=FAST_RETRY).check_connection(make_config(url))
    assert status.connection_status.status == "failed"
    assert status.connection_status.message == (
        "HTTP 401 Unauthorized from the endpoint: Access denied due to invalid subscription key "
        "or wrong API endpoint. Make sure to provide a valid key for an active subscription. "
        "(code 401). Hint: check the API key"
    )


async def test_custom_key_header() -> None:
    app = KeyHeaderApp("X-Api-Key", CANARY)
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        assert await _answer(_advanced(url, auth="header", auth_header="X-Api-Key")) == (
            "hello from the key server"
        )
        assert app.seen[-1]["x-api-key"] == CANARY
        assert "authorization" not in app.seen[-1]


async def test_key_not_sent_when_auth_is_none(server: MockServer) -> None:
    config = _advanced(server.url, auth="none", headers={"Authorization": "Basic dTpw"})
    assert await _answer(config) == "You said: Hi"
    sent = server.requests[-1].headers
    assert sent["authorization"] == "Basic dTpw"
    assert CANARY not in str(sent)


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    with serve_asgi(MockApp(), certfile=cert, keyfile=key) as port:
        yield f"https://127.0.0.1:{port}/v1/chat/completions", cert


def test_self_signed_server_fails_without_a_ca_bundle(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    status = OpenAICompatibleConnector(retry=FAST_RETRY).check_connection(make_config(url))
    message = status.connection_status.message or ""
    assert status.connection_status.status == "failed"
    assert message.startswith(f"TLS handshake with {url.split('/')[2]} failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert message.endswith("If the server uses a self-signed certificate, give its CA bundle")


@pytest.mark.parametrize("as_text", [False, True], ids=["path", "pem-text"])
async def test_ca_bundle_trusts_a_self_signed_server(
    tls_server: tuple[str, Path], as_text: bool
) -> None:
    url, cert = tls_server
    bundle = cert.read_text() if as_text else str(cert)
    config = _advanced(url, ca_bundle=bundle)
    assert await _answer(config) == "You said: Hi"
    status = OpenAICompatibleConnector().check_connection(config)
    assert status.connection_status.status == "succeeded"


async def test_verify_off_connects_and_warns(
    tls_server: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = tls_server
    with caplog.at_level(logging.WARNING, logger="openai_compat.client"):
        assert await _answer(_advanced(url, verify_tls=False)) == "You said: Hi"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert (
        warnings[0]
        .getMessage()
        .startswith(
            f"TLS certificate verification is OFF for {url.split('/')[2]} (advanced.verify_tls is false)"
        )
    )


@pytest.mark.parametrize("answer", [_answer, _batch_answer], ids=["httpx", "batch-aiohttp"])
async def test_ssl_cert_file_environment_variable_is_honoured(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, answer: Answer
) -> None:
    url, cert = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ConnectError) as failed:
        await answer(make_config(url, advanced={"max_retries": 0}))
    assert str(failed.value).startswith(f"TLS handshake with {url.split('/')[2]} failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(failed.value)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert await answer(make_config(url)) == "You said: Hi"


async def test_tls_options_win_over_a_shared_client(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    async with httpx.AsyncClient() as shared:
        connector = OpenAICompatibleConnector(client=shared)
        plain = await connector.acheck_connection(make_config(url))
        trusted = await connector.acheck_connection(_advanced(url, ca_bundle=str(cert)))
    assert plain.connection_status is not None and trusted.connection_status is not None
    assert plain.connection_status.status == "failed"  # the shared client trusts public CAs only
    assert trusted.connection_status.status == "succeeded"


# -- proxies ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with forward_proxy(tmp_path_factory.mktemp("proxy")) as running:
        yield running


async def test_requests_go_through_the_configured_proxy(
    server: MockServer, proxy: tuple[str, Path]
) -> None:
    proxy_url, log = proxy
    assert await _answer(_advanced(server.url, proxy=proxy_url)) == "You said: Hi"
    assert server.requests[-1].headers["via"].startswith("1.1 proxy.py")
    time.sleep(0.2)  # proxy.py writes its access line after the response.
    assert f"POST 127.0.0.1:{server.port}/v1/chat/completions - 200 OK" in log.read_text()


async def test_streamed_answer_through_the_proxy(
    server: MockServer, proxy: tuple[str, Path]
) -> None:
    config = _advanced(server.url, proxy=proxy[0])
    config["is_stream"] = True
    assert await _answer(config) == "You said: Hi"
    assert server.requests[-1].headers["via"].startswith("1.1 proxy.py")


@pytest.mark.parametrize("answer", [_answer, _batch_answer], ids=["httpx", "batch-aiohttp"])
async def test_proxy_environment_variables_are_honoured(
    server: MockServer, proxy: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, answer: Answer
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy[0])
    assert await answer(make_config(server.url)) == "You said: Hi"
    assert server.requests[-1].headers["via"].startswith("1.1 proxy.py")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert await answer(make_config(server.url)) == "You said: Hi"
    assert "via" not in server.requests[-1].headers


async def test_a_proxy_that_is_down_is_named_without_its_password(server: MockServer) -> None:
    config = _advanced(server.url, proxy="http://user:proxy-pass-91@127.0.0.1:9", max_retries=0)
    with pytest.raises(ConnectError) as caught:
        await _answer(config)
    message = str(caught.value)
    assert message == (
        f"connection refused by 127.0.0.1:{server.port}: is the server running there? "
        "(through the proxy http://user:***@127.0.0.1:9: check advanced.proxy)"
    )


async def test_proxy_credentials_are_used_and_never_shown(
    server: MockServer, tmp_path: Path
) -> None:
    with forward_proxy(tmp_path, basic_auth="agent:proxy-pass-91") as (proxy_url, _):
        address = proxy_url.removeprefix("http://")
        good = _advanced(server.url, proxy=f"http://agent:proxy-pass-91@{address}")
        assert await _answer(good) == "You said: Hi"
        assert server.requests[-1].headers["via"].startswith("1.1 proxy.py")
        bad = _advanced(server.url, proxy=f"http://agent:wrong-pass-77@{address}")
        with pytest.raises(EndpointError) as caught:
            await _answer(bad)
    assert caught.value.status == 407
    assert str(caught.value).startswith("HTTP 407 Proxy Authentication Required from the endpoint")
    assert str(caught.value).endswith(
        "Hint: a proxy on the way wants credentials: give them in advanced.proxy "
        "(http://user:password@host:port)"
    )
    assert "wrong-pass-77" not in str(caught.value)


# -- retries and the deadline -----------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 1, 3])
async def test_retry_count(server: MockServer, retries: int) -> None:
    server.enqueue(*[error_reply(500, "boom")] * 5)
    with pytest.raises(EndpointError) as caught:
        await _answer(_advanced(server.url, max_retries=retries))
    assert caught.value.attempts == retries + 1
    assert len(server.requests) == retries + 1


async def test_deadline_stops_a_slow_stream(server: MockServer) -> None:
    chunks = chat_chunks("one two three four five six seven eight nine ten")
    server.enqueue(sse_reply(chunks, piece_delay_s=0.3))
    config = _advanced(server.url, deadline=1)
    config["is_stream"] = True
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        async with (
            Endpoint(config, retry=FAST_RETRY) as endpoint,
            endpoint.request(PAYLOAD) as exchange,
        ):
            async for chunk in exchange:
                records.append(chunk)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.0
    assert 2 <= len(records) < len(chunks)  # what came before the deadline was kept
    assert str(caught.value) == (
        f"the request to 127.0.0.1:{server.port} did not finish within its deadline of 1 s "
        f"during the stream, after {len(records)} chunk(s); raise advanced.deadline for long "
        "generations (config.timeout, 5 s, bounds each wait for data)"
    )


def test_deadline_in_a_streamed_read_is_an_error_after_the_records(server: MockServer) -> None:
    server.enqueue(sse_reply(chat_chunks("a b c d e f g h"), piece_delay_s=0.25))
    config = _advanced(server.url, deadline=0.8)
    config["is_stream"] = True
    messages = list(OpenAICompatibleConnector(retry=FAST_RETRY).run_model(config, PAYLOAD))
    assert [m.type for m in messages[:-1]] == ["record"] * (len(messages) - 1)
    assert messages[-1].type == "log"
    assert "did not finish within its deadline of 0.8 s during the stream" in (
        messages[-1].log.message
    )


async def test_deadline_covers_a_slow_non_streamed_answer_and_retries(server: MockServer) -> None:
    url = server.url + "?scenario=slow&delay_s=3"
    config = _advanced(url, deadline=0.5)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        await _answer(config)
    assert time.monotonic() - started < 1.5
    assert caught.value.attempts == 1
    assert str(caught.value) == (
        f"the request to 127.0.0.1:{server.port} did not finish within its deadline of 0.5 s "
        "after 1 attempt(s); raise advanced.deadline for long generations "
        "(config.timeout, 5 s, bounds each wait for data)"
    )


async def test_deadline_longer_than_the_answer_changes_nothing(server: MockServer) -> None:
    server.enqueue(sse_reply(chat_chunks("quick answer"), piece_delay_s=0.01))
    config = _advanced(server.url, deadline=30)
    config["is_stream"] = True
    assert await _answer(config) == "quick answer"
