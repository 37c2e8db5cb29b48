"""``--concurrency auto`` against a sweep of fixed concurrencies, on one capacity-limited
server.

By default the server is the scripted one with four slots sharing one compute
(``Slots(4, 0.05, share=0.5)``: 50 ms alone, 125 ms with all four busy, 32 answers a second
at most; each request 20 ms on its way); with ``--url`` it is any running server, such as
llama.cpp's ``llama-server -np 4``. Each round measures every fixed concurrency of the sweep
and then ``auto``, each for ``--seconds`` after a warm-up (``auto``'s longer, to settle);
the rounds are interleaved so that a change of the machine's load hits a round's sweep and
its ``auto`` alike. Printed: rows a second per round, ``auto``'s median limit, and the ratio
of ``auto`` to the best fixed concurrency of its round (the verdict on the median ratio).

    .venv/bin/python bench/adaptive.py [--rounds 3] [--seconds 6]
    .venv/bin/python bench/adaptive.py --url http://127.0.0.1:8080/v1/chat/completions \\
        --model tiny-llama --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import AsyncExitStack
from typing import Any

from _report import machine, say, table, verdict, versions
from openai_compat.batch import run_batch
from openai_compat.testing import MockServer, Slots

SWEEP = (1, 2, 4, 8, 16)


async def rows_a_second(
    config: dict[str, Any], seconds: float, warmup: float, **options: Any
) -> tuple[float, float | None]:
    """(rows answered a second from ``warmup`` in for ``seconds``, the median limit then)."""
    done: list[float] = []
    limits: list[int] = []
    started = time.monotonic()
    rows = ({"n": i} for i in range(10**9))
    async with run_batch(config, rows, rate=None, **options) as run:
        async for result in run:
            if result.error is not None:
                raise SystemExit(f"a row failed: {result.error}")
            done.append(time.monotonic())
            if done[-1] >= started + warmup and run.summary.concurrency_limit is not None:
                limits.append(run.summary.concurrency_limit)
            if done[-1] - started >= warmup + seconds and not run.stopping:
                run.stop()
    start, end = started + warmup, started + warmup + seconds
    rate = sum(start <= at < end for at in done) / seconds
    return rate, (statistics.median(limits) if limits else None)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server's chat URL (default: scripted)")
    parser.add_argument("--model", default="mock-model")
    parser.add_argument("--api-key", default="sk-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    say(f"{versions()}; {machine()}")
    async with AsyncExitStack() as stack:
        url = args.url
        if url is None:
            server = MockServer(slots=Slots(4, 0.05, share=0.5), latency_s=0.02)
            url = (await stack.enter_async_context(server)).url
            say("server: scripted, Slots(4, 0.05, share=0.5), 20 ms on the way")
        else:
            say(f"server: {url}")
        config = {
            "url": url,
            "api_key": args.api_key,
            "config": {"timeout": 60},
            "request_format": {
                "model": args.model,
                "messages": [{"role": "user", "content": "Count to ten"}],
                "max_tokens": 16,
                "temperature": 0,
            },
        }
        lines, ratios = [], []
        for round_ in range(1, args.rounds + 1):
            fixed = [
                (await rows_a_second(config, args.seconds, 2, concurrency=n))[0] for n in SWEEP
            ]
            auto, limit = await rows_a_second(
                config, args.seconds, 8, concurrency="auto", max_concurrency=64
            )
            ratios.append(auto / max(fixed))
            figures = [*(f"{x:.1f}" for x in fixed), f"{auto:.1f}", f"{limit}"]
            lines.append([f"round {round_}", *figures, f"{ratios[-1]:.2f}"])
            say(lines[-1][0] + " done")
    header = ["rows/s", *(f"fixed {n}" for n in SWEEP), "auto", "auto limit", "auto / best"]
    say(table(header, lines))
    say(verdict("auto / best fixed (median of rounds)", statistics.median(ratios), 0.9))


if __name__ == "__main__":
    asyncio.run(main())
