"""Batch throughput and memory, side by side with the official SDK.

    python bench/batch.py                      # 20,000 rows, 20 ms latency, concurrency 64
    python bench/batch.py --memory-rows 0      # skip the 1,000,000-row memory run
    python bench/batch.py --rows 0             # the databases, the cached re-run, the memory run
    python bench/batch.py --rows 0 --memory-rows 0 --cache-rows 0   # only the database runs
    python bench/batch.py --peers ours,floor --db-rows 0 --cache-rows 0 --memory-rows 0 \
        --repeat 5 --old-src /tmp/old/src    # only the CPU comparison, and the code before
    python bench/batch.py --peers ours,traced,floor --db-rows 0 --cache-rows 0 \
        --memory-rows 0 --old-src /tmp/old/src   # tracing on (OTLP to a loopback receiver)

1. Throughput: 20,000 rows against the scripted server (``openai-compat mock-server``, in its
   own process) answering after 20 ms, at concurrency 64 with no rate limit. The ideal wall
   time is rows x latency / concurrency. Peers: ``openai-compat batch``'s runner (the same
   code as the CLI, timed from the first row to the last result line) and the usual SDK loop:
   ``AsyncOpenAI`` under ``asyncio.Semaphore(64)``, results written to a file too. Each runs
   in a fresh process. Last, the floor: a bare aiohttp loop on uvloop that only posts each
   row and reads the answer (no mapping, retries, extraction or output file), to show what
   the machine and the server allow any Python client.
2. Databases: the same rows from a table into a table, SQLite to SQLite (one file) and
   PostgreSQL to PostgreSQL (one database; a throw-away cluster unless ``--pg-url``), at the
   same latency and concurrency, each against a file-to-file run of this run (``--key id``
   everywhere): best wall of ``--db-repeat`` rounds as a ratio to the file's (target 1.1x).
3. The cached re-run: 20,000 rows run once with ``--cache`` (answers stored), then again with
   other output fields: every answer comes from the cache and nothing is sent (target under
   2 s), beside the first run, and the real CLI process timed from start to exit.
4. Memory: ``openai-compat batch`` (the real CLI, in a child process) over a 1,000,000-row
   JSON Lines file against the server with no latency; peak RSS from ``wait4``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
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
    # Imported before the clock starts, as the floor imports aiohttp before its own.
    from openai_compat._transports import AiohttpTransport  # noqa: F401
    from openai_compat.batch import arun_batch_to_file

    query = f"?latency_ms={latency_ms}" if latency_ms else ""
    config = {
        "url": f"http://127.0.0.1:{port}/v1/chat/completions{query}",
        "api_key": "sk-bench",
        "request_format": {"model": MODEL, "messages": [{"role": "user", "content": "{{text}}"}]},
        "response_format": {"choices": [{"message": {"content": "x"}}]},
    }
    started, cpu = time.perf_counter(), time.process_time()
    summary = await arun_batch_to_file(
        config, rows, out, mode="overwrite", concurrency=concurrency, rate=None
    )
    return {
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "ok": summary.ok,
        "failed": summary.failed,
    }


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

    started, cpu = time.perf_counter(), time.process_time()
    with open(rows) as source, open(out, "w") as sink:
        await asyncio.gather(*(one(i, json.loads(line), sink) for i, line in enumerate(source)))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await client.close()
    return {"wall": wall, "cpu": cpu, "ok": ok, "failed": failed}


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

    started, cpu = time.perf_counter(), time.process_time()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        with open(rows) as source:
            await asyncio.gather(*(one(session, line) for line in source))
    return {
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "ok": ok,
        "failed": failed,
    }


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


async def _traced(
    port: int, latency_ms: int, rows: str, out: str, concurrency: int
) -> dict[str, Any]:
    # Tracing on as the CLI turns it on (OTEL_EXPORTER_OTLP_ENDPOINT: the loopback receiver,
    # the SDK's default batch span processor); the last flush is counted in the CPU too.
    from openai_compat.observability import configure_from_env, shutdown

    if not configure_from_env():
        raise SystemExit("tracing did not start: is the [otel] extra installed?")
    result = await _ours(port, latency_ms, rows, out, concurrency)
    cpu = time.process_time()
    shutdown()
    result["cpu"] += time.process_time() - cpu
    return result


def _otlp_sink() -> None:
    """A loopback OTLP/HTTP receiver that reads each export and answers 200 (`--otlp-sink`)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


