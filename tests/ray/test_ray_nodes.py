"""Batch runs on a Ray cluster of several nodes on this machine: raylets of 1 CPU each, the
head and its workers all on 127.0.0.1, started by the test (``ray.cluster_utils.Cluster``).

A run must end, with every key once, whatever node is lost, and its default options must
send rows on nodes of one CPU. Each run is waited for in a thread with a bound, so a hang is
a failed test, never a stuck suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray.cluster_utils import Cluster

import ray
from openai_compat.cli import main
from openai_compat.errors import ConfigurationError
from openai_compat.ray import map_endpoint
from openai_compat.testing import MockServer
from tests._senders import Senders, name_of
from tests._servers import serve_asgi
from tests.conftest import make_config
from tests.ray.test_ray_engine import _LOOPBACK, Stamped, _children, _listening

TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'
# Far above what a run of these sizes takes on a busy 2-core machine, far below forever.
_BOUND_S = 300.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head and one worker node of 1 CPU and one ``sender`` each; the driver connects to
    the head."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # 127.0.0.1 only
    temp = tmp_path_factory.mktemp("ray")  # its own session files, not the shared /tmp/ray
    nodes = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "node_ip_address": "127.0.0.1",
            "temp_dir": str(temp),
            "resources": {"sender": 1},
        },
    )
    nodes.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"sender": 1})
    ray.init(address=nodes.address, log_to_driver=False, logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "text": f"t{i}"} for i in range(n)]


def _collect(ds: Any) -> tuple[threading.Thread, list[list[dict[str, Any]]]]:
    """``ds``'s rows, taken in a thread (joined with a bound by the caller)."""
    out: list[list[dict[str, Any]]] = []
    thread = threading.Thread(target=lambda: out.append(ds.take_all()), daemon=True)
    thread.start()
    return thread, out


def _finished(thread: threading.Thread, out: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    thread.join(_BOUND_S)
    assert not thread.is_alive(), f"the run did not end within {_BOUND_S:.0f} s"
    assert out, "the run failed (see the thread's error above)"
    return out[0]


def test_default_options_send_every_row_on_nodes_of_one_cpu(cluster: Cluster) -> None:
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    with MockServer() as srv:
        ds = ray.data.from_items(_rows(60))
        thread, out = _collect(map_endpoint(ds, make_config(srv.url, request_format=TEMPLATE)))
        found = _finished(thread, out)
        assert len(srv.requests) == 60
    assert sorted(r["id"] for r in found) == list(range(60))
    assert all(r["error_message"] is None for r in found)
    sockets = _listening(_children(os.getpid()))
    assert len(sockets) >= 4  # the GCS, two raylets, the workers
    assert [(pid, address) for pid, address in sockets if address not in _LOOPBACK] == []


def test_a_worker_node_lost_mid_run_ends_with_every_key_once(cluster: Cluster) -> None:
    node = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    with MockServer(latency_s=0.05) as srv:
        ds = ray.data.from_items(_rows(200))
        out_ds = map_endpoint(
            ds, make_config(srv.url, request_format=TEMPLATE), key="id", actors=3, batch_size=20
        )
        thread, out = _collect(out_ds)
        deadline = time.monotonic() + _BOUND_S
        while len(srv.requests) < 30 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        assert len(srv.requests) >= 30, "the run never got going"
        cluster.remove_node(node, allow_graceful=False)  # its raylet and workers, killed
        found = _finished(thread, out)
    keys = [r["id"] for r in found]
    assert sorted(keys) == list(range(200))  # every key, once
    failed = [r for r in found if r["error_message"] is not None]
    assert failed == []


def test_the_next_run_after_a_lost_node_starts_and_ends(cluster: Cluster) -> None:
    with MockServer() as srv:
        out = map_endpoint(
            ray.data.from_items(_rows(5)), make_config(srv.url, request_format=TEMPLATE), rate=None
        )
        assert out.count() == 5


def test_the_cluster_refuses_a_driver_without_its_token(cluster: Cluster) -> None:
    # The suite's clusters take their token from the environment (tests/conftest.py): a
    # driver given none, or another, is turned away instead of running code on the nodes.
    assert os.environ["RAY_AUTH_MODE"] == "token"
    probe = f"import ray; ray.init(address={cluster.address!r}); print('connected')"
    for token in (None, "0" * 64):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        if token is not None:
            env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=240
        )
        assert done.returncode != 0
        assert "connected" not in done.stdout
        assert "InvalidAuthToken" in done.stderr or "token" in done.stderr.lower()


