"""Every shell and Python example of the documentation runs, one test per code block.

The blocks of a page run in order in one scratch directory, which starts with what the
blocks of Getting started made (``conn.json``, ``tickets.csv``), as for a reader who began
there. Port 8080 in a block is the scripted server started here, port 8000 an application
started here (``$TOKEN`` is its token); a block may name no other host. A block that cannot
run here carries ``<!-- example: skip REASON -->`` on the line before its fence, and is
reported as skipped with that reason; an unmarked block of a runnable language always runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openai_compat.testing import MockServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SETUP_PAGE = "docs/getting-started.md"
SHELL = {"sh", "bash", "shell", "console"}
PYTHON = {"python", "py", "python3"}
MOCK_PORT, APP_PORT = 8080, 8000
LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
BLOCK_TIMEOUT_S = 120
TOKEN = "docs-example-token-0123456789"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_MARKER = re.compile(r"<!--\s*example:\s*(?P<verb>\w+)\s*(?P<reason>.*?)\s*-->")
# A URL with a host (sqlite:///file has none): the host must be loopback.
_URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^/@\s'\"]*@)?(?P<host>\[[^\]]*\]|[^/:\s'\"\\]+)")


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str  # relative to the repository
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None = None  # the marker's reason, when marked

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language in SHELL | PYTHON


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with the marker on the line before each."""
    page = str(path.relative_to(ROOT))
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, ticks = match["indent"], match["ticks"]
        language = (match["info"].split() or [""])[0].strip("{}.").lower()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(ticks):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        if j == len(lines):
            raise AssertionError(f"{page}:{i + 1}: a code fence that is never closed")
        skip = None
        previous = lines[i - 1] if i else ""
        marker = _MARKER.search(previous)
        if marker:
            if marker["verb"] != "skip" or not marker["reason"]:
                raise AssertionError(f"{page}:{i}: write <!-- example: skip REASON -->")
            skip = marker["reason"]
        found.append(Block(page, i + 1, language, "\n".join(body) + "\n", skip))
        i = j + 1
    return found


def documented_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def all_blocks() -> list[Block]:
    return [b for path in documented_pages() for b in blocks_of(path)]


def foreign_hosts(code: str) -> list[str]:
    """The hosts a block names that are not loopback.

    >>> foreign_hosts("curl http://127.0.0.1:8000/x; psql postgresql://app:pw@db.internal/crm")
    ['db.internal']
    >>> foreign_hosts("--input sqlite:///tickets.db")
    []
    """
    return [m["host"] for m in _URL_HOST.finditer(code) if m["host"] not in LOOPBACK]


RUNNABLE = [b for b in all_blocks() if b.runnable]


def test_the_pages_have_runnable_examples() -> None:
    ran = [b for b in RUNNABLE if b.skip is None]
    skipped = [b for b in RUNNABLE if b.skip is not None]
    assert len(ran) >= 25, [b.id for b in ran]
    # Marks are for the few blocks that need what this machine has not: a cluster, make.
    assert len(skipped) <= len(ran) // 2, [f"{b.id}: {b.skip}" for b in skipped]
    pages = {b.page for b in ran}
    for page in ("README.md", SETUP_PAGE, "docs/batch/index.md", "docs/app/runs.md"):
        assert page in pages, page


def test_no_example_leaves_this_machine() -> None:
    leaving = {b.id: foreign_hosts(b.code) for b in RUNNABLE if b.skip is None}
    assert {k: v for k, v in leaving.items() if v} == {}


@dataclass
class Servers:
    """The scripted server, and the application when a block needs one (started lazily)."""

    tmp: Path
    mock: MockServer
    _app: Any = None

    def app(self) -> Any:
        if self._app is None:
            from tests.app_support import AppProcess

            self._app = AppProcess(self.tmp / "app-data", token=TOKEN)
        return self._app

    def stop(self) -> None:
        if self._app is not None:
            self._app.stop()


@dataclass
class PageRun:
    """The blocks of one page run so far, in its scratch directory."""

    workdir: Path
    done: int = 0  # blocks run, in page order
    failed: str | None = None  # the first block that failed
    failure: str = ""


def _environment(servers: Servers, needs_app: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_COMPAT_")}
    env.pop("DATABASE_URL", None)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    # The checkout's package, whatever the environment has installed.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    env["OPENAI_COMPAT_DATA_DIR"] = str(servers.tmp / "data-dir")
    env["NO_COLOR"] = "1"
    if needs_app:
        env["TOKEN"] = servers.app().token
    return env


def _substitute(code: str, servers: Servers) -> tuple[str, bool]:
    needs_app = re.search(rf"(127\.0\.0\.1|localhost):{APP_PORT}\b", code) is not None
    code = re.sub(
        rf"(127\.0\.0\.1|localhost):{MOCK_PORT}\b", f"127.0.0.1:{servers.mock.port}", code
    )
    if needs_app:
        code = re.sub(rf"(127\.0\.0\.1|localhost):{APP_PORT}\b", servers.app().url[7:], code)
    return code, needs_app


def run_block(block: Block, workdir: Path, servers: Servers) -> subprocess.CompletedProcess[str]:
    code, needs_app = _substitute(block.code, servers)
    env = _environment(servers, needs_app or "$TOKEN" in code)
    if block.language in PYTHON:
        script = workdir / f"_example_{block.line}.py"
        script.write_text(code, encoding="utf-8")
        cmd = [sys.executable, str(script)]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", code]
    return subprocess.run(
        cmd,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with MockServer() as mock:
        running = Servers(tmp_path_factory.mktemp("docs-servers"), mock)
        try:
            yield running
        finally:
            running.stop()


_RUNS: dict[str, PageRun] = {}


def _page_run(page: str, tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> PageRun:
    if page in _RUNS:
        return _RUNS[page]
    workdir = tmp_path_factory.mktemp("page-" + re.sub(r"\W", "-", page))
    # The README stands alone; the guide's pages follow on from Getting started.
    if page.startswith("docs/") and page != SETUP_PAGE:
        setup = _page_run(SETUP_PAGE, tmp_path_factory, servers)
        _advance(SETUP_PAGE, setup, None, servers)
        if setup.failed:
            pytest.fail(f"the set-up page failed at {setup.failed}", pytrace=False)
        shutil.copytree(setup.workdir, workdir, dirs_exist_ok=True)
    _RUNS[page] = PageRun(workdir)
    return _RUNS[page]


def _advance(page: str, run: PageRun, upto: Block | None, servers: Servers) -> None:
    """Run the page's runnable blocks up to and including ``upto`` (all when None)."""
    blocks = [b for b in RUNNABLE if b.page == page and b.skip is None]
    last = len(blocks) if upto is None else blocks.index(upto) + 1
    while run.done < last and run.failed is None:
        block = blocks[run.done]
        result = run_block(block, run.workdir, servers)
        run.done += 1
        if result.returncode != 0:
            run.failed = block.id
            run.failure = (
                f"{block.id} exited {result.returncode}\n--- block\n{block.code}"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
            )
            return


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_example(block: Block, servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> None:
    if block.skip is not None:
        pytest.skip(f"marked in the page: {block.skip}")
    run = _page_run(block.page, tmp_path_factory, servers)
    _advance(block.page, run, block, servers)
    servers.mock.clear()
    if run.failed == block.id:
        pytest.fail(run.failure, pytrace=False)
    if run.failed is not None:
        pytest.fail(
            f"an earlier block of the page failed ({run.failed}); this one needs it",
            pytrace=False,
        )
