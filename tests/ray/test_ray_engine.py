"""Batch runs on a real Ray cluster (started here, on 127.0.0.1 only) against the scripted server."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a cluster started here: 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray
from openai_compat.batch import BatchRun
from openai_compat.batch.scheduler import Rate
from openai_compat.cli import main
from openai_compat.config import SourceConfig
from openai_compat.errors import ConfigurationError
from openai_compat.ray import ClusterScheduler, EndpointUDF, coordinator_for, map_endpoint
from openai_compat.ray._coordinator import Coordinator, _Bucket, _Claims, kept_coordinator
from openai_compat.testing import MockServer, chat_completion, json_reply, raw_reply
from openai_compat.testing._app import MockApp
from tests._servers import serve_asgi
from tests.conftest import CANARY, NO_RETRY, make_config

OUTPUTS = [{"name": "choices.0.message.content", "as": "answer"}]
TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[Path]:
    """The local cluster of this module; its session directory (the workers' logs)."""
    context = ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING"
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield Path(context.address_info["session_dir"])
    ray.shutdown()


def conf(url: str, **extra: Any) -> dict[str, Any]:
    return make_config(url, request_format=TEMPLATE, **extra)


def rows(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": i, "text": f"t{i}", **extra} for i in range(n)]


class Stamped:
    """The scripted server's app, noting when each request came."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.app = MockApp(latency_s=latency_s)
        self.stamps: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.stamps.append(time.monotonic())
        await self.app(scope, receive, send)


def _children(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(
                    Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _listening(pids: set[int]) -> list[tuple[int, str]]:
    """(pid, local address) of every listening TCP socket of ``pids``, from /proc."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((inodes[fields[9]], fields[1].split(":")[0]))
    return found


_LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_every_socket_ray_listens_on_is_loopback() -> None:
    # A run first, so the actors' workers are up and listening too.
    with MockServer() as srv:
        assert map_endpoint(ray.data.from_items(rows(4)), conf(srv.url), rate=None).count() == 4
    sockets = _listening(_children(os.getpid()))
    assert len(sockets) >= 3  # the GCS, the raylet, the workers
    assert [(pid, address) for pid, address in sockets if address not in _LOOPBACK] == []


def test_results_are_flat_rows_with_one_schema_failures_included(tmp_path: Path) -> None:
    data = rows(12)
    for row in data:
        row["model"] = "mock-model" if row["id"] < 4 or row["id"] >= 8 else ""  # 4..7: a 400
    mapping = [{"name": "model", "value": "model", "value_type": "dynamic", "type": "string"}]
    with MockServer() as srv:
        out = map_endpoint(
            ray.data.from_items(data),
            conf(srv.url),
            mapping=mapping,
            outputs=OUTPUTS,
            key="id",
            rate=None,
            batch_size=4,
            include_response=True,
        )
        out.write_parquet(str(tmp_path))  # blocks 4..7 all failed: the schema still agrees
    table = pq.read_table(tmp_path).sort_by("id")
    assert table.column_names == [
        "id",
        "text",
        "model",
        "answer",
        "error_status",
        "error_message",
        "attempts",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "http_response",
    ]
    got = table.to_pylist()
    assert [r["answer"] for r in got[:4]] == [f"You said: t{i}" for i in range(4)]
    assert all(r["error_status"] is None and r["error_message"] is None for r in got[:4] + got[8:])
    assert [r["error_status"] for r in got[4:8]] == [400] * 4
    assert all("model" in r["error_message"] and r["answer"] is None for r in got[4:8])
    assert json.loads(got[0]["http_response"])["choices"][0]["message"]["content"] == "You said: t0"
    assert got[0]["total_tokens"] > 0 and got[0]["attempts"] == 1


def _gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_retired_actor_closes_its_connection_pool(cluster: Path) -> None:
    # Ray Data retires the actors when the dataset is done; an HTTP session left open is
    # reported by aiohttp in the actor's log ("Unclosed client session") as it goes.
    coordinator = coordinator_for(None)
    with MockServer() as srv:
        out = map_endpoint(
            ray.data.from_items(rows(40)),
            conf(srv.url),
            rate=None,
            batch_size=10,
            concurrency=8,
            coordinator=coordinator,
        )
        assert out.count() == 40
        assert len(srv.requests) == 40
    # The actors that ran (on a busy machine the second may not be up before the end).
    pids = ray.get(coordinator.state.remote())["pids"]
    assert pids
    assert _gone(pids, 60)  # retired (not killed): Ray's graceful actor shutdown ran
    logs = [p for pid in pids for p in (cluster / "logs").glob(f"worker-*-{pid}.err")]
    assert len(logs) == len(pids)
    text = "".join(p.read_text(errors="replace") for p in logs)
    assert "MapBatches(EndpointUDF)" in text  # these are the actors' own logs
    assert "Unclosed" not in text


def test_input_columns_can_be_left_out_but_the_key_stays() -> None:
    with MockServer() as srv:
        out = map_endpoint(
            ray.data.from_items(rows(3)),
            conf(srv.url),
            outputs=OUTPUTS,
            key="id",
            rate=None,
            include_input=False,
        )
        got = sorted(out.take_all(), key=lambda r: r["id"])
    assert list(got[0])[:3] == ["id", "answer", "error_status"] and "text" not in got[0]
    assert [r["answer"] for r in got] == [f"You said: t{i}" for i in range(3)]


def test_a_payload_column_is_sent_as_it_is() -> None:
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": "as is"}], "seed": 7}
    ds = ray.data.from_items([{"id": 1, "payload": json.dumps(payload)}])
    with MockServer() as srv:
        got = map_endpoint(ds, conf(srv.url), outputs=OUTPUTS, key="id", rate=None).take_all()
        assert srv.requests[0].json == payload
    assert got[0]["answer"] == "You said: as is"


def test_each_actor_call_gets_one_whole_batch_however_the_input_is_cut() -> None:
    # 40 blocks of 3 rows are joined, one block of 120 rows is cut: 32 rows per call either
    # way (one repartition task per 32 rows, not one per tiny input block).
    with MockServer() as srv:
        for ds in (
            ray.data.from_items(rows(120), override_num_blocks=40),
            ray.data.from_items(rows(120), override_num_blocks=1),
        ):
            out = map_endpoint(ds, conf(srv.url), key="id", rate=None, batch_size=32)
            done = out.materialize()
            assert done.count() == 120
            stats = done.stats()
            # Whole batches reach the actors: 120 rows at 32 are at most 4 actor tasks (Ray
            # Data may hand the last short block in one task with another; map_batches still
            # calls the UDF a batch of at most 32 at a time), never one per tiny input block.
            calls = re.search(r"MapBatches\(EndpointUDF\): (\d+) tasks executed", stats)
            assert calls is not None and 3 <= int(calls.group(1)) <= 4, stats
            cut = re.search(r"StreamingRepartition\[[^]]*\]: (\d+) tasks executed", stats)
            assert cut is not None and int(cut.group(1)) <= 4


def test_the_coordinators_process_does_not_load_ray_data() -> None:
    # Its class lives in this package: a fresh worker unpickling it must stay light.
    probe = "import sys, openai_compat.ray._coordinator; print(sorted({'ray.data', 'pyarrow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_actor_starts_without_the_engine_httpx_or_aiohttp() -> None:
    # A UDF actor is a new process each run: what it imports before it is ready delays
    # every run. The engine and the HTTP transport load in a thread from the constructor.
    probe = (
        "import sys, openai_compat.ray._udf as u\n"
        "heavy = ['openai_compat.batch.engine', 'httpx', 'aiohttp', 'openai_compat.connector']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "u._load_engine().result(timeout=60)\n"
        "print([m for m in heavy[:3] if m not in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "[]"]


def test_columns_given_are_checked_instead_of_the_schema() -> None:
    with MockServer() as srv:
        ds = ray.data.from_items([{"id": 1, "text": "t"}])
        with pytest.raises(ConfigurationError, match="no column 'id'") as missing:
            map_endpoint(ds, conf(srv.url), key="id", columns=["text"], rate=None)
        assert missing.value.problems[0].field == "key"
        with pytest.raises(ConfigurationError, match="'answer' would overwrite"):
            map_endpoint(ds, conf(srv.url), outputs=OUTPUTS, columns=["id", "answer"], rate=None)
        assert srv.requests == []


def test_the_cli_reads_the_columns_from_the_first_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from openai_compat.batch.sources import format_of_input
    from openai_compat.ray.cli import _columns

    table = pa.table({"id": [1, 2], "text": ["a", "b"]})
    pq.write_table(table, tmp_path / "in.parquet")
    pa_csv.write_csv(table, tmp_path / "in.csv")
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "a"}\n{"id": 2, "text": "b", "x": 0}\n')
    (tmp_path / "bad.parquet").write_text("not parquet")

    def columns(path: str) -> list[str] | None:
        return _columns([path], format_of_input(path))

    assert columns(str(tmp_path / "in.parquet")) == ["id", "text"]
    assert columns(str(tmp_path / "in.csv")) == ["id", "text"]
    assert columns(str(tmp_path / "in.jsonl")) == ["id", "text", "x"]
    assert columns(str(tmp_path / "bad.parquet")) is None  # Ray's reader says what is wrong
    assert columns("s3://bucket/in.parquet") is None  # object storage: Ray's schema
    (tmp_path / "dir").mkdir()
    pq.write_table(table, tmp_path / "dir" / "a.parquet")
    assert columns(str(tmp_path / "dir")) is None  # a directory: Ray's schema (its partitions)


def test_mistakes_fail_before_any_request() -> None:
    with MockServer() as srv:
        ds = ray.data.from_items([{"id": 1, "answer": "x", "text": "t"}])
        with pytest.raises(ConfigurationError, match="'answer' would overwrite"):
            map_endpoint(ds, conf(srv.url), outputs=OUTPUTS, rate=None)
        with pytest.raises(ConfigurationError):
            map_endpoint(ds, conf("ftp://127.0.0.1/x"), rate=None)
        with pytest.raises(ConfigurationError):
            map_endpoint(ds, conf(srv.url), rate="fast")
        # The same bounds and words as a local run and Spark (one RunSpec for all).
        with pytest.raises(ConfigurationError) as caught:
            map_endpoint(ds, conf(srv.url), concurrency=10_001, rate=None)
        assert str(caught.value) == (
            "concurrency: must be 1 to 10000 (requests in flight at once), got 10001"
        )
        # The UDF used on its own (``ds.map_batches(EndpointUDF, ...)``) too.
        with pytest.raises(ConfigurationError) as caught:
            EndpointUDF(conf(srv.url), concurrency=0)
        assert str(caught.value) == (
            "concurrency: must be 1 to 10000 (requests in flight at once), got 0"
        )
        with pytest.raises(ConfigurationError) as caught:
            map_endpoint(ds, conf(srv.url), key="ID", rate=None)
        assert str(caught.value) == (
            "key: the input has no column 'ID' (its columns: 'id', 'answer', 'text')"
        )
        assert srv.requests == []


def test_the_rate_limit_holds_for_the_whole_job() -> None:
    app = Stamped()
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        out = map_endpoint(
            ray.data.from_items(rows(90)),
            conf(url),
            rate="15/second",
            actors=3,
            concurrency=8,
            batch_size=10,
            num_cpus=0.2,
        )
        assert out.count() == 90
    stamps = sorted(app.stamps)
    span = stamps[-1] - stamps[0]
    # One second's burst (15), then 15/s for all three actors together (each alone: 45/s).
    assert len(stamps) == 90
    assert span >= (90 - 15) / 15 * 0.9
    for start in stamps:
        assert sum(start <= s < start + 2.0 for s in stamps) <= 2 * 15 + 15


def test_a_429_pause_reaches_every_actor() -> None:
    async def go() -> float:
        coordinator = coordinator_for(None)
        ray.get(coordinator.state.remote())  # up
        one = ClusterScheduler(coordinator, None, 4)
        other = ClusterScheduler(coordinator, None, 4)
        await other.ready()
        await asyncio.sleep(0.1)  # its first check is answered
        one.pause(1.0)  # what a 429 with Retry-After: 1 does
        time.sleep(0.3)  # past the other's check interval: its next row asks again
        await other.ready()  # this row goes (the check runs beside it)
        await asyncio.sleep(0.1)  # the answer: the pause
        started = time.monotonic()
        await other.ready()
        return time.monotonic() - started

    assert asyncio.run(go()) >= 0.5


def test_without_a_rate_rows_do_not_wait_for_a_coordinator_still_starting() -> None:
    # A coordinator that cannot start (it asks for a resource no node has) stands for one
    # whose worker process is still starting: with no rate, there is nothing to wait for.
    stuck = Coordinator.options(resources={"nowhere": 1}).remote(None)
    try:

        async def go(rate: Rate | None) -> float:
            scheduler = ClusterScheduler(stuck, rate, 4)
            started = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*(scheduler.ready() for _ in range(8))), 2)
            return time.monotonic() - started

        assert asyncio.run(go(None)) < 0.5
        with pytest.raises(TimeoutError):
            asyncio.run(go(Rate.parse("100/second")))  # tokens: they must come from it
    finally:
        ray.kill(stuck)


