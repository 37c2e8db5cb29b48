"""The compatibility tier: real third-party servers, started once per session.

Every test here is marked ``compat`` (deselected by plain ``make test``; ``make test-compat``
runs them), ``server(ID)`` and ``cell(COLUMN)``. The outcome of each test is recorded per
server and column of the compatibility table and written to ``build/compat-results.json``
at the end of the session; ``tools/compat_table.py`` turns that into the table of
``docs/compat.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import CANARY
from ._launch import REPO_ROOT, Running, start_litellm, start_llama_server, start_llmock

RESULTS = Path(os.environ.get("COMPAT_RESULTS", REPO_ROOT / "build" / "compat-results.json"))
_SERVERS: dict[str, dict[str, str]] = {}
_CELLS: list[dict[str, Any]] = []
# Secrets the suite's canary check does not know: LiteLLM's random master key.
_EXTRA_SECRETS: set[str] = set()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    captured = "\n".join(content for _, content in report.sections) + str(report.longrepr or "")
    leaked = [s for s in _EXTRA_SECRETS if s and s in captured]
    if leaked and report.passed:
        report.outcome = "failed"
        report.longrepr = "a server's API key leaked into the test's output or logs"
    server = item.get_closest_marker("server")
    cell = item.get_closest_marker("cell")
    record = report.when == "call" or (report.when == "setup" and not report.passed)
    if server is not None and cell is not None and record:
        _CELLS.append(
            {
                "server": server.args[0],
                "cell": cell.args[0],
                "note": cell.kwargs.get("note"),
                "test": item.nodeid,
                "outcome": report.outcome,
            }
        )
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _CELLS:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"servers": _SERVERS, "cells": _CELLS}, indent=2) + "\n")


def _register(server_id: str, running: Running) -> None:
    _SERVERS[server_id] = {"name": running.name, "version": running.version}


@pytest.fixture(scope="session")
def litellm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with start_litellm(tmp_path_factory.mktemp("litellm")) as running:
        _EXTRA_SECRETS.add(running.key)
        _register("litellm", running)
        yield running


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with start_llama_server(tmp_path_factory.mktemp("llama"), CANARY) as running:
        _register("llama", running)
        yield running


@pytest.fixture(scope="session")
def llmock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with start_llmock(tmp_path_factory.mktemp("llmock")) as running:
        _register("llmock", running)
        yield running
