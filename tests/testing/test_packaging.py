"""The package users install, not the checkout: missing package data must never ship.

The sdist and the wheel are built as a release builds them (``python -m build``: an isolated
build environment, the wheel built from the sdist), the wheel is installed (not editable) into
a fresh virtual environment with its dependencies from the configured package index, and the
installed ``openai-compat`` runs with a working directory outside the checkout, so nothing can
be imported from ``src/``. The servers listen on 127.0.0.1, on free ports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import CANARY, make_config

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "openai_compat"
# The files setuptools only ships when package-data names them.
DATA_DIRS = ("app/static", "app/db/migrations", "resources")
_START_TIMEOUT_S = 30.0
# What a clean clone does not have (build state, environments, caches, git).
_BUILD_STATE = (
    ".git", ".venv", "venv", "*.egg-info", "build", "dist", "__pycache__", "*_cache",
    ".hypothesis",
)  # fmt: skip


def _package_files() -> list[str]:
    """Every file of the package in the checkout, relative to ``src/`` (no byte code)."""
    return sorted(
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def _clean_env() -> dict[str, str]:
    """The environment for the installed commands: nothing pointing back at the checkout.

    Byte code may be written: the wheel is installed without compiling, so the first start
    compiles what it imports and the next starts reuse it.
    """
    dropped = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DATABASE_URL", "PYTHONDONTWRITEBYTECODE"}
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OPENAI_COMPAT_") and key not in dropped
    }


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> str:
    """Run ``cmd``; its stdout and stderr together, or a failure that shows them."""
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{cmd} exited with {done.returncode}:\n{done.stdout}"
    return done.stdout


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path
    build_output: str


@dataclass(frozen=True)
class Installed:
    bin: Path
    outside: Path  # a working directory outside the checkout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    # From a copy without the build state of the checkout: the sdist would otherwise take
    # back every file listed in the SOURCES.txt of src/*.egg-info (left by the editable
    # install), hiding a file that package-data no longer names.
    source = tmp_path_factory.mktemp("source") / "openai-compat"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*_BUILD_STATE))
    out = tmp_path_factory.mktemp("dist")
    output = _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=out)
    (sdist,) = out.glob("openai_compat-*.tar.gz")
    (wheel,) = out.glob("openai_compat-*-py3-none-any.whl")
    return Dists(sdist, wheel, output)


@pytest.fixture(scope="module")
def installed(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    outside = tmp_path_factory.mktemp("outside")
    venv = outside / "venv"
    # A new environment from the base interpreter: the checkout's .venv (with its editable
    # install) is not on its path. The suite's pip installs into it (--python, pip >= 22.3):
    # bootstrapping a pip of its own and byte-compiling every dependency took 30 of 35 s.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=outside)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-compile",
         str(dists.wheel)],
        cwd=outside,
    )  # fmt: skip
    return Installed(venv / "bin", outside)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(cmd: list[str], cwd: Path, ready_url: str) -> Iterator[Path]:
    """Run ``cmd`` until ``ready_url`` answers; yield its log file; always stop it."""
    log_path = cwd / f"server-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            cmd, cwd=cwd, env=_clean_env(), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + _START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"{cmd} exited at start:\n{log_path.read_text()}")
                try:
                    httpx.get(ready_url, timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"{cmd} did not answer in {_START_TIMEOUT_S} s:\n{log_path.read_text()}"
                        ) from None
                    time.sleep(0.1)
            yield log_path
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_build_prints_no_deprecation_warning(dists: Dists) -> None:
    assert "Successfully built" in dists.build_output
    assert not re.search(r"deprecat", dists.build_output, re.IGNORECASE), dists.build_output


def test_sdist_and_wheel_hold_every_package_file(dists: Dists) -> None:
    expected = _package_files()
    for directory in DATA_DIRS:
        assert any(name.startswith(f"openai_compat/{directory}/") for name in expected), directory
    with tarfile.open(dists.sdist) as sdist:
        root = sdist.getnames()[0].split("/")[0]
        in_sdist = {name.removeprefix(f"{root}/src/") for name in sdist.getnames()}
    with zipfile.ZipFile(dists.wheel) as wheel:
        in_wheel = set(wheel.namelist())
    missing_from_sdist = [name for name in expected if name not in in_sdist]
    assert missing_from_sdist == [], "not in the sdist (package-data in pyproject.toml?)"
    missing_from_wheel = [name for name in expected if name not in in_wheel]
    assert missing_from_wheel == [], "not in the wheel (package-data in pyproject.toml?)"


def test_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    code = "import openai_compat; print(openai_compat.__file__)"
    where = _run([str(installed.bin / "python"), "-c", code], cwd=installed.outside).strip()
    assert Path(where).is_relative_to(installed.bin.parent / "lib"), where
    assert not Path(where).is_relative_to(REPO), where


def test_installed_spec(installed: Installed) -> None:
    out = _run([str(installed.bin / "openai-compat"), "spec"], cwd=installed.outside)
    message = json.loads(out)
    assert message["type"] == "connector_spec"
    properties = message["connector_spec"]["connection_specification"]["properties"]
    assert {"url", "api_key", "request_format", "response_format"} <= properties.keys()


@contextmanager
def _mock_server(installed: Installed) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    cmd = [str(installed.bin / "openai-compat"), "mock-server", "--port", str(port)]
    with _server(cmd, installed.outside, f"http://127.0.0.1:{port}/v1/models"):
        yield url


def test_installed_mock_server_answers(installed: Installed) -> None:
    with _mock_server(installed) as url:
        body = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi there"}]}
        response = httpx.post(url, json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "You said: Hi there"


def _newest_migration() -> str:
    revisions = [
        re.search(r'^revision = "([^"]+)"', path.read_text(), re.MULTILINE)
        for path in (PACKAGE / "app" / "db" / "migrations" / "versions").glob("[0-9]*.py")
    ]
    return max(match.group(1) for match in revisions if match)


def test_installed_serve_has_page_static_files_docs_and_migrations(installed: Installed) -> None:
    data_dir = installed.outside / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        str(installed.bin / "openai-compat"), "serve", "--host", "127.0.0.1",
        "--port", str(port), "--data-dir", str(data_dir),
    ]  # fmt: skip
    with (
        _mock_server(installed) as endpoint,
        _server(cmd, installed.outside, base + "/health") as log_path,
        httpx.Client(base_url=base, timeout=30) as anonymous,
    ):
        page = anonymous.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "/static/app.js" in page.text
        # Every static file of the checkout is served, byte for byte.
        for path in sorted((PACKAGE / "app" / "static").iterdir()):
            served = anonymous.get(f"/static/{path.name}")
            assert served.status_code == 200, path.name
            assert served.content == path.read_bytes(), path.name
        docs = anonymous.get("/docs")
        assert docs.status_code == 200
        assert "/static/swagger/swagger-ui-bundle.js" in docs.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            served = anonymous.get(f"/static/swagger/{asset}")
            assert served.status_code == 200, asset
            assert len(served.content) > 10_000, asset
        assert anonymous.get("/api/v1/connectors").status_code == 401

        token = (data_dir / "token").read_text().strip()
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            assert "/api/v1/connectors" in client.get("/openapi.json").json()["paths"]
            # The migrations ran on the new SQLite database: the tables exist and work.
            listed = client.get("/api/v1/connectors").json()
            assert (listed["data"], listed["total"], listed["next_cursor"]) == ([], 0, None)
            created = client.post(
                "/api/v1/connectors",
                json={"name": "installed", "configuration": make_config(endpoint)},
            )
            assert created.status_code == 201, created.text
            check = client.post(f"/api/v1/connectors/{created.json()['id']}/check")
            assert check.json()["connection_status"]["status"] == "succeeded", check.text
        log = log_path.read_text()
    assert CANARY not in log
    with sqlite3.connect(data_dir / "openai-compat.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [
            (_newest_migration(),)
        ]
        (stored,) = db.execute("select * from connectors").fetchall()
    assert CANARY not in repr(stored)
