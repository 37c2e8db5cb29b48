"""What the application adds on top of the connector, against the local scripted server.

1. Latency: ``POST /api/v1/connectors/{id}/execute_model`` (JSON answer) through the app vs
   ``OpenAICompatibleConnector.arun_model`` called directly, same payload, same local server,
   one request at a time. Added latency = app minus direct, per percentile (targets: p50 <= 1 ms,
   p99 <= 2.5 ms; app CPU per request <= 1.5x the connector's).
2. Load: 100 concurrent streamed executions (``Accept: text/event-stream``) through the app;
   every one must end with a ``done`` event and the full answer (zero errors).
3. Runs: a 20,000-row run through the application (upload, ``POST .../runs``, executed by
   the app, results in its database) against the scripted server at 20 ms latency,
   concurrency 64, vs ``openai-compat batch`` on the same rows, in the same run (target:
   the app within 1.2x the CLI's wall time), while ``/health`` is polled every 10 ms (target
   p99 under 50 ms). ``--run-rows 0`` skips it.

The app runs as ``openai-compat serve`` in its own process (SQLite in a temporary data
directory) and the scripted server as ``openai-compat mock-server``, each in its own
process, as they run for real. Usage: ``python bench/app.py [--requests N] [--concurrency C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from openai_compat import OpenAICompatibleConnector

TOKEN = "bench-token"
PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "How fast is this?"}]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], ready_path: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "OPENAI_COMPAT_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "openai_compat", *args, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + ready_path, timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{args[0]} did not start")


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in ms (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _config(url: str, stream: bool) -> dict[str, Any]:
    return {
        "url": url,
        "api_key": "sk-bench",
        "is_stream": stream,
        "request_format": json.dumps(PAYLOAD),
        "response_format": "{}",
    }


async def _latency(
    app_url: str, mock_url: str, n: int, app_pid: int
) -> tuple[list[float], list[float], float, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=app_url, headers=headers, timeout=30) as client:
        created = await client.post(
            "/api/v1/connectors", json={"name": "bench", "configuration": _config(mock_url, False)}
        )
        cid = created.json()["id"]
        async with httpx.AsyncClient() as shared:
            connector = OpenAICompatibleConnector(client=shared)
            config = _config(mock_url, False)
            direct: list[float] = []
            via_app: list[float] = []
            cpu_start = 0.0
            direct_cpu = 0.0
            # The first 20 of each warm up connections and caches.
            for i in range(n + 20):
                if i == 20:
                    cpu_start = _cpu_ms(app_pid)
                started = time.perf_counter()
                cpu_before = time.process_time()
                messages = [m async for m in connector.arun_model(config, PAYLOAD)]
                took_direct = time.perf_counter() - started
                if i >= 20:
                    direct_cpu += (time.process_time() - cpu_before) * 1000
                assert messages and messages[0].type == "record", messages
                started = time.perf_counter()
                response = await client.post(
                    f"/api/v1/connectors/{cid}/execute_model", json={"payload": PAYLOAD}
                )
                took_app = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if i >= 20:
                    direct.append(took_direct * 1000)
                    via_app.append(took_app * 1000)
            cpu_per_request = (_cpu_ms(app_pid) - cpu_start) / n
    return direct, via_app, cpu_per_request, direct_cpu / n


async def _one_stream(
    client: httpx.AsyncClient, cid: int, expected: str
) -> tuple[bool, float, str]:
    started = time.perf_counter()
    text, done, answer = [], None, None
    try:
        async with client.stream(
            "POST",
            f"/api/v1/connectors/{cid}/execute_model",
            json={"payload": PAYLOAD},
            headers={"Accept": "text/event-stream"},
        ) as response:
            if response.status_code != 200:
                return False, 0.0, f"HTTP {response.status_code}"
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if event == "record" and data.get("choices"):
                        text.append(data["choices"][0]["delta"].get("content") or "")
                    elif event == "answer":
                        answer = data["choices"][0]["message"]["content"]
                    elif event == "done":
                        done = data
    except httpx.HTTPError as exc:
        return False, 0.0, type(exc).__name__
    took = (time.perf_counter() - started) * 1000
    ok = done is not None and done["ok"] and "".join(text) == expected and answer == expected
    return ok, took, "" if ok else f"done={done} text={''.join(text)!r}"


async def _load(app_url: str, mock_url: str, concurrency: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=app_url, headers=headers, timeout=60, limits=limits
    ) as client:
        created = await client.post(
            "/api/v1/connectors",
            json={"name": "bench-stream", "configuration": _config(mock_url, True)},
        )
        cid = created.json()["id"]
        expected = "You said: " + PAYLOAD["messages"][0]["content"]
        await _one_stream(client, cid, expected)
        started = time.perf_counter()
        results = await asyncio.gather(
            *(_one_stream(client, cid, expected) for _ in range(concurrency))
        )
        wall = time.perf_counter() - started
    times = [t for ok, t, _ in results if ok]
    errors = [why for ok, _, why in results if not ok]
    return {"wall_s": wall, "times": times, "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--run-rows", type=int, default=20_000, help="0: no run benchmark")
    parser.add_argument("--run-repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Each server in its own process, as in real use: the mock model, then the app.
        mock, mock_base = _start(["mock-server"], "/v1/models")
        app, app_url = _start(["serve", "--data-dir", str(Path(tmp) / "data")], "/health")
        mock_url = mock_base + "/v1/chat/completions"
        try:
            direct, via_app, cpu, direct_cpu = asyncio.run(
                _latency(app_url, mock_url, args.requests, app.pid)
            )
            load = asyncio.run(_load(app_url, mock_url, args.concurrency))
        finally:
            for proc in (app, mock):
                proc.terminate()
                proc.wait(10)
    print(f"execute_model latency, {args.requests} sequential non-streamed requests (ms)")
    print(f"{'':24}{'p50':>9}{'p90':>9}{'p99':>9}")
    for name, values in (("connector directly", direct), ("through the app", via_app)):
        print(f"{name:24}" + "".join(f"{_pct(values, q):9.2f}" for q in (0.5, 0.9, 0.99)))
    added = [_pct(via_app, q) - _pct(direct, q) for q in (0.5, 0.9, 0.99)]
    print(f"{'added by the app':24}" + "".join(f"{a:9.2f}" for a in added))
    print(
        f"CPU time per request: connector directly {direct_cpu:.2f} ms, app process "
        f"{cpu:.2f} ms (the connector's share included): {cpu / direct_cpu:.2f}x"
    )
    errors = len(load["errors"])
    print("targets, side by side:")
    for name, value, target, unit in (
        ("added latency p50", added[0], 1.0, " ms"),
        ("added latency p99", added[2], 2.5, " ms"),
        ("app CPU per request vs the connector's", cpu / direct_cpu, 1.5, "x"),
        (f"errors of {args.concurrency} concurrent streams", float(errors), 0.0, ""),
    ):
        verdict = "PASS" if value <= target else "MISS"
        print(f"  [{verdict}] {name}: {value:.2f}{unit} (target <= {target:g}{unit})")
    load_avg = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load_avg:.1f} during the run")
    print()
    times = load["times"]
    print(f"{args.concurrency} concurrent streamed executions through the app (SSE)")
    print(f"  errors: {len(load['errors'])}   wall: {load['wall_s']:.2f} s")
    if times:
        print(
            f"  per request: p50 {statistics.median(times):.1f} ms, "
            f"p99 {_pct(times, 0.99):.1f} ms, max {max(times):.1f} ms"
        )
    for why in load["errors"][:5]:
        print(f"  error: {why}")
    runs_ok = _bench_runs(args.run_rows, args.run_repeats) if args.run_rows else True
    return 0 if not load["errors"] and runs_ok else 1


# -- 3. runs through the application vs the CLI ---------------------------------------------
RUN_LATENCY_MS = 20
RUN_CONCURRENCY = 64


def _run_config(mock_base: str) -> dict[str, Any]:
    return {
        "url": f"{mock_base}/v1/chat/completions?latency_ms={RUN_LATENCY_MS}",
        "api_key": "sk-bench",
        "is_stream": False,
        "request_format": json.dumps(
            {"model": "mock-model", "messages": [{"role": "user", "content": "{{body}}"}]}
        ),
        "response_format": json.dumps({"choices": [{"message": {"content": "x"}}]}),
    }


def _cli_run(config_path: Path, rows: Path, out: Path) -> float:
    """``openai-compat batch`` on the rows: its own wall time (the summary's), in s."""
    out.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "openai_compat", "batch", "--config", str(config_path),
        "--input", str(rows), "--output", str(out), "--key", "id", "--rate", "off",
        "--concurrency", str(RUN_CONCURRENCY), "--progress", "off",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the CLI failed: {done.stderr[-2000:]}")
    found = re.search(r"([0-9.]+) s wall", done.stderr)
    if found is None:
        raise SystemExit(f"no wall time in the CLI's summary: {done.stderr[-500:]}")
    return float(found.group(1))


def _health_poller(app_url: str, stop: threading.Event, times: list[float]) -> None:
    with httpx.Client(base_url=app_url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)


class _HealthWatch:
    """Polls ``/health`` every 10 ms on a thread (during both peers' runs, so that its
    load on the machine falls on both alike); the latencies while it ran."""

    def __init__(self, app_url: str) -> None:
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_health_poller, args=(app_url, self._stop, self.times)
        )

    def __enter__(self) -> _HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _app_run(client: httpx.Client, cid: int, upload_id: str, n: int) -> float:
    """One run through the app: its wall time, created to finished (the app's clock)."""
    created = client.post(
        f"/api/v1/connectors/{cid}/runs",
        json={
            "input": {"upload_id": upload_id},
            "key": "id",
            "rate": None,
            "concurrency": RUN_CONCURRENCY,
        },
    )
    created.raise_for_status()
    run_id = created.json()["id"]
    while True:
        view = client.get(f"/api/v1/runs/{run_id}").json()
        if view["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    if view["status"] != "succeeded" or view["ok"] != n:
        raise SystemExit(f"the app's run did not succeed: {view}")
    wall = datetime.fromisoformat(view["finished_at"]) - datetime.fromisoformat(view["created_at"])
    return wall.total_seconds()


def _bench_runs(n: int, repeats: int) -> bool:
    """The app's runs vs the CLI, side by side; True when both targets are met."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        rows = base / "rows.jsonl"
        with rows.open("w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"r{i}", "body": f"row {i}: how fast is this?"}) + "\n")
        mock, mock_base = _start(["mock-server"], "/v1/models")
        app, app_url = _start(["serve", "--data-dir", str(base / "data")], "/health")
        config = _run_config(mock_base)
        config_path = base / "config.json"
        config_path.write_text(json.dumps(config))
        cli_walls: list[float] = []
        app_walls: list[float] = []
        health: list[float] = []
        idle_during_cli: list[float] = []
        try:
            with httpx.Client(
                base_url=app_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
            ) as client:
                cid = client.post(
                    "/api/v1/connectors", json={"name": "bench-runs", "configuration": config}
                ).json()["id"]
                with rows.open("rb") as f:
                    upload = client.post("/api/v1/uploads", files={"file": ("rows.jsonl", f)})
                upload.raise_for_status()
                upload_id = upload.json()["id"]
                # Alternated, so that the machine's noise falls on both alike.
                for _ in range(repeats):
                    with _HealthWatch(app_url) as watch:
                        cli_walls.append(_cli_run(config_path, rows, base / "cli.jsonl"))
                    idle_during_cli += watch.times
                    with _HealthWatch(app_url) as watch:
                        app_walls.append(_app_run(client, cid, upload_id, n))
                    health += watch.times
        finally:
            for proc in (app, mock):
                proc.terminate()
                proc.wait(10)
    cli_s, app_s = statistics.median(cli_walls), statistics.median(app_walls)
    ratio = app_s / cli_s
    p99 = _pct(health, 0.99)
    ideal = n * RUN_LATENCY_MS / 1000 / RUN_CONCURRENCY
    print()
    print(
        f"runs: {n:,} rows, {RUN_LATENCY_MS} ms latency, concurrency {RUN_CONCURRENCY} "
        f"(ideal {ideal:.1f} s), median of {repeats}, alternated"
    )
    print(f"{'':28}{'wall s':>9}{'rows/s':>9}{'ratio':>8}")
    print(f"{'openai-compat batch (CLI)':28}{cli_s:9.2f}{n / cli_s:9.0f}{1.0:8.2f}")
    print(f"{'run through the app':28}{app_s:9.2f}{n / app_s:9.0f}{ratio:8.2f}")
    print(
        "  each: CLI "
        + ", ".join(f"{w:.2f}" for w in cli_walls)
        + " s; app "
        + ", ".join(f"{w:.2f}" for w in app_walls)
        + " s"
    )
    print(
        f"/health during the runs: {len(health)} requests, p50 {_pct(health, 0.5):.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(health):.1f} ms (while the CLI ran: p99 {_pct(idle_during_cli, 0.99):.1f} ms)"
    )
    met = ratio <= 1.2 and p99 < 50
    print(
        f"targets: app <= 1.2x the CLI -> {'OK' if ratio <= 1.2 else 'ABOVE TARGET'}; "
        f"/health p99 < 50 ms -> {'OK' if p99 < 50 else 'ABOVE TARGET'}"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    return met


if __name__ == "__main__":
    raise SystemExit(main())
