"""Profile the three hot paths (a request, the app's execute route, a batch row) with py-spy; print the top entries.

    python bench/profile_paths.py                 # all three
    python bench/profile_paths.py request batch   # some of them
    python bench/profile_paths.py --top 15

- ``request``: non-streamed ``connector.arun_model`` calls at concurrency 10 (the path of
  ``bench/request_overhead.py``), the scripted server in its own process;
- ``batch``: ``arun_batch_to_file`` over 20,000 rows at concurrency 64, 20 ms latency, on
  uvloop (the path of ``bench/batch.py``);
- ``app``: the application (``openai-compat serve``, its own process, sampled by pid) while
  sequential non-streamed ``execute_model`` requests go through it (``bench/app.py``).

Each driver runs in its own process under ``py-spy record`` (``pip install py-spy``; a
sampling profiler, so the code runs at full speed). Two tables per path, each as a share of
the samples: **self** (the function on top of the stack: where the CPU goes, any library)
and **ours, inclusive** (functions of ``openai_compat`` and everything they call).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from request_overhead import API_KEY, PAYLOAD, mock_server  # noqa: E402

_FRAME = re.compile(r"^(.*) \(([^():]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (file.py)``: functions, not lines."""
    found = _FRAME.match(frame.strip())
    if found is None:
        return frame.strip()
    return f"{found.group(1)} ({Path(found.group(2)).name})"


_IDLE = {"Condition.wait (threading.py)", "Event.wait (threading.py)"}


def _is_ours(frame: str) -> bool:
    return "openai_compat" in frame


def summarise(raw: Path, top: int) -> str:
    """The self and ours-inclusive tables of one ``py-spy record -f raw`` output."""
    own: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if _frame_name(frames[-1]) in _IDLE:
            continue  # a thread waiting (the row reader's, the thread pool's): no CPU
        total += count
        own[_frame_name(frames[-1])] += count
        for name in {_frame_name(f) for f in frames if _is_ours(f)}:
            ours[name] += count
    if not total:
        return "(no samples)"
    out = [f"{total} samples", "self:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    out.append("ours, inclusive:")
    out += [f"  {n / total:6.1%}  {name}" for name, n in ours.most_common(top)]
    return "\n".join(out)


def _spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def _record(command: list[str], out: Path, rate: int) -> None:
    spy = [_spy(), "record", "-r", str(rate), "-f", "raw", "-o", str(out), "--"]
    subprocess.run(spy + command, check=True, stdout=subprocess.DEVNULL)


# -- drivers (each in its own process, under py-spy) ------------------------------------------


async def _drive_request(url: str, n: int, concurrency: int) -> None:
    from openai_compat import OpenAICompatibleConnector
    from openai_compat.config import SourceConfig

    async with httpx.AsyncClient() as client:
        connector = OpenAICompatibleConnector(client=client)
        config = SourceConfig.parse({"url": url, "api_key": API_KEY})
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async for message in connector.arun_model(config, PAYLOAD):
                    assert message.record is not None

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _drive_batch(port: int, rows: int) -> None:
    import uvloop

    from openai_compat.batch import arun_batch_to_file

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "rows.jsonl"
        with source.open("w") as f:
            for i in range(rows):
                f.write(f'{{"id": {i}, "text": "Summarise ticket {i}: the printer is on fire"}}\n')
        config = {
            "url": f"http://127.0.0.1:{port}/v1/chat/completions?latency_ms=20",
            "api_key": "sk-bench",
            "request_format": {
                "model": "mock-model",
                "messages": [{"role": "user", "content": "{{text}}"}],
            },
            "response_format": {"choices": [{"message": {"content": "x"}}]},
        }
        out = str(Path(tmp) / "out.jsonl")

        async def run() -> None:
            summary = await arun_batch_to_file(
                config, str(source), out, mode="overwrite", concurrency=64, rate=None
            )
            assert summary.ok == rows, summary

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run())


def _profile_app(mock_base: str, n: int, out: Path, rate: int) -> None:
    token = "bench-token"
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        env = {**os.environ, "OPENAI_COMPAT_TOKEN": token}
        command = [sys.executable, "-m", "openai_compat", "serve"]
        command += ["--data-dir", str(Path(tmp) / "data"), "--port", str(port)]
        app = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(url + "/health", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the app did not start") from None
                    time.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                config = {
                    "url": mock_base + "/chat/completions",
                    "api_key": "sk-bench",
                    "request_format": json.dumps(PAYLOAD),
                    "response_format": "{}",
                }
                created = client.post(
                    "/api/v1/connectors", json={"name": "p", "configuration": config}
                )
                cid = created.json()["id"]
                path = f"/api/v1/connectors/{cid}/execute_model"
                for _ in range(50):  # warm up
                    client.post(path, json={"payload": PAYLOAD})
                spy = subprocess.Popen(
                    [
                        *[_spy(), "record", "-r", str(rate), "-f", "raw", "-o", str(out)],
                        *["--pid", str(app.pid)],
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
                for _ in range(n):
                    response = client.post(path, json={"payload": PAYLOAD})
                    assert response.status_code == 200, response.text
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
        finally:
            app.terminate()
            app.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["request", "batch", "app"])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--requests", type=int, default=6_000)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--app-requests", type=int, default=1_500)
    parser.add_argument("--driver", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver == "request":
        asyncio.run(_drive_request(args.url, args.requests, 10))
        return
    if args.driver == "batch":
        _drive_batch(int(args.url), args.rows)
        return
    me = [sys.executable, __file__]
    with mock_server() as base_url, tempfile.TemporaryDirectory() as tmp:
        port = base_url.rsplit(":", 1)[1].split("/")[0]
        for path in args.paths:
            out = Path(tmp) / f"{path}.txt"
            if path == "request":
                url = f"{base_url}/chat/completions"
                _record(
                    [*me, "--driver", "request", "--url", url, "--requests", str(args.requests)],
                    out,
                    args.rate,
                )
                title = f"connector.arun_model, {args.requests:,} non-streamed requests"
            elif path == "batch":
                _record(
                    [*me, "--driver", "batch", "--url", port, "--rows", str(args.rows)],
                    out,
                    args.rate,
                )
                title = f"batch engine, {args.rows:,} rows, concurrency 64 (uvloop)"
            elif path == "app":
                _profile_app(base_url, args.app_requests, out, args.rate)
                title = f"app process, {args.app_requests:,} sequential execute_model"
            else:
                raise SystemExit(f"unknown path {path!r}: request, batch or app")
            print(f"== {title}")
            print(summarise(out, args.top))
            print(flush=True)


if __name__ == "__main__":
    main()