_WORKERS = {
    "ours": _ours,
    "traced": _traced,
    "sdk": _sdk,
    "floor": _floor,
    "cached": _cached,
    "cached-rerun": _cached_rerun,
    "cached-floor": _cached_floor,
}


# -- databases in and out: the same run from a table into a table ------------------------------

_DB_QUERY = "SELECT id, text FROM tickets"


def _bench_config(port: int, latency_ms: int) -> dict[str, Any]:
    query = f"?latency_ms={latency_ms}" if latency_ms else ""
    return {
        "url": f"http://127.0.0.1:{port}/v1/chat/completions{query}",
        "api_key": "sk-bench",
        "request_format": {"model": MODEL, "messages": [{"role": "user", "content": "{{text}}"}]},
        "response_format": {"choices": [{"message": {"content": "x"}}]},
    }


async def _keyed_file(
    port: int, latency_ms: int, rows: str, out: str, concurrency: int
) -> dict[str, Any]:
    """File to file with ``--key id``: the baseline of the database runs."""
    from openai_compat.batch import arun_batch_to_file

    started = time.perf_counter()
    summary = await arun_batch_to_file(
        _bench_config(port, latency_ms), rows, out, mode="overwrite", key="id",
        concurrency=concurrency, rate=None,
    )  # fmt: skip
    return {"wall": time.perf_counter() - started, "ok": summary.ok, "failed": summary.failed}


async def _table_to_table(
    port: int, latency_ms: int, url: str, _out: str, concurrency: int
) -> dict[str, Any]:
    """The rows of a query on ``url`` into the table ``results`` of the same database."""
    from openai_compat.batch import arun_batch_to_table

    started = time.perf_counter()
    summary = await arun_batch_to_table(
        _bench_config(port, latency_ms), url, url, query=_DB_QUERY, output_table="results",
        key="id", concurrency=concurrency, rate=None,
    )  # fmt: skip
    wall = time.perf_counter() - started
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        written = conn.execute(text("SELECT count(*) FROM results")).scalar()
    engine.dispose()
    return {"wall": wall, "ok": summary.ok, "failed": summary.failed, "written": written}


_WORKERS["keyed-file"] = _keyed_file
_WORKERS["table"] = _table_to_table


