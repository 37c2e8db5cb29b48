"""The address policy: every spelling of a refused address is refused, before any connect.

Most tests call ``AddressPolicy.problem`` or ``check_url`` with a resolver function, so no
DNS is asked and nothing is connected to. The guarded-client test records every socket the
process creates or connects (through an audit hook, which also refuses any connection that
does not go to loopback) and checks that a refused address never got one.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from openai_compat import ConnectError, Endpoint, RetryPolicy
from openai_compat._transports import AsyncTransport, aiohttp_transport, hooked_client_factory
from openai_compat.app import AddressPolicy, EgressRefused
from openai_compat.testing import MockServer


def guarded_client(policy: AddressPolicy, limits: httpx.Limits) -> httpx.AsyncClient:
    """The application's httpx client (its ``client_factory``), held to ``policy``."""
    factory = hooked_client_factory(policy.allowed_addresses)
    return factory(verify=True, proxy=None, limits=limits)


def guarded_aiohttp(concurrency: int, policy: AddressPolicy) -> AsyncTransport:
    """The application's aiohttp transport (execute_model, checks, runs), held to ``policy``."""
    return aiohttp_transport(concurrency, policy.allowed_addresses)


# Every way of writing the metadata address 169.254.169.254 (and the other metadata
# services) that a connection would reach it by.
METADATA_SPELLINGS = [
    "169.254.169.254",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:a9fe:a9fe",
    "::ffff:0:a9fe:a9fe",  # IPv4-translated (SIIT)
    "::169.254.169.254",  # IPv4-compatible (deprecated)
    "::a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
    "64:ff9b::169.254.169.254",
    "64:ff9b:1::a9fe:a9fe",  # NAT64 local-use prefix, /96 layout
    "64:ff9b:1:0:a9:fea9:fe00:0",  # ... /64 layout
    "64:ff9b:1:a9:fe:a9fe::",  # ... /56 layout
    "64:ff9b:1:a9fe:a9:fe00::",  # ... /48 layout
    "2002:a9fe:a9fe::",  # 6to4
    "2002:a9fe:a9fe:1::5",
    "2001:0:c000:201:0:ffff:5601:5601",  # Teredo, client 169.254.169.254 (bits inverted)
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud metadata
    "::ffff:100.100.100.200",
    "64:ff9b::6464:64c8",
]
LINK_LOCAL = ["169.254.1.1", "fe80::1", "fe80::1%eth0", "::ffff:169.254.1.1", "64:ff9b::a9fe:101"]

# Not public, so refused with refuse_private (and allowed without it).
NON_PUBLIC = [
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "100.127.255.254",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "ff02::1",
    "ff05::2",
    "0.0.0.0",  # unspecified
    "::",
    "127.0.0.1",  # loopback
    "127.8.9.10",
    "::1",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",  # site-local (deprecated)
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "2001:db8::1",
    "198.18.0.1",  # benchmarking
    # The same kinds, embedded in IPv6.
    "::ffff:127.0.0.1",
    "::ffff:0:a00:1",
    "::7f00:1",
    "64:ff9b::6440:1",
    "64:ff9b::e000:1",
    "64:ff9b:1::a00:1",
    "2002:7f00:1::",
    "2002:6440:1::",
    "2001:0:c000:201:0:ffff:f5ff:fffe",  # Teredo, client 10.0.0.1
]

# Public addresses, for the policy's verdict only: problem() reads the address and
# connects nowhere, and no test here sends anything to them.
PUBLIC = [
    "8.8.8.8",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "64:ff9b:1::808:808",
    "2002:808:808::1",
    "2001:0:c000:201:0:ffff:f7f7:f7f7",  # Teredo, client 8.8.8.8
    "2001:4860:4860::8888",
]


@pytest.mark.parametrize("address", METADATA_SPELLINGS)
def test_every_spelling_of_a_metadata_address_is_refused(address: str) -> None:
    reason = AddressPolicy().problem(address)
    assert reason is not None
    assert "link-local or cloud metadata" in reason
    assert "--allow-link-local" in reason
    assert AddressPolicy(allow_link_local=True).problem(address) is None