def test_a_coordinator_restarted_elsewhere_is_asked_again() -> None:
    # Ray restarts the coordinator when its node is lost: the leases asked meanwhile fail,
    # and the rows wait for the new one instead of their workers dying with the error.
    coordinator = Coordinator.remote(None)
    ray.get(coordinator.state.remote())

    async def go() -> int:
        scheduler = ClusterScheduler(coordinator, Rate.parse("100/second"), 4)
        for _ in range(3):
            await scheduler.ready()
        ray.kill(coordinator, no_restart=False)
        done = 0
        for _ in range(12):  # past the tokens leased before the kill: new leases
            await asyncio.wait_for(scheduler.ready(), 60)
            done += 1
        return done

    try:
        assert asyncio.run(go()) == 12
    finally:
        ray.kill(coordinator, no_restart=True)


def test_a_coordinator_lost_for_good_fails_the_rows_left_within_a_bound() -> None:
    lost = Coordinator.remote(None)
    ray.get(lost.state.remote())
    ray.kill(lost, no_restart=True)
    scheduler = ClusterScheduler(lost, Rate.parse("600/minute"), 4, give_up_s=1.0)

    async def go(url: str) -> list[Any]:
        found = []
        async with BatchRun(conf(url), rows(6), scheduler=scheduler, retry=NO_RETRY) as run:
            async for result in run:
                found.append(result)
        return found

    with MockServer() as srv:
        started = time.monotonic()
        results = asyncio.run(asyncio.wait_for(go(srv.url), 60))
        assert time.monotonic() - started < 30
        assert srv.requests == []  # nothing sent past the job's rate limit
    assert sorted(r.key for r in results) == list(range(6))  # every row, failed, none lost
    assert all(r.error is not None and r.attempts == 0 for r in results)
    message = results[0].error["message"]
    assert message.startswith("not sent: the run's rate limit failed: CoordinatorLost")
    assert "has not answered" in message and "--resume sends them" in message


