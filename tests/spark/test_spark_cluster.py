"""Batch runs on a Spark standalone cluster on this machine: a master and two workers of one
core each, all on 127.0.0.1, started by the test (``spark-class ... Master`` / ``Worker``).

The command line's driver runs in its own process against ``spark://127.0.0.1:PORT``: every
key once, work done on both workers (each request traced at the server to the worker its
sender runs under), a worker killed mid-run survived, no console progress bars among the
run's own progress lines and no driver web UI, and nothing listening outside loopback. Each
run is bounded in time: a hang is a failed test, never a stuck suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark
import pytest

from openai_compat.testing import MockServer
from tests._senders import Senders
from tests._servers import serve_asgi
from tests.conftest import make_config
from tests.spark.test_spark_engine import LOOPBACK, _descendants, _listening

TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'
_BOUND_S = 400.0  # a JVM's start-up is a minute on a busy 2-core machine; never forever


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class _Standalone:
    master: str
    processes: dict[str, subprocess.Popen[bytes]]
    work: dict[str, Path]
    env: dict[str, str]


def _spark_class(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    home = Path(pyspark.__file__).parent
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(home / "bin" / "spark-class"), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for(text: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + _BOUND_S
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not start: {log.read_text(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Standalone]:
    base = tmp_path_factory.mktemp("spark-standalone")
    env = {
        **os.environ,
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(base / "logs"),
        # The executors' Python workers run the tests' interpreter, with its packages.
        "PYSPARK_PYTHON": sys.executable,
    }
    port = _free_port()
    master = f"spark://127.0.0.1:{port}"
    processes = {
        "master": _spark_class(
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(_free_port()),
            env=env,
            log=base / "master.log",
        )
    }
    work: dict[str, Path] = {}
    try:
        _wait_for("I have been elected leader", base / "master.log", "the master")
        for name in ("one", "two"):
            work[name] = base / f"work-{name}"
            processes[name] = _spark_class(
                "org.apache.spark.deploy.worker.Worker",
                master,
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--work-dir",
                str(work[name]),
                "--webui-port",
                str(_free_port()),
                env=env,
                log=base / f"worker-{name}.log",
            )
            _wait_for("Successfully registered with master", base / f"worker-{name}.log", name)
        yield _Standalone(master, processes, work, env)
    finally:
        for process in processes.values():
            _stop(process)


def _rows(n: int) -> str:
    return "".join(json.dumps({"id": i, "text": f"t{i}"}) + "\n" for i in range(n))


def _run(
    cluster: _Standalone, tmp_path: Path, url: str, n: int, *extra: str
) -> subprocess.Popen[bytes]:
    (tmp_path / "in.jsonl").write_text(_rows(n))
    (tmp_path / "conn.json").write_text(json.dumps(make_config(url, request_format=TEMPLATE)))
    args = [
        "batch",
        "--config",
        str(tmp_path / "conn.json"),
        "--input",
        str(tmp_path / "in.jsonl"),
        "--output",
        str(tmp_path / "out"),
        "--output-format",
        "jsonl",
        "--key",
        "id",
        "--rate",
        "off",
        "--engine",
        "spark",
        "--spark-master",
        cluster.master,
        "--progress",
        "lines",
        "--progress-interval",
        "1",
        *extra,
    ]
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "openai_compat", *args],
            env=cluster.env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _keys(out: Path) -> list[Any]:
    return [
        json.loads(line)["key"]
        for part in sorted(out.glob("part-*.txt"))
        for line in part.read_text().splitlines()
        if line
    ]


def _executors(work: Path) -> int:
    """The executors the worker started (one directory each under the app's)."""
    return sum(1 for app in work.glob("app-*") for _ in app.iterdir())


def test_every_key_once_work_on_both_workers_and_a_quiet_loopback_driver(
    standalone: _Standalone, tmp_path: Path
) -> None:
    workers = {process.pid: name for name, process in standalone.processes.items()}
    app = Senders(workers.get, latency_s=0.02)
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        driver = _run(standalone, tmp_path, url, 300, "--partitions", "6")
        ours: set[int] = set()
        deadline = time.monotonic() + _BOUND_S
        while driver.poll() is None and time.monotonic() < deadline:
            ours |= _descendants(driver.pid)
            sockets = [(pid, address) for pid, address in _listening() if pid in ours]
            assert [(pid, a) for pid, a in sockets if a not in LOOPBACK] == []
            time.sleep(0.5)
        if driver.poll() is None:
            _stop(driver)
            raise AssertionError(f"the run did not end within {_BOUND_S:.0f} s")
        assert driver.returncode == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    assert sorted(_keys(tmp_path / "out")) == list(range(300))
    assert all(_executors(work) >= 1 for work in standalone.work.values())
    # At the server: each request's sender runs under one of the two workers, and both sent.
    assert len(app.owners) == 300
    assert sorted(set(app.owners), key=str) == ["one", "two"]
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "[Stage" not in stderr  # Spark's console progress bars
    assert "batch: " in stderr  # the run's own progress lines


def test_a_worker_killed_mid_run_loses_nothing_and_hangs_nothing(
    standalone: _Standalone, tmp_path: Path
) -> None:
    with MockServer(latency_s=0.05) as srv:
        driver = _run(standalone, tmp_path, srv.url, 300, "--partitions", "10")
        deadline = time.monotonic() + _BOUND_S
        while len(srv.requests) < 40 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(srv.requests) >= 40, (tmp_path / "stderr.txt").read_text()[-3000:]
        _stop(standalone.processes["two"])  # the worker and its executor, killed
        try:
            driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _stop(driver)
            raise AssertionError(f"the run did not end within {_BOUND_S:.0f} s") from None
        assert driver.returncode == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    assert sorted(_keys(tmp_path / "out")) == list(range(300))
