"""OpenAI's Batch API in the application vs ``openai-compat batch``, on the same file.

An OpenAI batch file of ``--lines`` lines (10,000) against the scripted server at 20 ms
latency, concurrency 64: the wall time from ``client.batches.create`` to the batch being
``completed`` (the official openai SDK, polling every 100 ms), beside the CLI's own wall
time on the same file (``openai-compat batch --input requests.jsonl --output-format
openai-batch``), alternated ``--repeats`` times in the same run. Target: the Batch API
within 1.15x the CLI. The app runs as ``openai-compat serve`` (SQLite in a temporary data
directory) and the scripted server as ``openai-compat mock-server``, each in its own
process. Usage: ``python bench/batches_api.py [--lines N] [--repeats R] [--phases]``.

``--poll S`` sets the client's poll interval (0.1 s). ``--phases`` also prints where each batch's wall went, from its run's own timestamps
(``/api/v1/runs``): the check of the file until its run is created, the wait until the run is
claimed, the run itself, and from the run's end until the client saw ``completed``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

TOKEN = "bench-token-0123456789"
LATENCY_MS = 20
CONCURRENCY = 64
TARGET = 1.15


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


def _config(mock_base: str) -> dict[str, Any]:
    return {
        "url": f"{mock_base}/v1/chat/completions?latency_ms={LATENCY_MS}",
        "api_key": "sk-bench",
        "is_stream": False,
        "request_format": json.dumps(
            {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}
        ),
        "response_format": json.dumps({"choices": [{"message": {"content": "x"}}]}),
    }


def _cli_run(config: Path, requests: Path, base: Path) -> float:
    """``openai-compat batch`` on the file: its own wall time (the summary's), in s."""
    out, err = base / "cli-out.jsonl", base / "cli-err.jsonl"
    out.unlink(missing_ok=True)
    err.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "openai_compat", "batch", "--config", str(config),
        "--input", str(requests), "--output", str(out), "--error-file", str(err),
        "--output-format", "openai-batch", "--rate", "off",
        "--concurrency", str(CONCURRENCY), "--progress", "off",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the CLI failed: {done.stderr[-2000:]}")
    found = re.search(r"([0-9.]+) s wall", done.stderr)
    if found is None:
        raise SystemExit(f"no wall time in the CLI's summary: {done.stderr[-500:]}")
    return float(found.group(1))


def _api_run(sdk: OpenAI, file_id: str, lines: int, poll_s: float) -> tuple[float, float]:
    """A batch of the file through the application: wall from create to completed, in s,
    and when it was created (Unix time)."""
    created = time.time()
    started = time.perf_counter()
    batch = sdk.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"connector": "bench", "concurrency": str(CONCURRENCY)},
    )
    while batch.status not in ("completed", "failed", "cancelled", "expired"):
        time.sleep(poll_s)
        batch = sdk.batches.retrieve(batch.id)
    wall = time.perf_counter() - started
    counts = batch.request_counts
    if batch.status != "completed" or counts is None or counts.completed != lines:
        raise SystemExit(f"the batch did not complete every line: {batch}")
    return wall, created


def _phases(client: httpx.Client, created: float, wall: float) -> str:
    """Where a batch's wall went, from its run's timestamps (the newest run is its)."""
    run = client.get("/api/v1/runs", params={"limit": 1}).json()["data"][0]

    def at(name: str) -> float:
        return datetime.fromisoformat(run[name]).astimezone(UTC).timestamp() - created

    made, began, ended = at("created_at"), at("started_at"), at("finished_at")
    return (
        f"check {made:.2f} s, claim {began - made:.2f} s, run {ended - began:.2f} s, "
        f"run end -> seen completed {wall - ended:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--phases", action="store_true", help="where each batch's wall went")
    parser.add_argument("--poll", type=float, default=0.1, help="the client's poll interval, s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        requests = base / "requests.jsonl"
        with requests.open("w") as f:
            for i in range(args.lines):
                body = {
                    "model": "mock-model",
                    "messages": [{"role": "user", "content": f"row {i}"}],
                }
                line = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions"}
                f.write(json.dumps({**line, "body": body}) + "\n")
        mock, mock_base = _start(["mock-server"], "/v1/models")
        app, app_url = _start(["serve", "--data-dir", str(base / "data")], "/health")
        config = _config(mock_base)
        config_path = base / "config.json"
        config_path.write_text(json.dumps(config))
        cli_walls: list[float] = []
        api_walls: list[float] = []
        phases: list[str] = []
        client = httpx.Client(
            base_url=app_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        try:
            client.post(
                "/api/v1/connectors", json={"name": "bench", "configuration": config}
            ).raise_for_status()
            sdk = OpenAI(base_url=f"{app_url}/v1", api_key=TOKEN, max_retries=0)
            with requests.open("rb") as f:
                file_id = sdk.files.create(file=f, purpose="batch").id
            # Alternated, so that the machine's noise falls on both alike.
            for _ in range(args.repeats):
                cli_walls.append(_cli_run(config_path, requests, base))
                wall, created = _api_run(sdk, file_id, args.lines, args.poll)
                api_walls.append(wall)
                if args.phases:
                    phases.append(_phases(client, created, wall))
        finally:
            client.close()
            for proc in (app, mock):
                proc.terminate()
                proc.wait(10)
    cli_s, api_s = statistics.median(cli_walls), statistics.median(api_walls)
    ratio = api_s / cli_s
    ideal = args.lines * LATENCY_MS / 1000 / CONCURRENCY
    print(
        f"{args.lines:,} lines, {LATENCY_MS} ms latency, concurrency {CONCURRENCY} "
        f"(ideal {ideal:.1f} s), median of {args.repeats}, alternated"
    )
    print(f"{'':36}{'wall s':>9}{'lines/s':>9}{'ratio':>8}")
    print(f"{'openai-compat batch (CLI)':36}{cli_s:9.2f}{args.lines / cli_s:9.0f}{1.0:8.2f}")
    print(f"{'Batch API: create -> completed':36}{api_s:9.2f}{args.lines / api_s:9.0f}{ratio:8.2f}")
    print(
        "  each: CLI "
        + ", ".join(f"{w:.2f}" for w in cli_walls)
        + " s; Batch API "
        + ", ".join(f"{w:.2f}" for w in api_walls)
        + " s"
    )
    for number, line in enumerate(phases, 1):
        print(f"  Batch API {number}: {line}")
    print(
        f"target: Batch API <= {TARGET}x the CLI -> {'OK' if ratio <= TARGET else 'ABOVE TARGET'}"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
