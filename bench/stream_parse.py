"""Streaming read throughput: our read pipeline vs the openai SDK vs httpx-sse + json.loads.

One recorded answer of 20,000 ``chat.completion.chunk`` events (~3.5 MB of SSE, framed like
OpenAI's servers frame it, ending with ``data: [DONE]``) is cut into network-sized pieces
(1-16 KB) once, and the identical pieces are replayed to every contender through an in-process
HTTP transport, so the figures measure the client-side work (HTTP response handling, SSE
decoding, JSON parsing, building the objects each one hands to its caller) without network
noise:

- ours: ``OpenAICompatibleConnector.arun_model`` (Endpoint.request, Exchange iteration,
  ``record_message`` per chunk) — exactly what ``openai-compat read`` runs; the "+ to_json"
  row also serialises every message as the CLI prints it;
- the openai SDK: ``AsyncOpenAI(...).chat.completions.create(stream=True)``, iterating its
  ``ChatCompletionChunk`` objects (on its own HTTP client type, httpx2, with the same replay);
- httpx-sse + json.loads: ``aconnect_sse(...).aiter_sse()`` and ``json.loads`` per event, the
  bare minimum a correct client does.

Run: ``make bench`` or ``.venv/bin/python bench/stream_parse.py [--repeat N] [--chunks N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
import httpx2
from httpx_sse import aconnect_sse
from openai import AsyncOpenAI

from _report import machine, median, say, table, verdict, versions
from openai_compat import OpenAICompatibleConnector
from openai_compat.retries import RetryPolicy
from openai_compat.testing import chat_chunks, sse_reply

URL = "http://bench.invalid/v1/chat/completions"
BASE_URL = "http://bench.invalid/v1"
API_KEY = "sk-bench-not-a-real-key"
PAYLOAD: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Write a long story."}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
_VOCABULARY = (
    "the of and to in a is that for it as was with be by on not he I this are or his from at "
    "which but have an they you were her she there been one all we their has would when if so "
    "no will them more can said about what out time up some into only its could new other "
    "model stream token answer question endpoint server client chunk delta content request"
)
_WORDS = _VOCABULARY.split()


# -- the recorded stream ----------------------------------------------------------------------


def recorded_stream(n_chunks: int, seed: int) -> tuple[bytes, str]:
    """The SSE body of one streamed answer with ``n_chunks`` chunks, and its full text.

    Role chunk, content chunks, finish chunk and usage chunk (as OpenAI sends with
    ``stream_options.include_usage``); ids and timestamps fixed so the bytes never change.
    """
    rng = random.Random(seed)
    pieces = [(" " if i else "") + rng.choice(_WORDS) for i in range(n_chunks - 3)]
    chunks = chat_chunks(pieces=pieces, model="gpt-4o-mini-2024-07-18", include_usage=True)
    for chunk in chunks:
        chunk["id"] = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
        chunk["created"] = 1764000000
        chunk["system_fingerprint"] = "fp_44709d6fcb"
    assert len(chunks) == n_chunks, len(chunks)
    return sse_reply(chunks).body, "".join(pieces)


def cut(body: bytes, seed: int, low: int = 1024, high: int = 16384) -> list[bytes]:
    """The body cut at random points into pieces of ``low``..``high`` bytes (network reads)."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(body):
        size = rng.randint(low, high)
        pieces.append(body[at : at + size])
        at += size
    return pieces


# -- replaying the pieces through each HTTP library -------------------------------------------


def replay_transport(module: ModuleType, pieces: list[bytes]) -> Any:
    """A ``MockTransport`` of ``module`` (httpx or httpx2) answering every request with the
    recorded SSE body, delivered piece by piece as the network would."""

    class _Replay(module.AsyncByteStream):  # type: ignore[name-defined,misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece

    def handler(request: Any) -> Any:
        return module.Response(
            200,
            headers={"content-type": "text/event-stream", "x-request-id": "req_bench"},
            stream=_Replay(),
            request=request,
        )

    return module.MockTransport(handler)


# -- the contenders: each returns (chunks seen, bytes of output it produced) ------------------


async def run_ours(client: httpx.AsyncClient, *, serialise: bool) -> tuple[int, str]:
    connector = OpenAICompatibleConnector(client=client, retry=RetryPolicy(max_retries=0))
    config = {"url": URL, "api_key": API_KEY, "is_stream": True}
    n, text = 0, []
    async for message in connector.arun_model(config, PAYLOAD):
        if message.type != "record":
            raise RuntimeError(f"our pipeline did not read the stream: {message.to_json()}")
        if serialise:
            message.to_json()
        n += 1
        data = message.record.data  # type: ignore[union-attr]
        choices = data["choices"]
        if choices:
            text.append(choices[0]["delta"].get("content") or "")
    return n, "".join(text)


