"""The transports' connect hook: asked before each connection, on both transports.

A hook that refuses stops the request before any connection; the addresses a hook returns
are where the connection goes (a ``.test`` name that no resolver knows reaches the scripted
server on 127.0.0.1 because the hook says so); a hook's failed lookup is a DNS failure.
The httpx client built around the hook (httpcore's pool, public APIs only) keeps every
failure's kind, TLS options and a proxy, whose connection is the one the hook is asked about.
Everything here connects to 127.0.0.1 only.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_compat import ConnectError, Endpoint, EndpointError, RetryPolicy
from openai_compat._transports import (
    AsyncTransport,
    ConnectHook,
    ConnectRefused,
    FailureKind,
    HttpxTransport,
    TransportFailure,
    aiohttp_transport,
    default_limits,
    hooked_client_factory,
)
from openai_compat.testing import MockServer
from openai_compat.testing._app import MockApp
from tests._servers import forward_proxy, self_signed_certificate, serve_asgi
from tests.conftest import make_config

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
STREAMED = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class ScriptedHook:
    """Answers from a table (addresses, or an exception to raise) and records each question."""

    def __init__(self, answers: dict[str, list[str] | BaseException]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int, /) -> list[str]:
        self.asked.append((host, port))
        answer = self.answers[host]
        if isinstance(answer, BaseException):
            raise answer
        return list(answer)


def _httpx(hook: ConnectHook) -> AsyncTransport:
    client = hooked_client_factory(hook)(verify=True, proxy=None, limits=default_limits())
    return HttpxTransport(client)


def _aiohttp(hook: ConnectHook) -> AsyncTransport:
    return aiohttp_transport(4, hook)


Make = Callable[[ConnectHook], AsyncTransport]


@pytest.fixture(params=[_httpx, _aiohttp], ids=["httpx", "aiohttp"])
def make(request: pytest.FixtureRequest) -> Make:
    maker: Make = request.param
    return maker


async def _post(
    transport: AsyncTransport, url: str, body: bytes = BODY, timeout: float = 5
) -> tuple[int, bytes]:
    try:
        response = await transport.send(url, body, HEADERS, timeout)
        try:
            return response.status_code, await response.aread()
        finally:
            await response.aclose()
    finally:
        await transport.aclose()


def _closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


# -- both transports --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["model.test", "127.0.0.1"], ids=["name", "ip-literal"])
async def test_a_refusing_hook_stops_the_request_before_any_connection(
    server: MockServer, make: Make, host: str
) -> None:
    refusal = ConnectRefused(f"the endpoint host {host} is refused: a test says no")
    hook = ScriptedHook({host: refusal})
    with pytest.raises(TransportFailure) as caught:
        await _post(make(hook), f"http://{host}:{server.port}/v1/chat/completions")
    assert caught.value.kind is FailureKind.CONNECT
    assert caught.value.detail == str(refusal)
    assert hook.asked == [(host, server.port)]
    assert server.requests == []


async def test_the_connection_goes_to_the_address_the_hook_returns(
    server: MockServer, make: Make
) -> None:
    # No resolver knows a .test name: only the hook's answer can lead to the server.
    hook = ScriptedHook({"model.test": ["127.0.0.1"]})
    status, body = await _post(make(hook), f"http://model.test:{server.port}/v1/chat/completions")
    assert status == 200 and b"You said: hi" in body
    assert hook.asked == [("model.test", server.port)]
    [request] = server.requests
    assert request.headers["host"] == f"model.test:{server.port}"


async def test_an_allowed_ip_literal_is_connected_to(server: MockServer, make: Make) -> None:
    hook = ScriptedHook({"127.0.0.1": ["127.0.0.1"]})
    status, body = await _post(make(hook), server.url)
    assert status == 200 and b"You said: hi" in body
    assert hook.asked == [("127.0.0.1", server.port)]


async def test_a_failed_lookup_in_the_hook_is_a_dns_failure(server: MockServer, make: Make) -> None:
    failed = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    hook = ScriptedHook({"model.test": failed})
    with pytest.raises(TransportFailure) as caught:
        await _post(make(hook), f"http://model.test:{server.port}/v1/chat/completions")
    assert caught.value.kind is FailureKind.NAME_RESOLUTION
    assert server.requests == []


async def test_a_dns_failure_reaches_the_caller_as_one(make: Make) -> None:
    failed = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    transport = make(ScriptedHook({"model.test": failed}))
    config = make_config("http://model.test:9/v1/chat/completions")
    try:
        async with Endpoint(config, client=transport, retry=RetryPolicy(max_retries=0)) as ep:
            with pytest.raises(ConnectError, match=r"cannot resolve the host name of model\.test"):
                await ep.complete({"model": "m", "messages": []})
    finally:
        await transport.aclose()


async def test_a_hook_means_the_environments_proxy_is_not_used(
    server: MockServer, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would be a way around the hook: the connection goes where the hook says."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("NO_PROXY", "")
    hook = ScriptedHook({"model.test": ["127.0.0.1"]})
    status, _ = await _post(make(hook), f"http://model.test:{server.port}/v1/chat/completions")
    assert status == 200
    assert hook.asked == [("model.test", server.port)]
    assert "via" not in server.requests[-1].headers


async def test_failures_keep_their_kind_behind_a_hook(server: MockServer, make: Make) -> None:
    allow = ScriptedHook({"127.0.0.1": ["127.0.0.1"]})
    with pytest.raises(TransportFailure) as refused:
        await _post(make(allow), f"http://127.0.0.1:{_closed_port()}/v1/chat/completions")
    assert refused.value.kind is FailureKind.REFUSED
    with pytest.raises(TransportFailure) as slow:
        await _post(make(allow), server.url + "?scenario=slow&delay_s=2", timeout=0.3)
    assert slow.value.kind is FailureKind.READ_TIMEOUT
    with pytest.raises(TransportFailure) as cut:
        await _post(make(allow), server.url + "?scenario=disconnect", STREAMED)
    assert cut.value.kind is FailureKind.PEER_CLOSED


async def test_a_streamed_body_arrives_in_pieces_behind_a_hook(
    server: MockServer, make: Make
) -> None:
    transport = make(ScriptedHook({"127.0.0.1": ["127.0.0.1"]}))
    try:
        response = await transport.send(server.url + "?scenario=split", STREAMED, HEADERS, 5)
        pieces = [piece async for piece in response.aiter_bytes()]
        await response.aclose()
    finally:
        await transport.aclose()
    assert response.status_code == 200
    assert response.headers.get("CONTENT-TYPE", "").startswith("text/event-stream")
    assert len(pieces) > 1 and b"".join(pieces).rstrip().endswith(b"data: [DONE]")


# -- the httpx client built around a hook: TLS and proxy options ------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    with serve_asgi(MockApp(), certfile=cert, keyfile=key) as port:
        yield port, cert


async def _complete(config: dict[str, Any], hook: ConnectHook) -> str:
    factory = hooked_client_factory(hook)
    async with Endpoint(config, client_factory=factory) as endpoint:
        done = await endpoint.complete({"model": "m", "messages": []})
    return str(done.response["choices"][0]["message"]["content"])


async def test_the_hooked_client_verifies_tls_with_the_configurations_options(
    tls_server: tuple[int, Path],
) -> None:
    port, cert = tls_server
    hook = ScriptedHook({"localhost": ["127.0.0.1"]})
    url = f"https://localhost:{port}/v1/chat/completions"
    trusted = make_config(url, advanced={"ca_bundle": str(cert), "max_retries": 0})
    assert (await _complete(trusted, hook)).startswith("You said")
    # The certificate names localhost: the hook's address is connected to, the name verified.
    assert hook.asked == [("localhost", port)]
    with pytest.raises(ConnectError, match=r"^TLS handshake with localhost:\d+ failed: "):
        await _complete(make_config(url, advanced={"max_retries": 0}), hook)


async def test_with_a_proxy_the_hook_is_asked_about_the_proxy(
    server: MockServer, tmp_path: Path
) -> None:
    with forward_proxy(tmp_path, basic_auth="agent:proxy-pass-91") as (proxy_url, _):
        address = proxy_url.removeprefix("http://")
        proxy_port = int(address.rsplit(":", 1)[1])
        hook = ScriptedHook({"proxy.test": ["127.0.0.1"]})
        # The endpoint's host is in no table: only the proxy's connection asks the hook.
        url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
        good = make_config(
            url, advanced={"proxy": f"http://agent:proxy-pass-91@proxy.test:{proxy_port}"}
        )
        assert (await _complete(good, hook)).startswith("You said")
        assert set(hook.asked) == {("proxy.test", proxy_port)}
        assert server.requests[-1].headers["via"].startswith("1.1 proxy.py")
        # The proxy's credentials go to it (a wrong password gets its 407).
        bad = make_config(
            url,
            advanced={"proxy": f"http://agent:wrong-77@proxy.test:{proxy_port}", "max_retries": 0},
        )
        with pytest.raises(EndpointError) as caught:
            await _complete(bad, hook)
        assert caught.value.status == 407
    server.clear()
    refusing = ScriptedHook({"proxy.test": ConnectRefused("the proxy is refused")})
    config = make_config(url, advanced={"proxy": "http://proxy.test:3128", "max_retries": 0})
    with pytest.raises(ConnectError, match="the proxy is refused"):
        await _complete(config, refusing)
    assert refusing.asked == [("proxy.test", 3128)]
    assert server.requests == []
