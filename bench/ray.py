"""Batch runs on Ray: ours vs Ray's own ``ray.data.llm`` HTTP processor vs the local run.

2,000 rows, the scripted server in its own process at 200 ms latency, 2 actors, batch size
256. Ours on Ray (32 rows in flight per actor) against Ray's processor (its requests of a
batch go one after another) and against the local ``openai-compat batch`` engine at the same
total concurrency (64). Then 5% of the rows answered with a 400 (an empty model): what each
does. The local cluster's start-up is timed apart. Ours runs twice on it: "cold", the first
run on the fresh cluster (it also starts Ray Data's own helper actors and our coordinator),
and "warm", the next run, on a cluster that has run one (those are up; each run still starts
its own UDF actors: Ray Data makes an actor pool per run, and Ray gives every actor a new
worker process). The local run is timed before and after, and the ratios use their mean.
Our runs' first result is reported too (the actors' start-up is inside it). Last, the
command line end to end on the same rows as a JSON Lines file: ``openai-compat batch``
against ``openai-compat batch --engine ray``, which starts a cluster of its own and is a new
Ray job (so it is always "cold"; its start-up is inside that figure). And Ray Data's own
floor for the same work: the same pipeline (``from_items``, the repartition, 2 actors,
batches of 256) with a do-nothing async UDF that waits 200 ms per wave of 32 rows (no HTTP,
nothing of ours), warm: no engine on Ray Data can finish sooner than that. Run:
``.venv/bin/python bench/ray.py``; ``BENCH_SKIP_RAY_LLM=1`` leaves out Ray's processor
(about 8 minutes here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

# This file is bench/ray.py: its folder must not hide the ray package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from ray.data.llm import HttpRequestProcessorConfig, build_processor  # noqa: E402

import ray  # noqa: E402
from openai_compat.batch import run_batch_sync  # noqa: E402
from openai_compat.ray import map_endpoint  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "2000"))
LATENCY_MS = 200
ACTORS, PER_ACTOR, BATCH = 2, 32, 256
OUTPUTS = [{"name": "choices.0.message.content", "as": "answer"}]
MAPPING = [{"name": "model", "value": "model", "value_type": "dynamic", "type": "string"}]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rows(n: int, failing: bool) -> list[dict[str, Any]]:
    bad = (lambda i: i % 20 == 0) if failing else (lambda i: False)
    return [{"id": i, "text": f"t{i}", "model": "" if bad(i) else "mock-model"} for i in range(n)]


def _config(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "api_key": "sk-bench",
        "is_stream": False,
        "request_format": '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}',
        "response_format": '{"choices": [{"message": {"content": "x"}}]}',
    }


def local(url: str, rows: list[dict[str, Any]]) -> tuple[float, int]:
    started = time.perf_counter()
    summary = run_batch_sync(
        _config(url),
        rows,
        mapping=MAPPING,
        outputs=OUTPUTS,
        key="id",
        concurrency=ACTORS * PER_ACTOR,
        rate=None,
    )
    return time.perf_counter() - started, summary.failed


class _Waiter:
    """A UDF doing nothing but the bench's waiting: 32 rows at a time, 200 ms each."""

    async def __call__(self, batch: Any) -> Any:
        import asyncio

        waves = -(-batch.num_rows // PER_ACTOR)
        for _ in range(waves):
            await asyncio.sleep(LATENCY_MS / 1000)
        return batch


def floor(rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    ds = ray.data.from_items(rows).repartition(target_num_rows_per_block=BATCH, strict=True)
    out = ds.map_batches(
        _Waiter,
        batch_format="pyarrow",
        batch_size=BATCH,
        compute=ray.data.ActorPoolStrategy(size=ACTORS, max_tasks_in_flight_per_actor=2),
        num_cpus=0.25,
    )
    assert sum(
        b.num_rows for b in out.iter_batches(batch_format="pyarrow", batch_size=None)
    ) == len(rows)
    return time.perf_counter() - started


def ours(url: str, rows: list[dict[str, Any]]) -> tuple[float, int, float]:
    started = time.perf_counter()
    out = map_endpoint(
        ray.data.from_items(rows),
        _config(url),
        mapping=MAPPING,
        outputs=OUTPUTS,
        key="id",
        actors=ACTORS,
        concurrency=PER_ACTOR,
        rate=None,
        batch_size=BATCH,
    )
    failed, first = 0, 0.0
    for b in out.iter_batches(batch_format="pyarrow", batch_size=None):
        first = first or time.perf_counter() - started
        failed += b.num_rows - b.column("error_message").null_count
    return time.perf_counter() - started, failed, first


def theirs(url: str, rows: list[dict[str, Any]]) -> tuple[float, str]:
    config = HttpRequestProcessorConfig(
        url=url, batch_size=BATCH, concurrency=ACTORS, headers={"Authorization": "Bearer sk-bench"}
    )
    processor = build_processor(
        config,
        preprocess=lambda row: {
            "payload": {
                "model": row["model"],
                "messages": [{"role": "user", "content": row["text"]}],
            }
        },
        postprocess=lambda row: {
            "answer": row["http_response"]["choices"][0]["message"]["content"]
        },
    )
    started = time.perf_counter()
    try:
        n = processor(ray.data.from_items(rows)).count()
        outcome = f"completed ({n} rows)"
    except Exception as exc:  # what Ray's processor does with a 400
        outcome = f"the job failed: {type(exc).__name__}"
    return time.perf_counter() - started, outcome


def cli(url: str, rows: list[dict[str, Any]], folder: str) -> tuple[float, float]:
    """The command line end to end on a JSON Lines file: local, then ``--engine ray``.

    Each ``--engine ray`` command is a new Ray job on a cluster it starts itself (as a user
    without a cluster gets): its start-up is inside this figure.
    """
    data = os.path.join(folder, "in.jsonl")
    with open(data, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    conn = os.path.join(folder, "conn.json")
    with open(conn, "w") as f:
        json.dump(_config(url), f)
    mapping = os.path.join(folder, "mapping.json")
    with open(mapping, "w") as f:
        json.dump(MAPPING, f)
    common = ["--config", conn, "--input", data, "--mapping", mapping, "--key", "id"]
    common += ["--rate", "off", "--quiet"]
    walls = []
    for extra in (
        ["--concurrency", str(ACTORS * PER_ACTOR), "--output", os.path.join(folder, "l.jsonl")],
        [
            *["--engine", "ray", "--actors", str(ACTORS), "--concurrency", str(PER_ACTOR)],
            *["--batch-size", str(BATCH), "--output", os.path.join(folder, "ray")],
        ],
    ):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "openai_compat", "batch", *common, *extra],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        walls.append(time.perf_counter() - started)
    return walls[0], walls[1]


def main() -> None:
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "openai_compat", "mock-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        url = f"http://127.0.0.1:{port}/v1/chat/completions?latency_ms={LATENCY_MS}"
        clean, failing = _rows(ROWS, False), _rows(ROWS, True)
        load_before = os.getloadavg()[0]
        local_before_s, _ = local(url, clean)
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray.data.DataContext.get_current().enable_progress_bars = False
        start_s = time.perf_counter() - t
        cold_s, _, cold_first_s = ours(url, clean)
        warm_s, _, warm_first_s = ours(url, clean)
        floor_s = floor(clean)  # warm too: the cluster has run two datasets
        local_after_s, _ = local(url, clean)
        local_s = (local_before_s + local_after_s) / 2
        skip = os.environ.get("BENCH_SKIP_RAY_LLM") == "1"
        theirs_s, _ = (float("nan"), "") if skip else theirs(url, clean)
        ours_fail_s, ours_failed, _ = ours(url, failing)
        theirs_fail_s, theirs_outcome = (float("nan"), "skipped") if skip else theirs(url, failing)
        ray.shutdown()  # the command line starts its own cluster, as without one
        with tempfile.TemporaryDirectory() as folder:
            cli_local_s, cli_ray_s = cli(url, clean, folder)
        result = {
            "rows": ROWS,
            "latency_ms": LATENCY_MS,
            "actors": ACTORS,
            "batch_size": BATCH,
            "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "cluster_start_s": round(start_s, 1),
            "local_s": [round(local_before_s, 1), round(local_after_s, 1)],
            "ours_cold_s": round(cold_s, 1),
            "ours_cold_first_result_s": round(cold_first_s, 1),
            "ours_warm_s": round(warm_s, 1),
            "ours_warm_first_result_s": round(warm_first_s, 1),
            "ray_llm_s": round(theirs_s, 1),
            "ray_llm_over_ours_warm": round(theirs_s / warm_s, 1),
            "ours_cold_over_local": round(cold_s / local_s, 2),
            "ours_warm_over_local": round(warm_s / local_s, 2),
            "ours_warm_overhead_s": round(warm_s - local_s, 1),
            "ray_data_floor_warm_s": round(floor_s, 1),
            "ray_data_floor_over_local": round(floor_s / local_s, 2),
            "ours_warm_over_ray_data_floor": round(warm_s / floor_s, 2),
            "cli_local_s": round(cli_local_s, 1),
            "cli_ray_s": round(cli_ray_s, 1),
            "cli_ray_over_local": round(cli_ray_s / cli_local_s, 2),
            "with_5pct_400": {
                "ours": f"completed in {ours_fail_s:.1f} s, {ours_failed} error rows",
                "ray_llm": theirs_outcome
                if skip
                else f"{theirs_outcome} after {theirs_fail_s:.1f} s",
            },
        }
        print(json.dumps(result, indent=2))
    finally:
        ray.shutdown()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
