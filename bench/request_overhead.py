"""Per-request client overhead: our connector vs raw httpx vs the openai SDK (AsyncOpenAI).

2,000 non-streamed chat-completion requests at concurrency 10 to the bundled scripted server
(``python -m openai_compat mock-server``), which runs in a separate process, so the CPU time
measured here (``time.process_time`` of this process) is the client's alone: building and
sending the request, reading and parsing the JSON answer, and whatever each library adds.
Wall time is printed too, but it also contains the server's time on the shared machine.

- ours (connector.arun_model): ``OpenAICompatibleConnector(client=shared).arun_model``, the
  path of ``openai-compat read`` and of batch runs: one ``record`` message per answer;
- ours (Endpoint.complete): one ``Endpoint`` on the shared client, ``await complete(payload)``;
- raw httpx: one shared ``httpx.AsyncClient``, ``post(url, json=payload)`` then ``.json()``;
- openai SDK: ``AsyncOpenAI(...).chat.completions.create(...)`` with the SDK's own client.

Each contender is warmed up first; the timed runs are interleaved and repeated, and the
median run is reported.

Run: ``make bench`` or ``.venv/bin/python bench/request_overhead.py [--requests N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from openai import AsyncOpenAI

from _report import machine, median, say, table, verdict, versions
from openai_compat import Endpoint, OpenAICompatibleConnector
from openai_compat.config import SourceConfig

API_KEY = "sk-bench-not-a-real-key"
QUESTION = "What do you know about APIs?"
PAYLOAD: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": QUESTION}],
}
ANSWER = f"You said: {QUESTION}"


# -- the server, in its own process -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def mock_server(timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``python -m openai_compat mock-server`` in a child process; yield its base URL."""
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openai_compat", "mock-server", "--port", str(port)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_ready(proc, f"{base_url}/models", timeout_s, log)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float, log: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise SystemExit(f"the mock server exited with {proc.returncode}:\n{output}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"the mock server did not answer {url} within {timeout_s:.0f} s")


# -- the contenders: each is "send one request, check the answer" -----------------------------


def _check(content: Any) -> None:
    if content != ANSWER:
        raise RuntimeError(f"unexpected answer: {content!r}")


def ours_connector(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[None]]:
    connector = OpenAICompatibleConnector(client=client)
    config = SourceConfig.parse({"url": url, "api_key": API_KEY})

    async def one() -> None:
        async for message in connector.arun_model(config, PAYLOAD):
            if message.record is None:
                raise RuntimeError(message.to_json())
            _check(message.record.data["choices"][0]["message"]["content"])

    return one


def ours_endpoint(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[None]]:
    endpoint = Endpoint({"url": url, "api_key": API_KEY}, client=client)

    async def one() -> None:
        answer = await endpoint.complete(PAYLOAD)
        _check(answer.response["choices"][0]["message"]["content"])

    return one


def raw_httpx(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[None]]:
    headers = {"Authorization": f"Bearer {API_KEY}"}

    async def one() -> None:
        response = await client.post(url, json=PAYLOAD, headers=headers)
        response.raise_for_status()
        _check(response.json()["choices"][0]["message"]["content"])

    return one


def openai_sdk(client: AsyncOpenAI) -> Callable[[], Awaitable[None]]:
    async def one() -> None:
        completion = await client.chat.completions.create(
            model=PAYLOAD["model"], messages=PAYLOAD["messages"]
        )
        _check(completion.choices[0].message.content)

    return one


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    one: Callable[[], Awaitable[None]]
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)


async def _drive(one: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> None:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(
    contenders: list[Contender], requests: int, concurrency: int, repeat: int, warmup: int
) -> None:
    for c in contenders:
        await _drive(c.one, warmup, concurrency)
    for _ in range(repeat):
        for c in contenders:  # interleaved, so drifts in machine load hit all alike
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()
            await _drive(c.one, requests, concurrency)
            c.cpu_s.append(time.process_time() - cpu)
            c.wall_s.append(time.perf_counter() - wall)


OURS = "ours (connector.arun_model)"
OURS_ENDPOINT = "ours (Endpoint.complete)"
RAW = "raw httpx + json"
SDK = "openai SDK (AsyncOpenAI)"


def _paired_ratio(c: Contender, base: Contender) -> float:
    """Median over rounds of this contender's CPU / the base's CPU in the same round.

    Rounds are interleaved, so pairing them cancels most of the drift in machine load.
    """
    return median([a / b for a, b in zip(c.cpu_s, base.cpu_s, strict=True)])


def report(contenders: list[Contender], requests: int, concurrency: int, repeat: int) -> None:
    by = {c.name: c for c in contenders}
    raw = by[RAW]
    rows = []
    for c in contenders:
        rows.append(
            [
                c.name,
                f"{median(c.cpu_s) / requests * 1e6:.0f}",
                f"{min(c.cpu_s) / requests * 1e6:.0f}",
                f"{_paired_ratio(c, raw):.2f}x",
                f"{median(c.wall_s):.2f}",
                f"{requests / median(c.wall_s):,.0f}",
            ]
        )
    header = [
        "client",
        "CPU us/req median",
        "CPU us/req best",
        "CPU vs raw httpx",
        "wall s median",
        "req/s median",
    ]
    say(
        f"{requests:,} non-streamed requests at concurrency {concurrency}, {repeat} interleaved "
        "rounds; mock server in a separate process; CPU = this process only"
    )
    say(f"{versions('httpx', 'httpx2', 'openai', 'pydantic')}; {machine()}")
    say()
    say(table(header, rows))
    say()
    say("Ratios (CPU per request, median over rounds of the per-round ratio):")
    say(verdict("ours vs raw httpx", _paired_ratio(by[OURS], raw), 1.05, higher_is_better=False))
    say(verdict("openai SDK vs ours (SDK CPU / ours)", 1 / _paired_ratio(by[OURS], by[SDK]), 1.0))
    say(f"  [info] Endpoint.complete vs raw httpx: {_paired_ratio(by[OURS_ENDPOINT], raw):.2f}x")


async def main(requests: int, concurrency: int, repeat: int, warmup: int) -> None:
    with mock_server() as base_url:
        url = f"{base_url}/chat/completions"
        async with (
            httpx.AsyncClient() as raw_client,
            httpx.AsyncClient() as ours_client,
            httpx.AsyncClient() as endpoint_client,
            AsyncOpenAI(api_key=API_KEY, base_url=base_url) as sdk_client,
        ):
            contenders = [
                Contender(OURS, ours_connector(ours_client, url)),
                Contender(OURS_ENDPOINT, ours_endpoint(endpoint_client, url)),
                Contender(RAW, raw_httpx(raw_client, url)),
                Contender(SDK, openai_sdk(sdk_client)),
            ]
            await measure(contenders, requests, concurrency, repeat, warmup)
    report(contenders, requests, concurrency, repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2_000, help="requests per timed run")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per client")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests first")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.repeat, args.warmup))