def test_runs_of_one_driver_share_their_coordinator() -> None:
    with MockServer() as srv:
        url = SourceConfig.parse(conf(srv.url)).url
        first = kept_coordinator(None, url)
        assert kept_coordinator(None, url) is first
        assert kept_coordinator(Rate.parse("5/second"), url) is not first
        assert kept_coordinator(None, url + "?other") is not first
        # An earlier test's server may have had this port, so its runs count here too.
        before = ray.get(first.state.remote())["ok"]
        for _ in range(2):
            out = map_endpoint(ray.data.from_items(rows(8)), conf(srv.url), rate=None)
            assert out.count() == 8
        state = ray.get(first.state.remote())
        assert state["ok"] - before == 16  # both runs counted there
        assert len(state["pids"]) >= 2  # their actors: new ones for each run


def test_bucket_grants_one_second_then_the_rate() -> None:
    bucket = _Bucket(10.0)
    assert bucket.lease(8) == (8, 0.0, 0.0)
    granted, _, _ = bucket.lease(8)
    assert granted == 2
    granted, wait, _ = bucket.lease(8)
    assert granted == 0 and 0 < wait <= 0.1
    bucket.pause(5)
    assert bucket.lease(1)[2] > 4


def _local_and_ray(tmp_path: Path, url: str, n: int) -> tuple[list[str], list[str]]:
    (tmp_path / "conn.json").write_text(json.dumps(conf(url)))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
    common = [
        "batch",
        "--config",
        str(tmp_path / "conn.json"),
        "--input",
        str(tmp_path / "in.jsonl"),
        "--key",
        "id",
        "--rate",
        "off",
        "--quiet",
    ]
    assert main([*common, "--output", str(tmp_path / "local.jsonl")]) == 0
    assert (
        main(
            [
                *common,
                "--engine",
                "ray",
                "--output",
                str(tmp_path / "ray"),
                "--output-format",
                "jsonl",
            ]
        )
        == 0
    )
    local = (tmp_path / "local.jsonl").read_text().splitlines()
    on_ray = [
        line
        for part in sorted((tmp_path / "ray").glob("part-*.jsonl"))
        for line in part.read_text().splitlines()
    ]
    return local, on_ray