def test_the_reason_names_the_address_an_embedded_form_leads_to() -> None:
    reason = AddressPolicy().problem("64:ff9b::a9fe:a9fe")
    assert reason is not None
    assert reason.startswith("64:ff9b::a9fe:a9fe (which leads to 169.254.169.254) is ")


@pytest.mark.parametrize("address", LINK_LOCAL)
def test_link_local_addresses_are_refused_by_default(address: str) -> None:
    assert "link-local" in (AddressPolicy().problem(address) or "")
    assert AddressPolicy(allow_link_local=True).problem(address) is None


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses_are_refused_with_refuse_private(address: str) -> None:
    reason = AddressPolicy(refuse_private=True).problem(address)
    assert reason is not None
    assert "--refuse-private" in reason
    assert AddressPolicy().problem(address) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed_in_every_spelling(address: str) -> None:
    assert AddressPolicy(refuse_private=True).problem(address) is None


async def test_check_url_refuses_every_spelling_resolved_or_literal() -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [host.removesuffix(".test").replace("-", ":")]

    policy = AddressPolicy(resolver=resolver)
    for address in METADATA_SPELLINGS:
        if "%" in address:
            continue
        literal = f"[{address}]" if ":" in address else address
        with pytest.raises(EgressRefused, match="link-local or cloud metadata"):
            await policy.check_url(f"https://{literal}/v1/chat/completions")
        if ":" in address:
            name = address.replace(":", "-") + ".test"
            with pytest.raises(EgressRefused, match=rf"{name} \(resolves to "):
                await policy.check_url(f"http://{name}/v1/chat/completions")
    # Literal addresses are judged as written; only names went to the resolver.
    assert asked and all(host.endswith(".test") for host in asked)
    strict = AddressPolicy(resolver=resolver, refuse_private=True)
    for address in ("100.64.0.1", "224.0.0.1", "64:ff9b::6440:1"):
        literal = f"[{address}]" if ":" in address else address
        with pytest.raises(EgressRefused, match="--refuse-private"):
            await strict.check_url(f"http://{literal}:8080/")


class _SocketLog:
    """What the process did with sockets while recording: (event, address) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.active = False


_LOG = _SocketLog()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _LOG.active:
        return
    if event == "socket.__new__" and args[1] in (socket.AF_INET, socket.AF_INET6):
        _LOG.events.append((event, None))
    elif event == "socket.connect":
        address = args[1]
        _LOG.events.append((event, address))
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1"):
            # A safety net, should the policy ever let one through: nothing but loopback.
            raise ConnectionRefusedError(f"test audit hook: no connection to {host}")


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one idles unless recording


@contextmanager
def recording_sockets() -> Iterator[_SocketLog]:
    _LOG.events.clear()
    _LOG.active = True
    try:
        yield _LOG
    finally:
        _LOG.active = False


@pytest.mark.loopback_only
async def test_the_guarded_client_refuses_before_opening_any_socket(server: MockServer) -> None:
    refused = {f"target{n}.test": a for n, a in enumerate(METADATA_SPELLINGS) if "%" not in a}
    strict_refused = {f"strict{n}.test": a for n, a in enumerate(NON_PUBLIC) if a != "127.0.0.1"}

    async def resolver(host: str, port: int) -> list[str]:
        return {**refused, **strict_refused, "model.test": "127.0.0.1"}[host].split()

    limits = httpx.Limits()
    async with guarded_client(AddressPolicy(resolver=resolver), limits) as client:
        for host, address in refused.items():
            with recording_sockets() as log:
                with pytest.raises(httpx.ConnectError, match=r"is refused: .*link-local"):
                    await client.get(f"http://{host}:{server.port}/v1/models")
                literal = f"[{address}]" if ":" in address else address
                with pytest.raises(httpx.ConnectError, match="is refused"):
                    await client.get(f"http://{literal}:{server.port}/v1/models")
            assert log.events == [], host
    strict = AddressPolicy(resolver=resolver, refuse_private=True)
    async with guarded_client(strict, limits) as client:
        for host in strict_refused:
            with recording_sockets() as log, pytest.raises(httpx.ConnectError, match="private"):
                await client.get(f"http://{host}:{server.port}/v1/models")
            assert log.events == [], host
    # The recorder sees this client's connections: an allowed one is recorded.
    async with guarded_client(AddressPolicy(resolver=resolver), limits) as client:
        with recording_sockets() as log:
            response = await client.get(f"http://model.test:{server.port}/v1/models")
    assert response.status_code == 200
    assert ("socket.connect", ("127.0.0.1", server.port)) in log.events
    assert server.requests and all(r.path == "/v1/models" for r in server.requests)


async def test_a_name_the_guard_cannot_resolve_is_reported_as_a_dns_failure() -> None:
    """The guard keeps the resolver's error as the cause: the client names it by its type."""

    async def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    config = {"url": "http://model.test:9/v1/chat/completions", "api_key": "k" * 12}
    policy = AddressPolicy(resolver=resolver)
    async with guarded_client(policy, httpx.Limits()) as client:
        with recording_sockets() as log:
            async with Endpoint(config, client=client, retry=RetryPolicy(max_retries=0)) as ep:
                with pytest.raises(
                    ConnectError, match=r"cannot resolve the host name of model\.test:9"
                ):
                    await ep.complete({"model": "m", "messages": []})
    assert log.events == []


