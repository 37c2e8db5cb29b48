"""Batch throughput and memory, side by side with the official SDK.

    python bench/batch.py                      # 20,000 rows, 20 ms latency, concurrency 64
    python bench/batch.py --memory-rows 0      # skip the 1,000,000-row memory run
    python bench/batch.py --rows 0             # only the memory run
    python bench/batch.py --rows 0 --memory-rows 0   # only the cached re-run

1. Throughput: 20,000 rows against the scripted server (``openai-compat mock-server``, in its
   own process) answering after 20 ms, at concurrency 64 with no rate limit. The ideal wall
   time is rows x latency / concurrency. Peers: ``openai-compat batch``'s runner (the same
   code as the CLI, timed from the first row to the last result line) and the usual SDK loop:
   ``AsyncOpenAI`` under ``asyncio.Semaphore(64)``, results written to a file too. Each runs
   in a fresh process. Last, the floor: a bare aiohttp loop on uvloop that only posts each
   row and reads the answer (no mapping, retries, extraction or output file), to show what
   the machine and the server allow any Python client.
3. The cached re-run: 20,000 rows run once with ``--cache`` (answers stored), then again with
   other output fields: every answer comes from the cache and nothing is sent (target under
   2 s), beside the first run, and the real CLI process timed from start to exit.
2. Memory: ``openai-compat batch`` (the real CLI, in a child process) over a 1,000,000-row
   JSON Lines file against the server with no latency; peak RSS from ``wait4``.
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

MODEL = "mock-model"


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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the mock server did not start")


def _write_rows(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(f'{{"id": {i}, "text": "Summarise ticket {i}: the printer is on fire"}}\n')


# -- workers (each in a fresh process) --------------------------------------------------------


async def _ours(
    port: int, latency_ms: int, rows: str, out: str, concurrency: int
) -> dict[str, Any]:
    from openai_compat.batch import arun_batch_to_file

    query = f"?latency_ms={latency_ms}" if latency_ms else ""
    config = {
        "url": f"http://127.0.0.1:{port}/v1/chat/completions{query}",
        "api_key": "sk-bench",
        "request_format": {"model": MODEL, "messages": [{"role": "user", "content": "{{text}}"}]},
        "response_format": {"choices": [{"message": {"content": "x"}}]},
    }
    started = time.perf_counter()
    summary = await arun_batch_to_file(
        config, rows, out, mode="overwrite", concurrency=concurrency, rate=None
    )
    return {"wall": time.perf_counter() - started, "ok": summary.ok, "failed": summary.failed}


async def _sdk(port: int, latency_ms: int, rows: str, out: str, concurrency: int) -> dict[str, Any]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-bench",
        default_query={"latency_ms": str(latency_ms)} if latency_ms else None,
    )
    semaphore = asyncio.Semaphore(concurrency)
    ok = failed = 0

    async def one(index: int, row: dict[str, Any], sink: Any) -> None:
        nonlocal ok, failed
        async with semaphore:
            started = time.perf_counter()
            try:
                answer = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": row["text"]}]
                )
            except Exception as exc:
                failed += 1
                line = {"key": index, "error": str(exc)}
            else:
                ok += 1
                line = {
                    "key": index,
                    "output": {"choices.0.message.content": answer.choices[0].message.content},
                    "usage": answer.usage.model_dump() if answer.usage else None,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                }
            sink.write(json.dumps(line) + "\n")
            sink.flush()

    started = time.perf_counter()
    with open(rows) as source, open(out, "w") as sink:
        await asyncio.gather(*(one(i, json.loads(line), sink) for i, line in enumerate(source)))
    wall = time.perf_counter() - started
    await client.close()
    return {"wall": wall, "ok": ok, "failed": failed}


async def _floor(
    port: int, latency_ms: int, rows: str, out: str, concurrency: int
) -> dict[str, Any]:
    """The least a Python client can do: post each row, read the answer, nothing else."""
    import aiohttp

    query = f"?latency_ms={latency_ms}" if latency_ms else ""
    url = f"http://127.0.0.1:{port}/v1/chat/completions{query}"
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    semaphore = asyncio.Semaphore(concurrency)
    ok = failed = 0

    async def one(session: aiohttp.ClientSession, line: str) -> None:
        nonlocal ok, failed
        row = json.loads(line)
        body = {"model": MODEL, "messages": [{"role": "user", "content": row["text"]}]}
        async with semaphore, session.post(url, json=body, headers=headers) as response:
            await response.read()
            if response.status == 200:
                ok += 1
            else:
                failed += 1

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        with open(rows) as source:
            await asyncio.gather(*(one(session, line) for line in source))
    return {"wall": time.perf_counter() - started, "ok": ok, "failed": failed}


# -- the response cache: a first run stores the answers, a re-run with other outputs -------
_RERUN_OUTPUTS = [
    {"name": "choices.0.message.content", "as": "summary"},
    {"name": "model", "as": "model"},
    {"name": "usage.total_tokens", "as": "tokens"},
]


async def _cached(
    port: int, latency_ms: int, rows: str, out: str, concurrency: int, outputs: Any = None
) -> dict[str, Any]:
    """``openai-compat batch --cache`` (the cache file is next to the rows)."""
    from openai_compat.batch import arun_batch_to_file

    query = f"?latency_ms={latency_ms}" if latency_ms else ""
    config = {
        "url": f"http://127.0.0.1:{port}/v1/chat/completions{query}",
        "api_key": "sk-bench",
        "request_format": {"model": MODEL, "messages": [{"role": "user", "content": "{{text}}"}]},
        "response_format": {"choices": [{"message": {"content": "x"}}]},
    }
    started = time.perf_counter()
    summary = await arun_batch_to_file(
        config,
        rows,
        out,
        mode="overwrite",
        concurrency=concurrency,
        rate=None,
        cache=rows + ".cache.sqlite",
        outputs=outputs,
    )
    return {
        "wall": time.perf_counter() - started,
        "ok": summary.ok,
        "failed": summary.failed,
        "cached": summary.cached,
        "requests": summary.requests,
    }


async def _cached_rerun(
    port: int, latency_ms: int, rows: str, out: str, concurrency: int
) -> dict[str, Any]:
    return await _cached(port, latency_ms, rows, out, concurrency, _RERUN_OUTPUTS)


async def _cached_floor(
    port: int, latency_ms: int, rows: str, out: str, concurrency: int
) -> dict[str, Any]:
    """The least a cached re-run can do: read each row, build its body, look it up (500 keys
    a query), decode the answer, pick the text, write a line. No engine, no checks."""
    from openai_compat.batch import ResponseCache

    url = f"http://127.0.0.1:{port}/v1/chat/completions" + (
        f"?latency_ms={latency_ms}" if latency_ms else ""
    )
    cache = ResponseCache(rows + ".cache.sqlite", "read-only")
    started = time.perf_counter()
    ok = 0
    with open(rows) as source, open(out, "w") as sink:
        while chunk := [json.loads(line) for _, line in zip(range(500), source, strict=False)]:
            bodies = [
                {"model": MODEL, "messages": [{"role": "user", "content": row["text"]}]}
                for row in chunk
            ]
            for row, hit in zip(chunk, cache.get_many(url, bodies), strict=True):
                if hit is not None:
                    ok += 1
                    text = hit.response["choices"][0]["message"]["content"]
                    sink.write(json.dumps({"key": row["id"], "summary": text}) + "\n")
    cache.close()
    return {
        "wall": time.perf_counter() - started,
        "ok": ok,
        "failed": 0,
        "cached": ok,
        "requests": 0,
    }


def _cached_rerun_bench(args: argparse.Namespace, tmp: Path) -> None:
    """A finished dataset run again with other output fields: every answer from the cache."""
    rows = tmp / "cache-rows.jsonl"
    _write_rows(rows, args.cache_rows)
    n = args.cache_rows
    print(
        f"\ncached re-run: {n:,} rows; the first run (at {args.latency_ms} ms latency, "
        f"concurrency {args.concurrency}) stores the answers, the re-run changes the outputs"
    )
    plain = _run_worker("ours", args, rows, tmp / "cache-plain.jsonl", True)
    fill = _run_worker("cached", args, rows, tmp / "cache-first.jsonl", True)
    rerun = _run_worker("cached-rerun", args, rows, tmp / "cache-rerun.jsonl", True)
    floor = _run_worker("cached-floor", args, rows, tmp / "cache-floor.jsonl", True)
    # The real CLI, timed from its start to its exit (Python start-up and imports included).
    config = tmp / "cache-conn.json"
    query = f"?latency_ms={args.latency_ms}" if args.latency_ms else ""
    config.write_text(
        json.dumps(
            {
                "url": f"http://127.0.0.1:{args.port}/v1/chat/completions{query}",
                "api_key": "sk-bench",
                "request_format": json.dumps(
                    {"model": MODEL, "messages": [{"role": "user", "content": "{{text}}"}]}
                ),
                "response_format": "{}",
            }
        )
    )
    outputs = tmp / "cache-outputs.json"
    outputs.write_text(json.dumps(_RERUN_OUTPUTS))
    command = [
        sys.executable,
        "-m",
        "openai_compat",
        "batch",
        "--config",
        str(config),
        "--input",
        str(rows),
        "--output",
        str(tmp / "cache-cli.jsonl"),
        "--outputs",
        str(outputs),
        "--cache",
        f"{rows}.cache.sqlite",
        "--rate",
        "off",
        "--concurrency",
        str(args.concurrency),
        "--quiet",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    cli_wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the cached CLI run failed:\n{done.stderr}")
    print(f"{'peer':<46} {'wall s':>8} {'rows/s':>8} {'sent':>7} {'cached':>7}")
    plain["requests"], plain["cached"] = n, 0
    for label, result in (
        ("first run without a cache (uvloop)", plain),
        ("first run, answers stored (uvloop)", fill),
        ("re-run, other outputs, all cached (uvloop)", rerun),
        ("floor: read, look up, write; no engine", floor),
    ):
        wall = result["wall"]
        print(
            f"{label:<46} {wall:>8.2f} {n / wall:>8.0f} {result['requests']:>7} "
            f"{result['cached']:>7}"
        )
    cli_label = "re-run, the CLI process from start to exit"
    print(f"{cli_label:<46} {cli_wall:>8.2f} {n / cli_wall:>8.0f}")
    verdict = "PASS" if rerun["wall"] < 2.0 and rerun["requests"] == 0 else "FAIL"
    print(
        f"  [{verdict}] re-run {rerun['wall']:.2f} s (target < 2 s), "
        f"{rerun['wall'] / fill['wall']:.3f}x the first run, {rerun['wall'] / floor['wall']:.1f}x "
        f"the floor, {rerun['requests']} requests sent"
    )


_WORKERS = {
    "ours": _ours,
    "sdk": _sdk,
    "floor": _floor,
    "cached": _cached,
    "cached-rerun": _cached_rerun,
    "cached-floor": _cached_floor,
}


def _worker(args: argparse.Namespace) -> None:
    run = _WORKERS[args.worker]
    coro = run(args.port, args.latency_ms, args.rows_file, args.out_file, args.concurrency)
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(coro)
    else:
        result = asyncio.run(coro)
    print(json.dumps(result))


def _run_worker(
    kind: str, args: argparse.Namespace, rows: Path, out: Path, uvloop: bool
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--port",
        str(args.port),
        "--latency-ms",
        str(args.latency_ms),
        "--rows-file",
        str(rows),
        "--out-file",
        str(out),
        "--concurrency",
        str(args.concurrency),
    ] + (["--uvloop"] if uvloop else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _memory(args: argparse.Namespace, tmp: Path) -> tuple[float, float, int]:
    rows = tmp / "million.jsonl"
    _write_rows(rows, args.memory_rows)
    config = tmp / "conn.json"
    config.write_text(
        json.dumps(
            {
                "url": f"http://127.0.0.1:{args.port}/v1/chat/completions",
                "api_key": "sk-bench",
                "request_format": json.dumps(
                    {"model": MODEL, "messages": [{"role": "user", "content": "{{text}}"}]}
                ),
                "response_format": "{}",
            }
        )
    )
    out = tmp / "million-out.jsonl"
    command = [
        sys.executable,
        "-m",
        "openai_compat",
        "batch",
        "--config",
        str(config),
        "--input",
        str(rows),
        "--output",
        str(out),
        "--concurrency",
        str(args.concurrency),
        "--rate",
        "off",
        "--quiet",
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the 1,000,000-row batch failed")
    with out.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return usage.ru_maxrss / 1024, wall, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--cache-rows", type=int, default=20_000)
    parser.add_argument("--worker", choices=sorted(_WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    parser.add_argument("--out-file", help=argparse.SUPPRESS)
    parser.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    args.port = _free_port()
    server = _start_server(args.port)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-batch-") as name:
            tmp = Path(name)
            if args.rows:
                rows = tmp / "rows.jsonl"
                _write_rows(rows, args.rows)
                ideal = args.rows * args.latency_ms / 1000 / args.concurrency
                print(
                    f"batch throughput: {args.rows:,} rows, {args.latency_ms} ms latency, "
                    f"concurrency {args.concurrency}, no rate limit; ideal {ideal:.2f} s"
                )
                # Warm the server (first connections, caches) so no peer pays for it.
                _run_worker(
                    "ours",
                    argparse.Namespace(**{**vars(args), "latency_ms": 0}),
                    rows,
                    tmp / "warm.jsonl",
                    False,
                )
                print(f"{'peer':<44} {'wall s':>8} {'x ideal':>8} {'rows/s':>8} {'ok':>7}")
                runs = [
                    ("openai-compat batch (uvloop: the CLI's loop)", "ours", True),
                    ("openai-compat batch (asyncio)", "ours", False),
                    ("AsyncOpenAI + Semaphore(64) (asyncio)", "sdk", False),
                    ("floor: bare aiohttp loop (uvloop)", "floor", True),
                ]
                for label, kind, uvloop in runs:
                    result = _run_worker(kind, args, rows, tmp / f"{kind}.jsonl", uvloop)
                    wall = result["wall"]
                    print(
                        f"{label:<44} {wall:>8.2f} {wall / ideal:>8.2f} "
                        f"{args.rows / wall:>8.0f} {result['ok']:>7}"
                    )
            if args.cache_rows:
                _cached_rerun_bench(args, tmp)
            if args.memory_rows:
                peak_mb, wall, lines = _memory(args, tmp)
                print(
                    f"\nbatch memory: {args.memory_rows:,} rows, no latency: peak RSS "
                    f"{peak_mb:.0f} MB (target <= 150 MB), {wall:.0f} s, {lines:,} result lines"
                )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