def _without_latency(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        data = json.loads(line)
        data.pop("latency_ms")
        out.append(json.dumps(data, sort_keys=True))
    return sorted(out)


def test_jsonl_output_holds_the_local_runs_lines(tmp_path: Path) -> None:
    with MockServer() as srv:
        local, on_ray = _local_and_ray(tmp_path, srv.url, 40)
    assert len(on_ray) == 40
    assert _without_latency(on_ray) == _without_latency(local)
    assert all(CANARY not in line for line in on_ray)


def test_a_killed_worker_loses_nothing_and_duplicates_nothing() -> None:
    coordinator = coordinator_for(None)
    keys: list[int] = []
    with MockServer(latency_s=0.05) as srv:
        out = map_endpoint(
            ray.data.from_items(rows(600)),
            conf(srv.url),
            key="id",
            rate=None,
            concurrency=8,
            batch_size=20,
            coordinator=coordinator,
        )
        failed: list[str] = []

        def drain() -> None:
            for b in out.iter_batches(batch_size=None, batch_format="pyarrow"):
                keys.extend(b.column("id").to_pylist())
                failed.extend(m for m in b.column("error_message").to_pylist() if m)

        done = threading.Thread(target=drain)
        done.start()
        deadline = time.monotonic() + 60
        while len(srv.requests) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = ray.get(coordinator.state.remote())["pids"]
        assert pids
        os.kill(pids[0], signal.SIGKILL)
        done.join(timeout=120)
    assert sorted(keys) == list(range(600))
    assert failed == []  # the retried batch claimed its keys again as the same rows


def test_resume_after_the_driver_was_killed(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(400)))
    with MockServer(latency_s=0.05) as srv:
        (tmp_path / "conn.json").write_text(json.dumps(conf(srv.url)))
        args = [
            "batch",
            "--config",
            str(tmp_path / "conn.json"),
            "--input",
            str(tmp_path / "in.jsonl"),
            "--key",
            "id",
            "--rate",
            "off",
            "--quiet",
            "--engine",
            "ray",
            "--output",
            str(tmp_path / "out"),
            "--output-format",
            "jsonl",
            "--concurrency",
            "4",
            "--batch-size",
            "20",
        ]
        driver = subprocess.Popen(
            [sys.executable, "-m", "openai_compat", *args], stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                written = sum(
                    len(p.read_text().splitlines()) for p in (tmp_path / "out").glob("part-*.jsonl")
                )
                if written >= 60:
                    break
                time.sleep(0.1)
            started = _children(driver.pid)
            driver.kill()  # kill -9: no clean-up of any kind
            driver.wait()
        finally:
            for pid in started:  # the cluster that driver started, by PID
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        assert 60 <= written < 400
        assert main([*args[:-4], "--concurrency", "8", "--resume"][:]) in (0,)
    lines = [
        line for p in (tmp_path / "out").glob("part-*.jsonl") for line in p.read_text().splitlines()
    ]
    assert sorted(json.loads(line)["key"] for line in lines) == list(range(400))


def _claim(claims: _Claims, keys: list[int], rows: list[int]) -> list[int]:
    return claims.claim(array("Q", keys).tobytes(), array("I", rows).tobytes())


def test_claims_tell_a_retried_row_from_a_duplicate_in_12_bytes_a_key() -> None:
    claims = _Claims()
    assert _claim(claims, [1, 2, 3], [10, 20, 30]) == []
    assert _claim(claims, [3, 2, 4], [30, 21, 40]) == [1]  # 2: another row; 3: the same row
    n = 200_000
    big = _Claims()
    assert _claim(big, list(range(10, 10 + n)), [7] * n) == []
    held = sum(a.buffer_info()[1] * a.itemsize for a in big._keys + big._rows if a is not None)
    assert big.count == n and held / n <= 12.5


def _answers(table: Any, key: str = "id") -> dict[Any, list[dict[str, Any]]]:
    by_key: dict[Any, list[dict[str, Any]]] = {}
    for row in table:
        by_key.setdefault(row[key], []).append(row)
    return by_key


def test_duplicate_keys_across_blocks_and_actors_are_failed_rows() -> None:
    data = rows(50)
    data += [{"id": i, "text": f"again {i}"} for i in range(0, 50, 5)]  # 10 keys come again
    data += [{"id": 100, "text": "a"}, {"id": 100, "text": "b"}]  # twice in one batch
    data += [{"id": None, "text": "no key"}]
    with MockServer() as srv:
        out = map_endpoint(
            ray.data.from_items(data, override_num_blocks=7),
            conf(srv.url),
            outputs=OUTPUTS,
            key="id",
            rate=None,
            actors=2,
            batch_size=8,
        )
        got = out.take_all()
        sent = len(srv.requests)
    assert len(got) == len(data)
    by_key = _answers(got)
    ok = [r for r in got if r["error_message"] is None]
    assert sent == len(ok) == 51  # keys 0..49 and 100 once each; no request for the rest
    for key, found in by_key.items():
        if key is None:
            assert "no value in the key column 'id'" in found[0]["error_message"]
            continue
        assert sum(r["error_message"] is None for r in found) == 1
        for dup in (r for r in found if r["error_message"] is not None):
            assert dup["error_message"].startswith("this row is a duplicate:")
            assert f"its value '{key}' of the key column 'id'" in dup["error_message"]
            assert dup["attempts"] == 0 and dup["answer"] is None
    assert sorted(k for k, found in by_key.items() if len(found) == 2) == [
        *range(0, 50, 5),
        100,
    ]


def test_the_cli_writes_each_duplicate_as_a_failed_row(tmp_path: Path) -> None:
    data = [*rows(30), *({"id": i, "text": f"again {i}"} for i in (3, 17, 29))]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    with MockServer() as srv:
        (tmp_path / "conn.json").write_text(json.dumps(conf(srv.url)))
        common = [
            "batch",
            "--config",
            str(tmp_path / "conn.json"),
            "--input",
            str(tmp_path / "in.jsonl"),
            "--key",
            "id",
            "--rate",
            "off",
            "--quiet",
            "--engine",
            "ray",
            "--batch-size",
            "8",
        ]
        assert main([*common, "--output", str(tmp_path / "j"), "--output-format", "jsonl"]) == 1
        assert main([*common, "--output", str(tmp_path / "p")]) == 1  # 1: some rows failed
    lines = [
        json.loads(line)
        for part in (tmp_path / "j").glob("part-*.jsonl")
        for line in part.read_text().splitlines()
    ]
    assert len(lines) == 33
    assert sorted(line["key"] for line in lines if line["error"] is None) == list(range(30))
    failed = [line for line in lines if line["error"] is not None]
    assert len(failed) == 3 and len({line["key"] for line in failed}) == 3
    assert all(str(line["key"]).startswith("row:") for line in failed)
    assert all("is a duplicate" in line["error"]["message"] for line in failed)
    table = pq.read_table(tmp_path / "p").to_pylist()
    assert len(table) == 33
    by_key = _answers(table)
    assert sorted(k for k, found in by_key.items() if len(found) == 2) == [3, 17, 29]
    assert sum(r["error_message"] is not None for r in table) == 3


def _cli(tmp_path: Path, url: str, source: str, *engine: str) -> list[str]:
    (tmp_path / "conn.json").write_text(json.dumps(conf(url)))
    args = ["batch", "--config", str(tmp_path / "conn.json"), "--input", source, "--key", "id"]
    return [*args, "--rate", "off", "--quiet", *engine]


def _ray(tmp_path: Path, output: str = "out") -> list[str]:
    return ["--engine", "ray", "--output", str(tmp_path / output), "--output-format", "jsonl"]


def _keys(directory: Path) -> list[Any]:
    lines = [line for p in directory.glob("part-*.jsonl") for line in p.read_text().splitlines()]
    assert all(json.loads(line)["error"] is None for line in lines)
    return sorted(json.loads(line)["key"] for line in lines)


def test_the_cli_refuses_a_json_file_or_unknown_name_as_a_local_run_does(
    tmp_path: Path, capsys: Any
) -> None:
    (tmp_path / "rows.json").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "rows.txt").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.jsonl").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "dir" / "b.json").write_text('{"id": 2, "text": "b"}\n')
    with MockServer() as srv:
        for name, local_hint in (
            ("rows.json", " (or pass --input-format jsonl)"),
            ("rows.txt", ", or pass --input-format"),
        ):
            source = str(tmp_path / name)
            local = [*_cli(tmp_path, srv.url, source), "--output", str(tmp_path / "l.jsonl")]
            assert main(local) == 2
            said_locally = capsys.readouterr().err
            assert main([*_cli(tmp_path, srv.url, source), *_ray(tmp_path)]) == 2
            said = capsys.readouterr().err
            # The same words; the local run also names its --input-format, Ray has none.
            assert said.startswith(f"openai-compat batch: input: {source}: ")
            assert said_locally == said.removesuffix("\n") + local_hint + "\n"
        # A directory is judged by its files: a .json among them is refused the same way.
        assert main([*_cli(tmp_path, srv.url, str(tmp_path / "dir")), *_ray(tmp_path)]) == 2
        assert f"{tmp_path / 'dir' / 'b.json'}: a .json file is read as one JSON document" in (
            capsys.readouterr().err
        )
        # A directory on object storage cannot be judged by name: a glob of its files can.
        assert main([*_cli(tmp_path, srv.url, "s3://bucket/dir/"), *_ray(tmp_path)]) == 2
        said = capsys.readouterr().err
        assert "cannot tell the format from the name" in said
        assert "give a glob of its files, such as s3://bucket/dir/*.parquet" in said
        assert srv.requests == []
    assert not (tmp_path / "out").exists()  # refused before the output directory is made


