"""Embeddings batch throughput: rows packed into requests, side by side with one row per
request and with the official SDK's ``embeddings.create`` at the same packing.

    python bench/embeddings.py                       # 100,000 rows, 20 ms, concurrency 16
    python bench/embeddings.py --rows 20000 --single-rows 2000

The scripted server (``openai-compat mock-server``, in its own process) answers every
request after 20 ms whatever its size (``?latency_ms=20``), with 64-dimension vectors.
Peers, each writing one JSON line per row with its vector:

- ours, packed x64 (the default of an embeddings run: base64 asked for and decoded), and
  with ``encoding_format: "float"`` in the request format;
- ours, one row per request (``rows_per_request=1``), on ``--single-rows`` rows (at 20 ms a
  request it would take minutes on all of them: rows per second are compared);
- the SDK: ``AsyncOpenAI().embeddings.create`` with 64 inputs a call under
  ``asyncio.Semaphore(16)``, in float and base64 (the SDK decodes base64 itself).

Memory: our packed run's peak RSS (a child process, ``wait4``) at ``--rows`` and at a
fifth of them: flat in the row count means the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, say, table, verdict, versions

MODEL = "mock-model"
DIMENSIONS = 64
PACK = 64
CONCURRENCY = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_compat", "mock-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the scripted server did not start")


def _rows(n: int) -> Any:
    return ({"id": f"r{i}", "text": f"row {i} of the table, some words"} for i in range(n))


def _ours(url: str, rows: int, out: Path, *, encoding: str | None, pack: int | None) -> float:
    from openai_compat import run_batch_sync

    body: dict[str, Any] = {"model": MODEL, "input": "{{text}}", "dimensions": DIMENSIONS}
    if encoding is not None:
        body["encoding_format"] = encoding
    config = {"url": url, "request_format": json.dumps(body), "config": {"timeout": 60}}
    started = time.perf_counter()
    summary = run_batch_sync(
        config,
        _rows(rows),
        out,
        key="id",
        rate=None,
        concurrency=CONCURRENCY,
        rows_per_request=pack,
    )
    took = time.perf_counter() - started
    assert summary.ok == rows, summary
    return took


def _sdk(base: str, rows: int, out: Path, *, encoding: str) -> float:
    from openai import AsyncOpenAI

    async def main() -> None:
        client = AsyncOpenAI(base_url=base + "/v1", api_key="unused", timeout=60)
        gate = asyncio.Semaphore(CONCURRENCY)
        all_rows = list(_rows(rows))
        with out.open("w") as handle:

            async def one(pack: list[dict[str, Any]]) -> None:
                async with gate:
                    answer = await client.embeddings.create(
                        model=MODEL,
                        input=[row["text"] for row in pack],
                        dimensions=DIMENSIONS,
                        encoding_format=encoding,  # type: ignore[arg-type]
                        extra_query={"latency_ms": "20"},
                    )
                for item in answer.data:
                    line = {"key": pack[item.index]["id"], "embedding": list(item.embedding)}
                    handle.write(json.dumps(line) + "\n")

            await asyncio.gather(
                *(one(all_rows[i : i + PACK]) for i in range(0, len(all_rows), PACK))
            )
        await client.close()

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


def _peak_rss_mb(url: str, rows: int, out: Path) -> float:
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import embeddings as b; "
        f"from pathlib import Path; b._ours({url!r}, {rows}, Path({str(out)!r}), "
        "encoding=None, pack=None)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    _, status, usage = os.wait4(proc.pid, 0)
    assert status == 0
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--single-rows", type=int, default=5_000)
    args = parser.parse_args()
    port = _free_port()
    server = _start_server(port)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/embeddings?latency_ms=20"
    results: list[tuple[str, int, float]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            runs = [
                ("ours, packed x64, base64", args.rows, lambda n: _ours(
                    url, n, out / "a.jsonl", encoding=None, pack=None)),
                ("ours, packed x64, float", args.rows, lambda n: _ours(
                    url, n, out / "b.jsonl", encoding="float", pack=None)),
                ("SDK embeddings.create x64, base64", args.rows, lambda n: _sdk(
                    base, n, out / "c.jsonl", encoding="base64")),
                ("SDK embeddings.create x64, float", args.rows, lambda n: _sdk(
                    base, n, out / "d.jsonl", encoding="float")),
                ("ours, one row per request", args.single_rows, lambda n: _ours(
                    url, n, out / "e.jsonl", encoding=None, pack=1)),
            ]  # fmt: skip
            for name, n, run in runs:
                took = run(n)
                results.append((name, n, took))
                say(f"{name}: {n:,} rows in {took:.2f} s")
            small = max(args.rows // 5, 1)
            rss_small = _peak_rss_mb(url, small, out / "m1.jsonl")
            rss_large = _peak_rss_mb(url, args.rows, out / "m2.jsonl")
    finally:
        server.terminate()
        server.wait()
    rate = {name: n / took for name, n, took in results}
    ours = rate["ours, packed x64, base64"]
    say()
    say(f"{versions('openai', 'aiohttp')}; {machine()}")
    say(
        f"{args.rows:,} rows, {DIMENSIONS}-dimension vectors, 20 ms a request, "
        f"concurrency {CONCURRENCY}"
    )
    say(
        table(
            ["run", "rows", "wall s", "rows/s", "vs ours packed x64"],
            [
                [name, f"{n:,}", f"{took:.2f}", f"{n / took:,.0f}", f"{ours / (n / took):.2f}x"]
                for name, n, took in results
            ],
        )
    )
    say(
        f"peak RSS of ours packed: {small:,} rows {rss_small:.0f} MB, {args.rows:,} rows "
        f"{rss_large:.0f} MB ({rss_large / rss_small:.2f}x)"
    )
    say(verdict("packed x64 vs one row per request", ours / rate["ours, one row per request"], 30))
    say(verdict("ours vs SDK, base64", ours / rate["SDK embeddings.create x64, base64"], 1.0))
    say(
        verdict(
            "ours vs SDK, float",
            rate["ours, packed x64, float"] / rate["SDK embeddings.create x64, float"],
            1.0,
        )
    )
    say(verdict("peak memory, 5x the rows", rss_large / rss_small, 1.2, higher_is_better=False))


if __name__ == "__main__":
    main()
