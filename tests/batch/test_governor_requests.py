"""What the governor reserves for requests other than a row's one chat request: a packed
embeddings request (the sum of its inputs, as one request) and a structured row's re-asks
(their own tokens while in flight, no second place), against the scripted server as a
rate-limited provider (``--limit-tpm``).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from openai_compat.batch import run_batch
from openai_compat.batch.governor import AdaptiveLimit, Governor, estimate_tokens
from openai_compat.batch.scheduler import Rate, Scheduler
from openai_compat.testing import MockServer, ProviderLimits
from tests.conftest import make_config

EMBED = json.dumps({"model": "mock-model", "input": "{{text}}"})
TEXT = "word " * 20  # 100 bytes: 25 tokens for the server and for the run's estimate


def _accepted_per_minute(limits: ProviderLimits, start: float, end: float) -> float:
    start = max(start, limits.charges[0].at)
    tokens = sum(c.tokens for c in limits.charges if not c.refused and start <= c.at < end)
    return tokens / (end - start) * 60


async def test_packed_embeddings_fill_a_token_limit_without_tripping_it() -> None:
    limits = ProviderLimits(tpm=60_000)  # 1,000 a second: 40 rows of 25
    async with MockServer(limits=limits) as server:
        config = make_config(server.base_url + "/v1/embeddings", request_format=EMBED)
        rows = ({"text": TEXT} for _ in range(100_000))
        results = []
        started = time.monotonic()
        async with run_batch(
            config, rows, concurrency=8, rate=None, token_rate="60000/minute", rows_per_request=4
        ) as run:
            async for result in run:
                results.append(result)
                if time.monotonic() - started > 8 and not run.stopping:
                    run.stop()
        sent = [r for r in server.requests if r.path.endswith("/embeddings")]
    reached = _accepted_per_minute(limits, started, started + 8) / 60_000
    assert reached >= 0.9, f"{reached:.1%} of the limit"
    assert reached <= 1.15  # the second's worth the server holds at the start, no more
    refused = sum(c.refused for c in limits.charges) / len(limits.charges)
    assert refused <= 0.01, [
        (round(c.at - started, 2), c.tokens) for c in limits.charges if c.refused
    ]
    assert all(r.ok for r in results)
    assert max(len(r.json["input"]) for r in sent) == 4  # packed, not row by row


async def test_a_pack_larger_than_the_whole_token_rate_goes_in_halves() -> None:
    async with MockServer() as server:
        config = make_config(server.base_url + "/v1/embeddings", request_format=EMBED)
        rows = [{"text": "x" * 400} for _ in range(8)]  # 100 tokens each, 800 a pack
        async with run_batch(
            config, rows, rate=None, token_rate="300/minute", rows_per_request=8
        ) as run:
            results = [r async for r in run]
        sizes = sorted(len(r.json["input"]) for r in server.requests)
    assert all(r.ok for r in results) and len(results) == 8
    assert max(sizes) <= 3  # 300 tokens a minute: at most 3 of 100 in one request
    assert sum(sizes) == 8


async def test_a_row_larger_than_the_whole_token_rate_fails_saying_so() -> None:
    async with MockServer() as server:
        config = make_config(server.base_url + "/v1/embeddings", request_format=EMBED)
        rows = [{"text": "short"}, {"text": "x" * 4_000}]
        async with run_batch(
            config, rows, rate=None, token_rate="300/minute", rows_per_request=8
        ) as run:
            results = sorted([r async for r in run], key=lambda r: r.index)
        sent = [r.json["input"] for r in server.requests]
    assert results[0].ok
    assert "more than the whole token rate of 300/minute" in results[1].error["message"]
    assert sent == ["short"]


async def test_a_reask_reserves_its_tokens_but_no_second_place() -> None:
    adaptive = AdaptiveLimit(4, initial=1)
    governor = Governor(Scheduler(None), token_rate=Rate.parse("60000/minute"), adaptive=adaptive)
    bucket = governor.tokens
    assert bucket is not None
    first = await governor.admit({"messages": [{"role": "user", "content": "x" * 400}]})
    assert not isinstance(first, str) and first.holds_slot
    assert adaptive.in_flight == 1 == adaptive.limit  # the row's place: the only one
    governor.heard_first()  # its answer came (a re-ask follows one)
    level = bucket.level
    ask = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 10}
    again = await asyncio.wait_for(governor.admit(ask, slot=False), 5)  # no place to wait for
    assert not isinstance(again, str) and not again.holds_slot
    assert again.tokens == estimate_tokens(ask)
    # The bucket refills as it goes (1,000 a second): 20 tokens of slack are 20 ms.
    assert level - bucket.level == pytest.approx(again.tokens, abs=20)  # held while in flight
    governor.settle(again, 0, None)  # given back: the first is settled against all answers
    assert bucket.level == pytest.approx(level, abs=20)
    assert adaptive.in_flight == 1
    governor.settle(first, 300, None)
    assert adaptive.in_flight == 0