def test_a_directory_is_read_in_the_format_of_its_files(tmp_path: Path) -> None:
    # Before the one table of formats, Ray read a path without .jsonl or .csv as Parquet.
    data = tmp_path / "data"
    (data / "more").mkdir(parents=True)
    (data / "a.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows(20)[:10]))
    (data / "more" / "b.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in rows(20)[10:]).encode())
    )
    (data / "_SUCCESS").write_text("")
    with MockServer() as srv:
        assert main([*_cli(tmp_path, srv.url, str(data)), *_ray(tmp_path)]) == 0
        assert len(srv.requests) == 20
    assert _keys(tmp_path / "out") == list(range(20))


def test_a_glob_on_object_storage_is_listed_for_ray(tmp_path: Path) -> None:
    import pyarrow as pa

    (tmp_path / "in").mkdir()
    for part, chunk in enumerate((rows(12)[:6], rows(12)[6:])):
        pq.write_table(pa.Table.from_pylist(chunk), tmp_path / "in" / f"part-{part}.pq")
    (tmp_path / "in" / "other.pq").write_text("not matched, not Parquet")
    pattern = f"file://{tmp_path}/in/part-*.pq"
    with MockServer() as srv:
        assert main([*_cli(tmp_path, srv.url, pattern), *_ray(tmp_path)]) == 0
        assert len(srv.requests) == 12
        missing = f"file://{tmp_path}/in/none-*.pq"
        assert main([*_cli(tmp_path, srv.url, missing), *_ray(tmp_path, "none")]) == 2
    assert _keys(tmp_path / "out") == list(range(12))


def test_every_kind_of_failure_is_a_row(tmp_path: Path) -> None:
    # Rows 0-3 cannot be mapped (no request); of the 8 sent, 3 answer the JSON asked for,
    # 3 time out and 2 get an answer that is not JSON (whichever rows get which).
    data = [{"id": i, "text": f"t{i}", "n": "x" if i < 4 else "5"} for i in range(12)]
    mapping = [{"name": "max_tokens", "value": "n", "type": "number"}]
    outputs = [{"name": "choices.0.message.content", "parse": "json", "fields": ["label"]}]
    with MockServer() as srv:
        srv.enqueue(
            *(json_reply(chat_completion('{"label": "ok"}')) for _ in range(3)),
            *(raw_reply("{}", delay_s=3.0) for _ in range(3)),
        )
        out = map_endpoint(
            ray.data.from_items(data),
            conf(srv.url, config={"timeout": 1}),
            mapping=mapping,
            outputs=outputs,
            key="id",
            rate=None,
            batch_size=4,
            retry=NO_RETRY,
        )
        out.write_parquet(str(tmp_path))  # the first block failed whole: the schema agrees
        sent = len(srv.requests)
    got = {r["id"]: r for r in pq.read_table(tmp_path).to_pylist()}
    assert sorted(got) == list(range(12)) and sent == 8
    assert all("cannot cast column 'n'" in got[i]["error_message"] for i in range(4))
    assert all(got[i]["attempts"] == 0 for i in range(4))
    rest = [got[i] for i in range(4, 12)]
    assert sorted(r["label"] for r in rest if r["error_message"] is None) == ["ok"] * 3
    timed_out = [r for r in rest if r["error_message"] and "timed out" in r["error_message"]]
    not_json = [r for r in rest if r["error_message"] and "not valid JSON" in r["error_message"]]
    assert len(timed_out) == 3 and len(not_json) == 2
    assert all(r["error_status"] is None for r in timed_out)
    assert CANARY not in json.dumps(list(got.values()))


def test_each_actor_has_its_concurrency_in_flight_and_never_more() -> None:
    app = Stamped(latency_s=0.4)
    live = {"now": 0, "most": 0}
    inner = app.app

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        live["now"] += 1
        live["most"] = max(live["most"], live["now"])
        try:
            await inner(scope, receive, send)
        finally:
            live["now"] -= 1

    app.app = counting  # type: ignore[assignment]
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        out = map_endpoint(
            ray.data.from_items(rows(48)),
            conf(url),
            rate=None,
            actors=1,
            concurrency=8,
            batch_size=48,
        )
        assert out.count() == 48
    assert live["most"] == 8
    stamps = sorted(app.stamps)
    assert stamps[-1] - stamps[0] < 48 / 8 * 0.4  # 6 waves of 8, not 48 one after another


def test_the_cli_shows_progress_with_an_eta_and_the_local_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(60)))
    with MockServer(latency_s=0.1) as srv:
        (tmp_path / "conn.json").write_text(json.dumps(conf(srv.url)))
        code = main(
            [
                "batch",
                "--config",
                str(tmp_path / "conn.json"),
                "--input",
                str(tmp_path / "in.jsonl"),
                "--key",
                "id",
                "--rate",
                "off",
                "--engine",
                "ray",
                "--output",
                str(tmp_path / "out"),
                "--batch-size",
                "6",
                "--concurrency",
                "2",
                "--progress",
                "lines",
                "--progress-interval",
                "0.2",
            ]
        )
    err = capsys.readouterr().err
    assert code == 0
    progress = [line for line in err.splitlines() if line.startswith("batch: ")]
    assert any(re.search(r"/60 rows \(ok \d+, failed 0, .*req/s.* ETA ", p) for p in progress)
    assert re.search(r"openai-compat batch: 60 ok, 0 failed, 0 skipped", err)