# -- the application's aiohttp transport (execute_model, checks, runs) ----------------------


def _config(host: str, port: int) -> dict[str, Any]:
    return {"url": f"http://{host}:{port}/v1/chat/completions", "api_key": "k" * 12}


async def _complete(transport: AsyncTransport, host: str, port: int) -> Any:
    endpoint = Endpoint(_config(host, port), client=transport, retry=RetryPolicy(max_retries=0))
    async with endpoint as ep:
        return await ep.complete({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.loopback_only
async def test_the_guarded_aiohttp_transport_refuses_before_opening_any_socket(
    server: MockServer,
) -> None:
    refused = {f"target{n}.test": a for n, a in enumerate(METADATA_SPELLINGS) if "%" not in a}
    strict_refused = {f"strict{n}.test": a for n, a in enumerate(NON_PUBLIC) if a != "127.0.0.1"}

    async def resolver(host: str, port: int) -> list[str]:
        return {**refused, **strict_refused, "model.test": "127.0.0.1"}[host].split()

    transport = guarded_aiohttp(4, AddressPolicy(resolver=resolver))
    try:
        for host, address in refused.items():
            literal = f"[{address}]" if ":" in address else address
            with recording_sockets() as log:
                with pytest.raises(ConnectError, match=r"is refused: .*link-local"):
                    await _complete(transport, host, server.port)
                with pytest.raises(ConnectError, match=r"is refused: .*link-local"):
                    await _complete(transport, literal, server.port)
            assert log.events == [], host
        # The one allowed name connects, to the address the policy judged.
        with recording_sockets() as log:
            completion = await _complete(transport, "model.test", server.port)
        assert completion.response["choices"][0]["message"]["content"] == "You said: hi"
        assert ("socket.connect", ("127.0.0.1", server.port)) in log.events
    finally:
        await transport.aclose()
    strict = guarded_aiohttp(4, AddressPolicy(resolver=resolver, refuse_private=True))
    try:
        for host in strict_refused:
            with recording_sockets() as log, pytest.raises(ConnectError, match="private"):
                await _complete(strict, host, server.port)
            assert log.events == [], host
        with recording_sockets() as log, pytest.raises(ConnectError, match="private"):
            await _complete(strict, "127.0.0.1", server.port)
        assert log.events == []
    finally:
        await strict.aclose()


async def test_the_aiohttp_transport_reports_an_unresolvable_name_as_a_dns_failure() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    transport = guarded_aiohttp(4, AddressPolicy(resolver=resolver))
    try:
        dns = pytest.raises(ConnectError, match=r"cannot resolve the host name of model\.test")
        with recording_sockets() as log, dns:
            await _complete(transport, "model.test", 9)
        assert log.events == []
    finally:
        await transport.aclose()


async def test_the_aiohttp_transport_ignores_the_environments_proxy(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the guarded httpx client does: a proxy would be a way around the policy."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("NO_PROXY", "")
    transport = guarded_aiohttp(4, AddressPolicy())
    try:
        completion = await _complete(transport, "127.0.0.1", server.port)
    finally:
        await transport.aclose()
    assert completion.response["choices"][0]["message"]["content"] == "You said: hi"
    assert [r.path for r in server.requests] == ["/v1/chat/completions"]
