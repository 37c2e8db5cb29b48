"""Batch runs on a real local Spark (``local[2]``, 127.0.0.1 only) against the scripted server."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from openai_compat.cli import main
from openai_compat.errors import ConfigurationError
from openai_compat.spark import map_endpoint
from openai_compat.testing import MockServer
from openai_compat.testing._app import MockApp
from tests._servers import serve_asgi
from tests.conftest import CANARY, make_config

OUTPUTS = [{"name": "choices.0.message.content", "as": "answer"}]
TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'


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


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _listening() -> list[tuple[int, str]]:
    """(pid, local address) of every listening TCP socket: ``ss -tlnp``, else /proc."""
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-tlnpH"], capture_output=True, text=True, check=True).stdout
        found = []
        for line in out.splitlines():
            address = line.split()[3].rsplit(":", 1)[0].strip("[]")
            found += [(int(pid), address) for pid in re.findall(r"pid=(\d+)", line)]
        return found
    return _listening_from_proc()  # no iproute2: the same from the kernel's tables


def _listening_from_proc() -> list[tuple[int, str]]:
    owner: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{entry}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{entry}/fd/{fd}")
                        if target.startswith("socket:["):
                            owner[target[8:-1]] = int(entry)
    names = {
        "0100007F": "127.0.0.1",
        "00000000000000000000000001000000": "::1",
        "0000000000000000FFFF00000100007F": "::ffff:127.0.0.1",
    }
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owner:  # 0A: LISTEN
                raw = fields[1].split(":")[0]
                found.append((owner[fields[9]], names.get(raw, raw)))
    return found


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def test_every_socket_spark_listens_on_is_loopback(spark: Any) -> None:
    # A run first, so the Python workers are up too.
    with MockServer() as srv:
        df = spark.createDataFrame(rows(4))
        assert map_endpoint(df, conf(srv.url), rate=None).count() == 4
    ours = _descendants(os.getpid())
    sockets = [(pid, address) for pid, address in _listening() if pid in ours]
    java = {pid for pid in ours if Path(f"/proc/{pid}/comm").read_text().strip() == "java"}
    assert java, "the JVM is a child of this process"
    assert {pid for pid, _ in sockets} & java  # the driver's RPC and block manager servers
    assert [(pid, address) for pid, address in sockets if address not in LOOPBACK] == []


def test_results_are_flat_rows_with_one_schema_failures_included(
    spark: Any, tmp_path: Path
) -> None:
    data = rows(12)
    for row in data:
        row["model"] = "mock-model" if row["id"] < 6 else ""  # 6..11: a 400, one whole partition
    mapping = [{"name": "model", "value": "model", "value_type": "dynamic", "type": "string"}]
    df = spark.createDataFrame(data).coalesce(1).sortWithinPartitions("id")
    with MockServer() as srv:
        out = map_endpoint(
            df.repartitionByRange(2, "id"),
            conf(srv.url),
            mapping=mapping,
            outputs=OUTPUTS,
            key="id",
            rate=None,
            include_response=True,
        )
        out.write.parquet(str(tmp_path / "out"))  # the all-failed partition: the same schema
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    assert len(parts) == 2 and len({pq.read_schema(p) for p in parts}) == 1
    table = pq.read_table(tmp_path / "out").sort_by("id")
    assert table.column_names == [
        "id",
        "model",
        "text",
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
    assert [r["answer"] for r in got[:6]] == [f"You said: t{i}" for i in range(6)]
    assert all(r["error_status"] is None and r["error_message"] is None for r in got[:6])
    assert [r["error_status"] for r in got[6:]] == [400] * 6
    assert all("model" in r["error_message"] and r["answer"] is None for r in got[6:])
    assert json.loads(got[0]["http_response"])["choices"][0]["message"]["content"] == "You said: t0"
    assert got[0]["total_tokens"] > 0 and got[0]["attempts"] == 1
    assert all(CANARY not in (r["error_message"] or "") for r in got)


def test_many_rows_of_a_partition_are_in_flight_at_once(spark: Any) -> None:
    # 40 rows at 300 ms in one partition, 20 at once: about 0.6 s, one at a time 12 s.
    app = Stamped(latency_s=0.3)
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        df = spark.createDataFrame(rows(40)).coalesce(1)
        out = map_endpoint(df, conf(url), key="id", rate=None, concurrency=20).collect()
    assert len(out) == 40 and all(r["error_message"] is None for r in out)
    stamps = sorted(app.stamps)
    assert sum(s - stamps[0] < 0.25 for s in stamps) == 20


def test_without_input_columns_only_the_key_is_kept(spark: Any) -> None:
    with MockServer() as srv:
        out = map_endpoint(
            spark.createDataFrame(rows(3)),
            conf(srv.url),
            outputs=OUTPUTS,
            key="id",
            rate=None,
            include_input=False,
        )
        assert out.columns[:2] == ["id", "answer"]
        assert sorted(r["answer"] for r in out.collect()) == [
            "You said: t0",
            "You said: t1",
            "You said: t2",
        ]


def test_mistakes_fail_before_any_request(spark: Any) -> None:
    with MockServer() as srv:
        df = spark.createDataFrame([{"id": 1, "answer": "x", "text": "t"}])
        with pytest.raises(ConfigurationError, match="'answer' would overwrite"):
            map_endpoint(df, conf(srv.url), outputs=OUTPUTS, rate=None)
        with pytest.raises(ConfigurationError, match="no column 'nope'"):
            map_endpoint(df, conf(srv.url), key="nope", rate=None)
        with pytest.raises(ConfigurationError):
            map_endpoint(df, conf("ftp://127.0.0.1/x"), rate=None)
        with pytest.raises(ConfigurationError):
            map_endpoint(df, conf(srv.url), rate="fast")
        with pytest.raises(ConfigurationError) as caught:
            map_endpoint(df, conf(srv.url), concurrency=0)
        assert str(caught.value) == (
            "concurrency: must be 1 to 10000 (requests in flight at once), got 0"
        )
        assert srv.requests == []


def test_the_rate_limit_holds_for_the_whole_job_on_local_2(spark: Any) -> None:
    app = Stamped()
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        df = spark.createDataFrame(rows(60)).repartition(2)
        out = map_endpoint(df, conf(url), rate="10/second", concurrency=8)
        assert out.count() == 60
    stamps = sorted(app.stamps)
    # Each of the 2 tasks running at once gets 5/s (alone each could send 8 at a time at
    # once): together one second's burst (10), then 10/s, as a local run would.
    assert len(stamps) == 60
    assert stamps[-1] - stamps[0] >= (60 - 10) / 10 * 0.9
    for start in stamps:
        assert sum(start <= s < start + 2.0 for s in stamps) <= 2 * 10 + 10


def test_a_429_pauses_that_tasks_client(spark: Any) -> None:
    from openai_compat.testing import error_reply

    app = Stamped()
    app.app.enqueue(
        error_reply(429, "slow down", code="rate_limit_exceeded", headers={"retry-after": "1"})
    )
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        df = spark.createDataFrame(rows(6)).coalesce(1)
        got = map_endpoint(df, conf(url), key="id", rate=None, concurrency=1).collect()
    assert all(r["error_message"] is None for r in got)
    assert sorted(r["attempts"] for r in got) == [1, 1, 1, 1, 1, 2]
    stamps = sorted(app.stamps)
    assert len(stamps) == 7 and stamps[1] - stamps[0] >= 0.9  # the whole task waited


def _cli_args(tmp_path: Path, url: str, n: int, *extra: str) -> list[str]:
    (tmp_path / "conn.json").write_text(json.dumps(conf(url)))
    if not (tmp_path / "in.jsonl").exists():
        (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
    return [
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
        *extra,
    ]


def _lines(directory: Path) -> list[str]:
    return [
        line for p in sorted(directory.glob("part-*.txt")) for line in p.read_text().splitlines()
    ]


def _without_latency(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        data = json.loads(line)
        data.pop("latency_ms")
        out.append(json.dumps(data, sort_keys=True))
    return sorted(out)


def test_jsonl_output_holds_the_local_runs_lines(spark: Any, tmp_path: Path) -> None:
    with MockServer() as srv:
        common = _cli_args(tmp_path, srv.url, 40)
        assert main([*common, "--output", str(tmp_path / "local.jsonl")]) == 0
        spark_args = [
            "--engine",
            "spark",
            "--output",
            str(tmp_path / "spark"),
            "--output-format",
            "jsonl",
        ]
        assert main([*common, *spark_args]) == 0
        local = (tmp_path / "local.jsonl").read_text().splitlines()
        on_spark = _lines(tmp_path / "spark")
        assert len(on_spark) == 40
        assert _without_latency(on_spark) == _without_latency(local)
        assert all(CANARY not in line for line in on_spark)
        # A second run into the same directory is refused; --resume sends nothing.
        assert main([*common, *spark_args]) == 2
        before = len(srv.requests)
        assert main([*common, *spark_args, "--resume"]) == 0
        assert len(srv.requests) == before and len(_lines(tmp_path / "spark")) == 40


def test_parquet_output_resumes_by_anti_join(spark: Any, tmp_path: Path, capsys: Any) -> None:
    with MockServer() as srv:
        common = _cli_args(tmp_path, srv.url, 30)
        out = ["--engine", "spark", "--output", str(tmp_path / "out")]
        (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(30)[:20]))
        assert main([*common, *out]) == 0
        (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(30)))
        assert main([*common[:-1], *out, "--resume"]) == 0
        assert len(srv.requests) == 30
    assert "10 ok, 0 failed, 20 skipped" in capsys.readouterr().err
    table = pq.read_table(tmp_path / "out")
    assert sorted(table.column("id").to_pylist()) == list(range(30))
    assert set(table.column("text").to_pylist()) == {f"t{i}" for i in range(30)}


def test_the_command_line_takes_a_cache(spark: Any, tmp_path: Path, capsys: Any) -> None:
    with MockServer() as srv:
        common = _cli_args(tmp_path, srv.url, 12)
        cache = ["--cache", str(tmp_path / "answers.sqlite")]
        out = ["--engine", "spark", "--output", str(tmp_path / "out"), "--output-format", "jsonl"]
        assert main([*common, *out, *cache]) == 0
        assert len(srv.requests) == 12
        capsys.readouterr()
        assert main([*common[:-1], *out, *cache, "--overwrite", "--progress", "off"]) == 0
        assert len(srv.requests) == 12  # every answer read back: nothing sent, nothing paid
        assert "12 from the cache" in capsys.readouterr().err
        lines = [json.loads(line) for line in _lines(tmp_path / "out")]
        assert len(lines) == 12 and all(line["cached"] is True for line in lines)
        assert main([*common, *out, "--overwrite", "--max-tokens", "10"]) == 2
        assert "--engine spark takes --cache" in capsys.readouterr().err


def test_the_command_line_refuses_what_spark_cannot_do(
    spark: Any, tmp_path: Path, capsys: Any
) -> None:
    with MockServer() as srv:
        common = _cli_args(tmp_path, srv.url, 3)
        out = ["--engine", "spark", "--output", str(tmp_path / "out")]
        assert main([*common, *out, "--shard", "1/2"]) == 2
        assert "--shard is for local runs" in capsys.readouterr().err
        assert main([*common, *out, "--output-format", "csv"]) == 2
        assert "parquet or jsonl" in capsys.readouterr().err
        (tmp_path / "floats.jsonl").write_text('{"id": 1.5, "text": "x"}\n')
        floats = [*common, *out]
        floats[floats.index(str(tmp_path / "in.jsonl"))] = str(tmp_path / "floats.jsonl")
        assert main(floats) == 2
        assert "text or integer column" in capsys.readouterr().err
        missing = [*common, *out]
        missing[missing.index(str(tmp_path / "in.jsonl"))] = str(tmp_path / "nothing.jsonl")
        assert main(missing) == 2
        assert "no file matches" in capsys.readouterr().err
        assert srv.requests == []


def _with_input(args: list[str], source: str) -> list[str]:
    given = list(args)
    given[given.index("--input") + 1] = source
    return given


def test_the_command_line_refuses_a_json_file_or_unknown_name_as_a_local_run_does(
    spark: Any, tmp_path: Path, capsys: Any
) -> None:
    (tmp_path / "rows.json").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "rows.txt").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.jsonl").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "dir" / "b.csv").write_text("id,text\n2,b\n")
    with MockServer() as srv:
        common = _cli_args(tmp_path, srv.url, 3)
        out = ["--engine", "spark", "--output", str(tmp_path / "out")]
        for name, local_hint in (
            ("rows.json", " (or pass --input-format jsonl)"),
            ("rows.txt", ", or pass --input-format"),
        ):
            source = str(tmp_path / name)
            local = _with_input([*common, "--output", str(tmp_path / "l.jsonl")], source)
            assert main(local) == 2
            said_locally = capsys.readouterr().err
            assert main(_with_input([*common, *out], source)) == 2
            said = capsys.readouterr().err
            # The same words; the local run also names its --input-format, Spark has none.
            assert said.startswith(f"openai-compat batch: input: {source}: ")
            assert said_locally == said.removesuffix("\n") + local_hint + "\n"
        # A directory is judged by its files, all of one format.
        assert main(_with_input([*common, *out], str(tmp_path / "dir"))) == 2
        said = capsys.readouterr().err
        assert "holds files of more than one format" in said
        assert f"such as {tmp_path / 'dir'}/*.jsonl" in said
        # A directory on object storage cannot be judged by name: a glob of its files can.
        assert main(_with_input([*common, *out], "s3a://bucket/dir/")) == 2
        said = capsys.readouterr().err
        assert "cannot tell the format from the name" in said
        assert "give a glob of its files, such as s3a://bucket/dir/*.parquet" in said
        assert srv.requests == []


def test_a_directory_is_read_in_the_format_of_its_files(spark: Any, tmp_path: Path) -> None:
    # Before the one table of formats, Spark read a path without .jsonl or .csv as Parquet.
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows(20)[:10]))
    (data / "b.ndjson.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in rows(20)[10:]).encode())
    )
    (data / "_SUCCESS").write_text("")
    with MockServer() as srv:
        common = _with_input(_cli_args(tmp_path, srv.url, 0), str(data))
        out = ["--engine", "spark", "--output", str(tmp_path / "out"), "--output-format", "jsonl"]
        assert main([*common, *out]) == 0
        assert len(srv.requests) == 20
    lines = [json.loads(line) for line in _lines(tmp_path / "out")]
    assert sorted(line["key"] for line in lines) == list(range(20))
    assert all(line["error"] is None for line in lines)


def test_a_failed_spark_job_is_one_clear_line_not_a_traceback(
    spark: Any, tmp_path: Path, capsys: Any
) -> None:
    # /sys refuses new directories even to root: Spark's writer fails inside the job.
    target = "/sys/openai-compat-test-output"
    assert not os.path.exists(target)
    with MockServer() as srv:
        common = _cli_args(tmp_path, srv.url, 3)
        assert main([*common, "--engine", "spark", "--output", target]) == 4
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("openai-compat batch:"))
    assert "the Spark job failed" in line
    assert "Mkdirs failed to create" in line and "--resume" in line
    assert "Traceback" not in err and CANARY not in err


def _python_workers() -> set[int]:
    """The forked Python workers of this session's JVM (pyspark.daemon's children)."""
    daemon: dict[int, int] = {}
    for pid in _descendants(os.getpid()):
        with contextlib.suppress(OSError):
            if b"pyspark.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes():
                stat = Path(f"/proc/{pid}/stat").read_text()
                daemon[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    return {pid for pid, parent in daemon.items() if parent in daemon}


def _kill_workers_midway(df: Any, after: int, **options: Any) -> tuple[list[int], int, int]:
    """Run ``df``, kill every Python worker once ``after`` requests came; (keys, at kill, sent)."""
    keys: list[int] = []
    with MockServer(latency_s=0.05) as srv:
        out = map_endpoint(df, conf(srv.url), key="id", rate=None, concurrency=4, **options)
        job = threading.Thread(target=lambda: keys.extend(r["id"] for r in out.collect()))
        job.start()
        deadline = time.monotonic() + 240
        while len(srv.requests) < after and time.monotonic() < deadline:
            time.sleep(0.02)
        at_kill = len(srv.requests)
        workers = _python_workers()
        assert workers
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        job.join(timeout=240)
        assert not job.is_alive()
        return keys, at_kill, len(srv.requests)


def test_a_killed_python_worker_loses_nothing_and_duplicates_nothing(spark: Any) -> None:
    df = spark.createDataFrame(rows(300)).repartition(6)
    keys, _, sent = _kill_workers_midway(df, 60)
    assert sorted(keys) == list(range(300))
    assert sent > 300  # the killed tasks' rows were sent again: no cache was given


def test_with_a_cache_a_retried_task_does_not_pay_twice(spark: Any, tmp_path: Path) -> None:
    # Two tasks of 300 rows, both killed ~200 rows in: without a cache ~400 rows again.
    df = spark.createDataFrame(rows(600)).repartition(2)
    keys, at_kill, sent = _kill_workers_midway(df, 400, cache=tmp_path / "answers.sqlite")
    assert sorted(keys) == list(range(600))
    assert at_kill >= 400
    # Sent again: at most each killed attempt's answers not yet stored (64 at a time) and
    # its rows in flight (4).
    assert sent - 600 <= 2 * (64 + 4)


def test_resume_after_the_driver_was_killed(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(400)))
    with MockServer(latency_s=0.05) as srv:
        args = _cli_args(
            tmp_path,
            srv.url,
            400,
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--output",
            str(tmp_path / "out"),
            "--output-format",
            "jsonl",
            "--concurrency",
            "4",
            "--partitions",
            "20",
        )
        driver = subprocess.Popen(
            [sys.executable, "-m", "openai_compat", *args], stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 400  # a JVM's start-up: a minute on a busy machine
            written = 0
            while time.monotonic() < deadline and driver.poll() is None:
                written = len(_lines(tmp_path / "out"))
                if written >= 60:
                    break
                time.sleep(0.05)
            # The tree is stopped before it is listed again: a Python worker forked after a
            # first listing would outlive the kill and send requests during the resumed run.
            started = _descendants(driver.pid)
            for pid in (driver.pid, *started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            started = _descendants(driver.pid)
            driver.kill()  # kill -9: no clean-up of any kind
            driver.wait()
        finally:
            for pid in started:  # the JVM and Python workers that driver started, by PID
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        assert 60 <= written < 400
        assert (tmp_path / "out" / "_temporary").exists()  # tasks in flight, never committed
        before = len(srv.requests)
        # The resumed run in this process (its session: one JVM start-up less).
        assert main([*args, "--resume"]) == 0
        assert len(srv.requests) - before <= 400 - written
    keys = [json.loads(line)["key"] for line in _lines(tmp_path / "out")]
    assert sorted(keys) == list(range(400))
