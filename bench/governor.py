"""The throughput governor against the peers, on one rate-limited provider.

The scripted server plays a provider with ``--limit-rpm 3000 --limit-tpm 300000`` (each
request counted as it arrives: a 400-byte prompt is 103 tokens, ``max_tokens`` 100 counts
50 more, so tokens bind first: about 1,960 requests a minute). Each contender runs for the
same window against a fresh server, with the same rows in flight at most:

- **ours**: ``run_batch(..., rate="3000/minute", token_rate="300000/minute")``;
- **LiteLLM Router**: one deployment with ``rpm=3000, tpm=300000`` (usage-based routing,
  which is what enforces them), ``acompletion`` from as many workers, 2 retries;
- **Semaphore + openai SDK**: ``AsyncOpenAI`` (2 retries, its own ``Retry-After``
  handling) under an ``asyncio.Semaphore``, no client-side limit (openai-python has none).

Printed: tokens a minute the server accepted (and the share of its limit), the share of
requests answered 429, and rows failed (after retries); then ratios to ours.

    .venv/bin/python bench/governor.py [--seconds 30] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _report import machine, say, table, verdict, versions
from openai_compat.batch import run_batch
from openai_compat.testing import MockServer, ProviderLimits

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch off this machine

RPM, TPM = 3000, 300_000
TEXT = "word " * 80
MESSAGES = [{"role": "user", "content": TEXT}]


async def ours(url: str, seconds: float, concurrency: int) -> int:
    config = {
        "url": url,
        "api_key": "sk-bench",
        "request_format": {"model": "mock-model", "max_tokens": 100, "messages": MESSAGES},
    }
    failed = 0
    started = time.monotonic()
    rows = ({"n": i} for i in range(10**9))
    async with run_batch(
        config,
        rows,
        concurrency=concurrency,
        rate=f"{RPM}/minute",
        token_rate=f"{TPM}/minute",
    ) as run:
        async for result in run:
            failed += result.error is not None
            if time.monotonic() - started >= seconds and not run.stopping:
                run.stop()
    return failed


async def _workers(send: Callable[[], Awaitable[Any]], seconds: float, concurrency: int) -> int:
    failed = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal failed
        while time.monotonic() < deadline:
            try:
                await send()
            except Exception:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


async def litellm_router(url: str, seconds: float, concurrency: int) -> int:
    from litellm import Router

    router = Router(
        model_list=[
            {
                "model_name": "m",
                "litellm_params": {
                    "model": "openai/mock-model",
                    "api_base": url.removesuffix("/chat/completions"),
                    "api_key": "sk-bench",
                    "rpm": RPM,
                    "tpm": TPM,
                },
            }
        ],
        routing_strategy="usage-based-routing-v2",
        num_retries=2,
    )

    async def send() -> Any:
        return await router.acompletion(model="m", messages=MESSAGES, max_tokens=100)

    return await _workers(send, seconds, concurrency)


async def openai_semaphore(url: str, seconds: float, concurrency: int) -> int:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=url.removesuffix("/chat/completions"), api_key="sk-bench", max_retries=2
    )

    async def send() -> Any:
        return await client.chat.completions.create(
            model="mock-model",
            messages=MESSAGES,
            max_tokens=100,  # type: ignore[arg-type]
        )

    try:
        return await _workers(send, seconds, concurrency)
    finally:
        await client.close()


CONTENDERS = {
    "openai-compat (ours)": ours,
    "LiteLLM Router rpm/tpm": litellm_router,
    "asyncio.Semaphore + openai SDK": openai_semaphore,
}


async def measure(name: str, seconds: float, concurrency: int) -> tuple[float, float, int, int]:
    limits = ProviderLimits(rpm=RPM, tpm=TPM)
    async with MockServer(limits=limits) as server:
        failed = await CONTENDERS[name](server.url, seconds, concurrency)
    charges = limits.charges
    start = charges[0].at
    window = [c for c in charges if c.at < start + seconds]
    tokens = sum(c.tokens for c in window if not c.refused)
    refused = sum(c.refused for c in window)
    return tokens / seconds * 60, refused / max(1, len(window)), failed, len(window)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    say(f"{versions('litellm', 'openai')}; {machine()}")
    say(
        f"provider: --limit-rpm {RPM} --limit-tpm {TPM}; {args.seconds:g} s each; "
        f"{args.concurrency} rows in flight at most"
    )
    figures = {}
    for name in CONTENDERS:
        figures[name] = await measure(name, args.seconds, args.concurrency)
        say(f"  {name}: done")
    ours_tpm = figures["openai-compat (ours)"][0]
    rows = [
        [
            name,
            f"{tpm:,.0f}",
            f"{tpm / TPM:.1%}",
            f"{share:.2%}",
            f"{failed}",
            f"{requests}",
            f"{ours_tpm / tpm:.2f}x" if tpm else "-",
        ]
        for name, (tpm, share, failed, requests) in figures.items()
    ]
    say(
        table(
            ["contender", "tokens/min", "of limit", "429s", "failed rows", "requests", "ours / it"],
            rows,
        )
    )
    tpm, share, failed, _ = figures["openai-compat (ours)"]
    say(verdict("ours: share of the token limit", tpm / TPM, 0.95))
    say(verdict("ours: share answered 429", share, 0.01, higher_is_better=False))
    say(f"  [{'PASS' if failed == 0 else 'MISS'}] ours: failed rows {failed} (target 0)")
    for name in list(CONTENDERS)[1:]:
        say(
            verdict(f"ours ahead of {name} on tokens/min", ours_tpm / max(figures[name][0], 1), 1.0)
        )


if __name__ == "__main__":
    asyncio.run(main())