def _drop_results(url: str) -> None:
    """Each run starts without the results table, as each file run starts an empty file."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS results"))
    engine.dispose()


def _seed_table(url: str, n: int) -> None:
    from sqlalchemy import create_engine, text

    _drop_results(url)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS tickets"))
        conn.execute(text("CREATE TABLE tickets (id INTEGER PRIMARY KEY, text TEXT)"))
        conn.execute(
            text("INSERT INTO tickets (id, text) VALUES (:id, :text)"),
            [{"id": i, "text": f"Summarise ticket {i}: the printer is on fire"} for i in range(n)],
        )
    engine.dispose()


def _postgres() -> Any:
    """The test suite's throw-away PostgreSQL cluster on 127.0.0.1 (Debian's package)."""
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.app_support import PostgresCluster

    return PostgresCluster()


def _databases(args: argparse.Namespace, tmp: Path) -> None:
    """SQLite to SQLite and PostgreSQL to PostgreSQL against file to file, in this run."""
    n = args.db_rows
    rows = tmp / "db-rows.jsonl"
    _write_rows(rows, n)
    sqlite_url = f"sqlite:///{tmp / 'bench.db'}"
    _seed_table(sqlite_url, n)
    cluster = None if args.pg_url else _postgres()
    try:
        pg_url = args.pg_url or cluster.create_database("bench_batch")
        _seed_table(pg_url, n)
        ideal = n * args.latency_ms / 1000 / args.concurrency
        print(
            f"\nbatch databases: {n:,} rows, {args.latency_ms} ms latency, concurrency "
            f"{args.concurrency}, --key id, uvloop; ideal {ideal:.2f} s; {args.db_repeat} rounds"
        )
        peers = [
            ("file -> file (jsonl)", "keyed-file", str(rows), str(tmp / "db-out.jsonl")),
            ("SQLite -> SQLite (same file)", "table", sqlite_url, ""),
            ("PostgreSQL -> PostgreSQL (same db)", "table", pg_url, ""),
        ]
        walls: dict[str, list[float]] = {label: [] for label, *_ in peers}
        cpus: dict[str, list[float]] = {label: [] for label, *_ in peers}
        for _ in range(args.db_repeat):
            for label, kind, source, out in peers:
                if kind == "table":
                    _drop_results(source)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                # URLs stay strings (a Path would fold sqlite:/// into sqlite:/).
                result = _run_worker(kind, args, source, out or source, True)  # type: ignore[arg-type]
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                expected = result.get("written", result["ok"])
                if result["ok"] != n or expected != n:
                    raise SystemExit(f"{label}: {result} (expected {n} rows)")
                walls[label].append(result["wall"])
                cpus[label].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
        base = peers[0][0]

        def ratio(values: dict[str, list[float]], label: str) -> float:
            # The median of the per-round ratios: a round's load hits its peers alike.
            return statistics.median(
                v / b for v, b in zip(values[label], values[base], strict=True)
            )

        print(f"{'peer':<36} {'wall s (rounds)':>24} {'x file':>7} {'cpu s':>7} {'x file':>7}")
        for label, *_ in peers:
            runs = " ".join(f"{w:.2f}" for w in walls[label])
            print(
                f"{label:<36} {runs:>24} {ratio(walls, label):>7.2f} "
                f"{statistics.median(cpus[label]):>7.2f} {ratio(cpus, label):>7.2f}"
            )
        for label, *_ in peers[1:]:
            verdict = "PASS" if ratio(walls, label) <= 1.10 else "MISS"
            print(f"  [{verdict}] {label}: wall {ratio(walls, label):.2f}x file (target <= 1.10)")
        print(
            "  (wall: median of per-round ratios; cpu: the batch process's user+sys, the "
            "database server's not counted)"
        )
    finally:
        if cluster is not None:
            cluster.stop()


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
    kind: str, args: argparse.Namespace, rows: Path, out: Path, uvloop: bool, src: str = ""
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
    # Another copy of the package (--old-src): the same run on the code before a change.
    env = {**os.environ, "PYTHONPATH": src} if src else None
    if kind == "traced":
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp_endpoint,
            "OTEL_SERVICE_NAME": "bench",
        }
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
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


FLOOR = "floor: bare aiohttp loop (uvloop)"
OURS = "openai-compat batch (uvloop: the CLI's loop)"
OLD = "openai-compat batch, --old-src (uvloop)"
TRACED = "openai-compat batch, tracing on (uvloop)"


def _report(results: dict[str, list[dict[str, Any]]], rows: int, ideal: float, repeat: int) -> None:
    print(
        f"{'peer':<46} {'wall s':>7} {'x ideal':>7} {'rows/s':>7} {'ok':>6} "
        f"{'CPU us/row':>10} {'CPU x floor':>11} {'wall x floor':>12}"
    )
    floor = results[FLOOR]
    for label, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        cpu_ratio = statistics.median(r["cpu"] / f["cpu"] for r, f in zip(runs, floor, strict=True))
        wall_ratio = statistics.median(
            r["wall"] / f["wall"] for r, f in zip(runs, floor, strict=True)
        )
        ok = min(r["ok"] for r in runs)
        print(
            f"{label:<46} {wall:>7.2f} {wall / ideal:>7.2f} {rows / wall:>7.0f} {ok:>6} "
            f"{cpu / rows * 1e6:>10.0f} {cpu_ratio:>10.2f}x {wall_ratio:>11.2f}x"
        )
    ours = results[OURS]
    cpu_ratio = statistics.median(r["cpu"] / f["cpu"] for r, f in zip(ours, floor, strict=True))
    wall_ratio = statistics.median(r["wall"] / f["wall"] for r, f in zip(ours, floor, strict=True))
    print(
        f"client CPU = this worker process only (time.process_time, the server is another "
        f"process); medians over {repeat} interleaved round(s)"
    )
    checks = [
        ("CPU per row, ours (uvloop) vs the floor", cpu_ratio, 1.15),
        ("wall, ours (uvloop) vs the floor", wall_ratio, 1.05),
    ]
    for label, name, target in (
        (TRACED, "CPU per row, tracing on vs off (OTLP to a loopback receiver)", 1.10),
        (OLD, "CPU per row, ours vs --old-src", 1.02),
    ):
        if label in results:
            ratio = statistics.median(
                r["cpu"] / o["cpu"] for r, o in zip(results[label], ours, strict=True)
            )
            if label == OLD:
                ratio = 1 / ratio
            checks.append((name, ratio, target))
    for name, ratio, target in checks:
        verdict = "PASS" if ratio <= target else "MISS"
        print(f"  [{verdict}] {name}: {ratio:.2f}x (target <= {target}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--cache-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of the peers")
    parser.add_argument(
        "--peers", help="only these, comma-separated: ours, asyncio, sdk, floor (default: all)"
    )
    parser.add_argument(
        "--old-src",
        help="also run ours from this copy of src/ (e.g. the code before a change), in turn",
    )
    parser.add_argument("--worker", choices=sorted(_WORKERS), help=argparse.SUPPRESS)
    parser.add_argument(
        "--db-rows", type=int, default=20_000, help="rows of the database runs (0: skip them)"
    )
    parser.add_argument("--db-repeat", type=int, default=2, help="rounds of the database runs")
    parser.add_argument(
        "--pg-url", help="a PostgreSQL URL to use (default: a throw-away cluster on 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    parser.add_argument("--out-file", help=argparse.SUPPRESS)
    parser.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--otlp-sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.otlp_sink:
        _otlp_sink()
        return
    if args.worker:
        _worker(args)
        return

    args.port = _free_port()
    server = _start_server(args.port)
    sink: subprocess.Popen[str] | None = None
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
                peers = {
                    "ours": (OURS, "ours", True),
                    "old": (OLD, "ours", True),
                    "traced": (TRACED, "traced", True),
                    "asyncio": ("openai-compat batch (asyncio)", "ours", False),
                    "sdk": ("AsyncOpenAI + Semaphore(64) (asyncio)", "sdk", False),
                    "floor": (FLOOR, "floor", True),
                }
                wanted = args.peers.split(",") if args.peers else list(peers)
                if not args.old_src:
                    del peers["old"]
                if "traced" in wanted:
                    sink = subprocess.Popen(
                        [sys.executable, __file__, "--otlp-sink"],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    assert sink.stdout is not None
                    args.otlp_endpoint = f"http://127.0.0.1:{sink.stdout.readline().strip()}"
                runs = [
                    peers[name]
                    for name in peers
                    if name in wanted or name in ("ours", "floor", "old")
                ]
                # Rounds interleave the peers, so drifts in machine load hit all alike; each
                # figure is the median over rounds, each ratio the median of per-round ratios.
                results: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in runs}
                for _ in range(args.repeat):
                    for label, kind, uvloop in runs:
                        src = args.old_src if label == OLD else ""
                        out = tmp / f"{kind}{'-old' if src else ''}.jsonl"
                        results[label].append(_run_worker(kind, args, rows, out, uvloop, src))
                _report(results, args.rows, ideal, args.repeat)
            if args.db_rows:
                _databases(args, tmp)
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
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)


if __name__ == "__main__":
    main()
