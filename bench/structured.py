"""Structured outputs: the validation's share of a batch's CPU, re-asks, and instructor.

    python bench/structured.py                 # 2,000 rows, 20 ms latency, concurrency 64
    python bench/structured.py --rows 500

Against the scripted server (``openai-compat mock-server``, its own process) in its
``structured`` scenario (schema-valid answers; ``invalid_pct`` of first answers not JSON):

1. Validators: the 10-property schema's answers validated by jsonschema-rs (the one kept),
   jsonschema and fastjsonschema (when installed), each compiled once: CPU per row.
2. A batch of all-valid answers (``--schema-mode json_schema``): wall and CPU per row, and
   what validation (reading the JSON and validating it) takes of that CPU.
3. The same batch with 30% of first answers invalid: every row must end valid, with
   requests = rows x 1.30 exactly, and its wall as a ratio to the all-valid run's. Both
   runs come after a warm-up run (the first run of a process loads the HTTP client), in
   ``--repeat`` rounds that alternate which goes first; the medians are compared.
4. instructor (``instructor.from_openai(AsyncOpenAI)``, ``max_retries=2``, tools mode, the
   same concurrency under a semaphore) against ours in tools mode: rows per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]


class Ticket(BaseModel):
    label: Literal["bug", "question", "billing"]
    urgency: int
    summary: str
    product: str
    customer: str
    score: float
    refund: bool
    tags: list[str]
    language: str
    steps: int


SCHEMA = Ticket.model_json_schema()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _validators(rows: int) -> list[tuple[str, float]]:
    from openai_compat.testing._structured import example_of

    answers = [example_of(SCHEMA, i) for i in range(rows)]
    found: list[tuple[str, float]] = []
    import jsonschema_rs

    rs = jsonschema_rs.validator_for(SCHEMA)
    started = time.process_time()
    assert all(rs.is_valid(a) for a in answers)
    found.append(("jsonschema-rs", (time.process_time() - started) / rows))
    try:
        import jsonschema

        checker = jsonschema.Draft202012Validator(SCHEMA)
        started = time.process_time()
        assert all(checker.is_valid(a) for a in answers)
        found.append(("jsonschema", (time.process_time() - started) / rows))
    except ImportError:
        pass
    try:
        import fastjsonschema

        compiled = fastjsonschema.compile(SCHEMA)
        started = time.process_time()
        for a in answers:
            compiled(a)
        found.append(("fastjsonschema", (time.process_time() - started) / rows))
    except ImportError:
        found.append(("fastjsonschema", float("nan")))
    return found


def _answer_cpu(rows: int) -> float:
    """CPU per row of what validation adds to a row: the JSON read and validated."""
    from openai_compat.structured import Structured
    from openai_compat.testing import chat_completion
    from openai_compat.testing._structured import example_of

    structured = Structured(SCHEMA, mode="json_schema")
    responses = [chat_completion(json.dumps(example_of(SCHEMA, i))) for i in range(rows)]
    started = time.process_time()
    for response in responses:
        _, problems, _ = structured.validate_answer(response)
        assert not problems
    return (time.process_time() - started) / rows


def _ours(url: str, rows: int, concurrency: int, mode: str) -> dict[str, Any]:
    from openai_compat import run_batch_sync

    config = {
        "url": url,
        "api_key": "",
        "request_format": json.dumps(
            {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
        ),
    }
    data = [{"id": i, "text": f"ticket {i}"} for i in range(rows)]
    cpu, started = _cpu(), time.perf_counter()
    summary = run_batch_sync(
        config, data, key="id", concurrency=concurrency, rate=None, schema=Ticket,
        schema_mode=mode,
    )  # fmt: skip
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "cpu_per_row": (_cpu() - cpu) / rows,
        "ok": summary.ok,
        "requests": summary.requests,
        "rows_per_s": rows / wall,
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall (its figures kept together), every run's ``ok`` the least."""
    ordered = sorted(runs, key=lambda run: run["wall"])
    return {**ordered[len(ordered) // 2], "ok": min(run["ok"] for run in runs)}


def _instructor(base: str, query: dict[str, str], rows: int, concurrency: int) -> dict[str, Any]:
    import instructor
    from openai import AsyncOpenAI

    async def main() -> int:
        client = instructor.from_openai(
            AsyncOpenAI(base_url=f"{base}/v1", api_key="x", default_query=query),
            mode=instructor.Mode.TOOLS,
        )
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> Ticket:
            async with gate:
                result: Ticket = await client.chat.completions.create(
                    model="mock-model",
                    response_model=Ticket,
                    max_retries=2,
                    messages=[{"role": "user", "content": f"ticket {i}"}],
                )
                return result

        done = await asyncio.gather(*(one(i) for i in range(rows)))
        return len(done)

    started = time.perf_counter()
    count = asyncio.run(main())
    wall = time.perf_counter() - started
    return {"wall": wall, "ok": count, "rows_per_s": rows / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of 2. and 3. (default 5)")
    args = parser.parse_args()
    rows, latency = args.rows, args.latency_ms
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "openai_compat", "mock-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"{base}/v1/chat/completions?scenario=structured&latency_ms={latency}"
        print(f"rows {rows}, latency {latency} ms, concurrency {args.concurrency}, 10 properties")
        print("\n1. validators, CPU per row (compiled once):")
        figures = _validators(5000)
        best = figures[0][1]
        for name, cpu in figures:
            print(f"   {name:15s} {cpu * 1e6:8.2f} us   {cpu / best:6.2f}x jsonschema-rs")
        _ours(url, rows, args.concurrency, "json_schema")  # the warm-up: imports, first pool
        valids, reaskeds = [], []
        for round_ in range(max(1, args.repeat)):
            pair = [(valids, url), (reaskeds, url + "&invalid_pct=30")]
            for runs, where in pair if round_ % 2 == 0 else pair[::-1]:
                runs.append(_ours(where, rows, args.concurrency, "json_schema"))
        valid = _median(valids)
        answer_cpu = _answer_cpu(5000)
        print(f"\n2. all valid (json_schema, medians of {len(valids)} rounds):")
        print(
            f"   wall {valid['wall']:.2f} s, CPU {valid['cpu_per_row'] * 1e6:.0f} us/row; "
            f"reading + validating the answer {answer_cpu * 1e6:.1f} us/row = "
            f"{answer_cpu / valid['cpu_per_row']:.1%} of the row's CPU (target <= 5%)"
        )
        reasked = _median(reaskeds)
        print(f"\n3. 30% invalid first answers (medians of {len(reaskeds)} rounds):")
        print(
            f"   ok {reasked['ok']}/{rows}, requests {reasked['requests']} = "
            f"{reasked['requests'] / rows:.2f} x rows (target 1.30 exactly); wall "
            f"{reasked['wall']:.2f} s = {reasked['wall'] / valid['wall']:.2f}x the all-valid run "
            "(target <= 1.35x)"
        )
        ours = _ours(url, rows, args.concurrency, "tools")
        theirs = _instructor(
            base, {"scenario": "structured", "latency_ms": str(latency)}, rows, args.concurrency
        )
        print("\n4. tools mode, rows per second:")
        print(f"   openai-compat {ours['rows_per_s']:8.1f}   (ok {ours['ok']})")
        print(f"   instructor    {theirs['rows_per_s']:8.1f}   (ok {theirs['ok']})")
        print(f"   ratio         {ours['rows_per_s'] / theirs['rows_per_s']:8.2f}x (target >= 5x)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