def test_the_rate_holds_for_the_job_across_nodes(cluster: Cluster) -> None:
    # Ray places the actors (both nodes, or one): the job's rate holds either way.
    app = Stamped()
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        ds = map_endpoint(
            ray.data.from_items(_rows(90)),
            make_config(url, request_format=TEMPLATE),
            rate="15/second",
            actors=4,
            concurrency=4,
            batch_size=10,
        )
        thread, out = _collect(ds)
        found = _finished(thread, out)
    assert sorted(r["id"] for r in found) == list(range(90))
    stamps = sorted(app.stamps)
    # One second's burst (15), then 15/s for all the actors together. Stamps are taken
    # when a request arrives: one granted just before a window may land in it (the slack).
    assert len(stamps) == 90
    assert stamps[-1] - stamps[0] >= (90 - 15) / 15 * 0.9
    busiest = max(sum(start <= s < start + 2.0 for s in stamps) for start in stamps)
    assert busiest <= 2 * 15 + 15 + 3


def test_actors_asking_for_a_resource_each_node_has_once_send_from_both_nodes(
    cluster: Cluster,
) -> None:
    # Ray Data spreads actors over the nodes only as a preference; a custom resource each
    # node offers once is what puts one actor on each, so both nodes send work.
    app = Senders(lambda pid: pid if name_of(pid) == "raylet" else None)
    with serve_asgi(app) as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        ds = map_endpoint(
            ray.data.from_items(_rows(80)),
            make_config(url, request_format=TEMPLATE),
            key="id",
            actors=2,
            batch_size=10,
            rate=None,
            resources={"sender": 1},
        )
        thread, out = _collect(ds)
        found = _finished(thread, out)
    assert sorted(r["id"] for r in found) == list(range(80))
    assert len(app.owners) == 80
    assert None not in app.owners  # every request's sender found under a raylet
    assert len(set(app.owners)) == 2  # two nodes sent
    assert min(app.owners.count(r) for r in set(app.owners)) >= 10  # each its share


def test_a_wrong_resource_is_refused_before_anything_runs() -> None:
    for wrong, said in (({"CPU": 1}, "use num_cpus"), ({"sender": 0}, "above 0")):
        with pytest.raises(ConfigurationError, match=said):
            map_endpoint(
                ray.data.from_items(_rows(1)),
                make_config("http://127.0.0.1:9/v1/chat/completions", request_format=TEMPLATE),
                resources=wrong,
                columns=["id", "text"],
            )


def test_the_command_line_asks_for_resources_and_refuses_a_wrong_one(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.jsonl").write_text(
        "".join(f'{{"id": {i}, "text": "t{i}"}}\n' for i in range(20))
    )
    with MockServer() as srv:
        (tmp_path / "conn.json").write_text(
            json.dumps(make_config(srv.url, request_format=TEMPLATE))
        )
        common = ["batch", "--engine", "ray", "--config", str(tmp_path / "conn.json")]
        common += ["--input", str(tmp_path / "in.jsonl"), "--key", "id", "--quiet"]
        common += ["--output", str(tmp_path / "out"), "--output-format", "jsonl"]
        with pytest.raises(SystemExit) as exited:
            main([*common, "--ray-resources", "sender=none"])
        assert exited.value.code == 2
        assert "'sender=none' is not NAME=X with X a number above 0" in capsys.readouterr().err
        assert srv.requests == []
        assert main([*common, "--ray-resources", "sender=1"]) == 0
        assert len(srv.requests) == 20
    lines = [
        json.loads(x) for p in (tmp_path / "out").glob("part-*") for x in p.read_text().splitlines()
    ]
    assert sorted(int(line["key"]) for line in lines) == list(range(20))
