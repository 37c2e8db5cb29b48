"""What the application adds on top of the connector, against the local scripted server.

1. Latency: ``POST /api/v1/connectors/{id}/execute_model`` (JSON answer) through the app vs
   ``OpenAICompatibleConnector.arun_model`` called directly, same payload, same local server,
   one request at a time. Added latency = app minus direct, per percentile (targets: p50 <= 1 ms,
   p99 <= 2.5 ms; app CPU per request <= 1.5x the connector's).
2. Load: 100 concurrent streamed executions (``Accept: text/event-stream``) through the app;
   every one must end with a ``done`` event and the full answer (zero errors).

The app runs as ``openai-compat serve`` in its own process (SQLite in a temporary data
directory) and the scripted server as ``openai-compat mock-server``, each in its own
process, as they run for real. Usage: ``python bench/app.py [--requests N] [--concurrency C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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
    print("targets (issue 14), side by side:")
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
    return 0 if not load["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
