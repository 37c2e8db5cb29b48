"""``--concurrency auto`` against a server whose slots share one compute (continuous
batching, emulated by the scripted server's `Slots` with ``share``): each request is
answered more slowly the more run at once while more are answered a second, and the slots
stay busy between one answer and the client's next request only with a few requests
waiting in the server's queue. A limiter that reads every rise of latency as a queue settles
below the slots; ours reaches 90% of what a saturating fixed concurrency gets.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_compat.batch import run_batch
from openai_compat.batch.governor import _adaptive
from openai_compat.batch.governor._adaptive import AdaptiveLimit
from openai_compat.testing import MockServer, Slots
from tests.conftest import CANARY, make_config

FORMAT = {"model": "mock-model", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
WARMUP_S, MEASURED_S = 4.0, 6.0


async def rows_a_second(url: str, **options: Any) -> float:
    """Rows answered a second from ``WARMUP_S`` in, for ``MEASURED_S``."""
    done: list[float] = []
    started = time.monotonic()
    rows = ({"n": i} for i in range(10**9))
    config = make_config(url, request_format=json.dumps(FORMAT))
    async with run_batch(config, rows, rate=None, **options) as run:
        async for result in run:
            assert result.ok, result.error
            done.append(time.monotonic())
            if done[-1] - started >= WARMUP_S + MEASURED_S and not run.stopping:
                run.stop()
    start, end = started + WARMUP_S, started + WARMUP_S + MEASURED_S
    return sum(start <= at < end for at in done) / MEASURED_S


async def test_auto_reaches_90_percent_of_a_batching_servers_throughput() -> None:
    # Four slots, 50 ms alone and 125 ms with all four busy: 32 answers a second at most; each
    # request takes 20 ms to reach the server, during which its slot would stand idle.
    slots = Slots(4, 0.05, share=0.5)
    async with MockServer(slots=slots, latency_s=0.02) as server:
        saturated = await rows_a_second(server.url, concurrency=16)
        auto = await rows_a_second(server.url, concurrency="auto", max_concurrency=64)
    assert saturated > 0.7 * slots.capacity, f"fixed 16: {saturated:.1f} rows/s"
    assert auto >= 0.9 * saturated, f"auto {auto:.1f} rows/s, fixed 16 {saturated:.1f} rows/s"


async def test_slots_sharing_one_compute_answer_slower_together_and_more_a_second() -> None:
    slots = Slots(2, 0.2, share=1.0)  # alone 0.2 s; two together 0.4 s each
    body = {**FORMAT, "messages": [{"role": "user", "content": "hi"}]}
    async with MockServer(slots=slots) as server, httpx.AsyncClient() as client:
        headers = {"Authorization": f"Bearer {CANARY}"}

        async def timed() -> float:
            started = time.monotonic()
            answer = await client.post(server.url, json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            return time.monotonic() - started

        alone = await timed()
        together = await asyncio.gather(timed(), timed())
    assert 0.2 <= alone < 0.35
    assert min(together) >= 0.2 and max(together) >= 0.4
    assert slots.capacity == 2 / (0.2 * 2)


def test_mock_server_refuses_a_negative_share() -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    command = [sys.executable, "-m", "openai_compat", "mock-server", "--port", "0"]
    done = subprocess.run(
        [*command, "--slots", "4", "--share", "-0.5"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert done.returncode == 2
    assert "--share must be 0 or more" in done.stderr


class _Windows:
    """Feeds an `AdaptiveLimit` whole windows of answers on a clock of its own."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0.0
        monkeypatch.setattr(_adaptive.time, "monotonic", lambda: self.now)
        self.limit = AdaptiveLimit(64)

    def window(self, latency_s: float, per_second: float) -> None:
        """One window, every place taken, answers ``per_second`` apart, each ``latency_s``."""
        for _ in range(max(self.limit.limit, 4)):
            self.limit.in_flight_peak = self.limit.limit
            self.now += 1 / per_second
            self.limit.record(latency_s)


def test_one_lucky_fast_window_does_not_lower_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a loaded machine one window of a few answers can be four times faster by luck; a
    # floor taken from it would read every window after it as a queue and pin the limit.
    feed = _Windows(monkeypatch)
    feed.window(0.06, 16)
    feed.window(0.016, 16)
    feed.window(0.06, 16)
    assert feed.limit.floor == pytest.approx(0.06)
    feed.window(0.03, 16)
    feed.window(0.02, 16)  # two in a row: the floor is the slower of them
    assert feed.limit.floor == pytest.approx(0.03)


def test_latency_that_bought_throughput_raises_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    feed = _Windows(monkeypatch)
    feed.window(0.05, 20)
    feed.window(0.10, 20)  # slower, no more answers a second: a queue
    assert feed.limit.floor == pytest.approx(0.05)
    assert feed.limit.limit == 2  # out of slow start: 2 x 1.1 x 0.05 / 0.10 + 1
    feed.window(0.08, 30)  # slower, and half as many answers again a second: bought
    assert feed.limit.floor == pytest.approx(0.05)  # one window may be its noise
    feed.window(0.08, 30)
    # Raised with the latency, by no more than the throughput rose (30 / 20 x 0.05).
    assert feed.limit.floor == pytest.approx(0.075)