async def run_sdk(client: AsyncOpenAI) -> tuple[int, str]:
    stream = await client.chat.completions.create(
        model=PAYLOAD["model"],
        messages=PAYLOAD["messages"],
        stream=True,
        stream_options={"include_usage": True},
    )
    n, text = 0, []
    async for chunk in stream:
        n += 1
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
    return n, "".join(text)


async def run_httpx_sse(client: httpx.AsyncClient) -> tuple[int, str]:
    n, text = 0, []
    loads = json.loads
    async with aconnect_sse(client, "POST", URL, json=PAYLOAD) as source:
        async for event in source.aiter_sse():
            if event.data == "[DONE]":
                break
            chunk = loads(event.data)
            n += 1
            choices = chunk["choices"]
            if choices:
                text.append(choices[0]["delta"].get("content") or "")
    return n, "".join(text)


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    run: Callable[[], Awaitable[tuple[int, str]]]
    seconds: list[float] = field(default_factory=list)


async def measure(contenders: list[Contender], repeat: int, n_chunks: int, text: str) -> None:
    for contender in contenders:  # warm-up (imports, caches) and a correctness check
        n, got = await contender.run()
        if n != n_chunks or got != text:
            raise SystemExit(f"{contender.name}: read {n} chunks, text equal: {got == text}")
    for _ in range(repeat):
        for contender in contenders:  # interleaved, so drifts in machine load hit all alike
            gc.collect()
            started = time.perf_counter()
            await contender.run()
            contender.seconds.append(time.perf_counter() - started)


def report(contenders: list[Contender], n_chunks: int, size: int, n_pieces: int) -> None:
    mb = size / 1e6
    rows = []
    for c in contenders:
        best, mid = min(c.seconds), median(c.seconds)
        rows.append(
            [
                c.name,
                f"{n_chunks / best:,.0f}",
                f"{n_chunks / mid:,.0f}",
                f"{mb / best:.1f}",
                f"{mb / mid:.1f}",
                f"{mid * 1000:.0f}",
            ]
        )
    header = ["pipeline", "chunks/s best", "chunks/s median", "MB/s best", "MB/s median", "ms med"]
    say(f"Stream: {n_chunks:,} chunks, {size:,} bytes, replayed in {n_pieces} pieces of 1-16 KB")
    say(f"{versions('httpx', 'httpx2', 'httpx-sse', 'openai', 'pydantic')}; {machine()}")
    say()
    say(table(header, rows))
    by = {c.name: c for c in contenders}
    say()
    say("Ratios (throughput, median over rounds of the per-round ratio):")
    say(verdict("ours vs openai SDK", _speedup(by[OURS], by[SDK]), 20))
    say(verdict("ours vs httpx-sse + json.loads", _speedup(by[OURS], by[HTTPX_SSE]), 1.0))
    say(verdict("ours + to_json vs openai SDK", _speedup(by[OURS_JSON], by[SDK]), 15))
    say(
        "  [info] ours + to_json vs httpx-sse + json.loads: "
        f"{_speedup(by[OURS_JSON], by[HTTPX_SSE]):.2f}x"
    )


def _speedup(c: Contender, base: Contender) -> float:
    """How many times faster ``c`` is than ``base``: the median over rounds of the
    per-round ratio (rounds are interleaved, so pairing cancels most load drift)."""
    return median([b / a for a, b in zip(c.seconds, base.seconds, strict=True)])


OURS = "ours (connector.arun_model)"
OURS_JSON = "ours + to_json per message"
SDK = "openai SDK (AsyncOpenAI)"
HTTPX_SSE = "httpx-sse + json.loads"


async def main(repeat: int, n_chunks: int, seed: int) -> None:
    body, text = recorded_stream(n_chunks, seed)
    pieces = cut(body, seed)
    ours_client = httpx.AsyncClient(transport=replay_transport(httpx, pieces))
    sse_client = httpx.AsyncClient(transport=replay_transport(httpx, pieces))
    sdk_client = AsyncOpenAI(
        api_key=API_KEY,
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=replay_transport(httpx2, pieces)),
    )
    contenders = [
        Contender(OURS, lambda: run_ours(ours_client, serialise=False)),
        Contender(OURS_JSON, lambda: run_ours(ours_client, serialise=True)),
        Contender(SDK, lambda: run_sdk(sdk_client)),
        Contender(HTTPX_SSE, lambda: run_httpx_sse(sse_client)),
    ]
    try:
        await measure(contenders, repeat, n_chunks, text)
    finally:
        await ours_client.aclose()
        await sse_client.aclose()
        await sdk_client.close()
    report(contenders, n_chunks, len(body), len(pieces))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per pipeline")
    parser.add_argument("--chunks", type=int, default=20_000, help="chunks in the stream")
    parser.add_argument("--seed", type=int, default=2, help="seed of the text and the cuts")
    args = parser.parse_args()
    asyncio.run(main(args.repeat, args.chunks, args.seed))
