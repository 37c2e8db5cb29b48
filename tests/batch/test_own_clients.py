"""Configurations with TLS or proxy options get an HTTP client of their own (the shared pool
cannot carry them): a batch run still governs every attempt through it, and a caller's
client factory (the application's address guard) still makes it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from openai_compat.app.egress import AddressPolicy, guarded_client_factory
from openai_compat.batch import run_batch
from openai_compat.testing import MockServer, json_reply
from openai_compat.testing._replies import error_body
from tests.conftest import CANARY, make_config

FORMAT = {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}


def _config(url: str, **advanced: Any) -> dict[str, Any]:
    return make_config(url, request_format=json.dumps(FORMAT), advanced=advanced)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket on 127.0.0.1 that notes whether anything connected to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def _connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return False
    return True


async def test_a_retry_after_pause_holds_every_worker_of_a_tls_configuration(
    server: MockServer,
) -> None:
    # verify_tls off (plain http here) gives the run a client of its own: the pause the
    # first answer asks for must still hold the run's other workers.
    body = error_body("Server overloaded", status=503)
    server.enqueue(json_reply(body, status=503, headers={"retry-after": "2"}))
    rows = [{"text": f"row {i}"} for i in range(20)]
    config = _config(server.url, verify_tls=False)
    async with run_batch(config, rows, concurrency=4, rate="60000/minute") as run:
        results = [r async for r in run]
    assert all(r.ok for r in results)
    times = [request.at for request in server.requests]
    refused_at = times[0]
    late = [at for at in times[1:] if at > refused_at + 0.05]  # after its answer came
    assert late and all(at - refused_at >= 2.0 for at in late)


async def test_the_guards_factory_judges_a_runs_proxy_before_connecting(
    server: MockServer, listener: socket.socket
) -> None:
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    factory = guarded_client_factory(AddressPolicy(refuse_private=True))
    rows = [{"text": f"row {i}"} for i in range(3)]
    config = _config(server.url, proxy=proxy, max_retries=0)
    async with run_batch(config, rows, rate=None, client_factory=factory) as run:
        results = [r async for r in run]
    assert len(results) == 3 and not any(r.ok for r in results)  # failed, none dropped
    for result in results:
        assert "refuse-private" in result.error["message"], result.error
        assert CANARY not in json.dumps(result.error)
    assert not _connected(listener)  # the proxy was never connected to
    assert server.requests == []


async def test_without_a_factory_the_proxy_is_used(
    server: MockServer, listener: socket.socket
) -> None:
    # The same run with the default client: it goes to the proxy (which answers nothing),
    # so the test above would see a connection had the guard not been asked.
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = _config(server.url, proxy=proxy, max_retries=0, deadline=1)
    async with run_batch(config, [{"text": "row"}], rate=None) as run:
        results = [r async for r in run]
    assert not results[0].ok
    assert _connected(listener)
    assert server.requests == []
