"""``--concurrency auto`` against llama.cpp's llama-server with 4 slots (``-np 4``): its
throughput is within 10% of the best fixed concurrency a sweep finds."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_compat.batch import run_batch
from tests.conftest import CANARY

from ._helpers import config_for
from ._launch import Running, start_llama_server

pytestmark = [pytest.mark.compat, pytest.mark.server("llama")]
SWEEP = (1, 2, 4, 8, 16)
ROUNDS = 3


@pytest.fixture(scope="module")
def llama4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp: Path = tmp_path_factory.mktemp("llama4")
    with start_llama_server(tmp, CANARY, slots=4) as running:
        yield running


def _rows_a_second(server: Running, seconds: float, warmup: float, **options: Any) -> float:
    """Rows answered a second, counted from ``warmup`` seconds in for ``seconds``."""
    config = config_for(server, "tiny-llama")
    config["request_format"] = {
        "model": "tiny-llama",
        "messages": [{"role": "user", "content": "Count to ten"}],
        "max_tokens": 16,
        "temperature": 0,
    }

    async def measure() -> float:
        done: list[float] = []
        started = time.monotonic()
        rows = ({"n": i} for i in range(10**9))
        async with run_batch(config, rows, rate=None, **options) as run:
            async for result in run:
                assert result.error is None, result.error
                done.append(time.monotonic())
                if done[-1] - started >= warmup + seconds and not run.stopping:
                    run.stop()
        counted = [at for at in done if started + warmup <= at < started + warmup + seconds]
        return len(counted) / seconds

    return asyncio.run(measure())


@pytest.mark.xfail(
    strict=False,  # load swings it: a loaded run once passed; a pass is reported as XPASS
    reason="not met: on a quiet machine auto reaches about 0.57 of the best fixed "
    "concurrency (45 rows/s at a limit of 2-3 against 77-83 at 8 in flight). llama-server's "
    "throughput is flat from 1 to 4 in flight (50-63 rows/s) while its latency grows in "
    "proportion, as a queue's does, and rises only with 4 more waiting beyond its slots: "
    "neither the latency nor the throughput of the next step up tells it from a queue "
    "(docs/performance.md)",
)
def test_auto_concurrency_is_within_10_percent_of_the_best_fixed_one(llama4: Running) -> None:
    # Interleaved rounds, each judged against its own sweep, and the median of those: a
    # change in the machine's load between rounds hits auto and the sweep it is judged by
    # alike.
    fixed: dict[int, list[float]] = {n: [] for n in SWEEP}
    auto: list[float] = []
    ratios: list[float] = []
    for _ in range(ROUNDS):
        for n in SWEEP:
            fixed[n].append(_rows_a_second(llama4, 6, 2, concurrency=n))
        auto.append(_rows_a_second(llama4, 6, 8, concurrency="auto", max_concurrency=64))
        ratios.append(auto[-1] / max(figures[-1] for figures in fixed.values()))
    figures = f"auto {auto} rows/s; fixed: {fixed}; ratios {ratios}"
    print(figures)  # the figures of a pass too (``-s``), for docs/performance.md
    assert statistics.median(ratios) >= 0.9, figures
