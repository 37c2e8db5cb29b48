"""Start the real third-party servers of the compatibility tier on 127.0.0.1, and stop them.

Each ``start_*`` is a context manager yielding a ``Running`` server (its chat URL, its key,
its version, its log file); the process is terminated on exit. Their output goes to a log
file in the session's temporary directory, shown when a server fails to start.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .._servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Running:
    """A started server: ``url`` is its full chat-completions URL."""

    name: str
    version: str
    base_url: str
    key: str
    log: Path

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready at {url} after {timeout:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _process(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- LiteLLM proxy ---------------------------------------------------------------------------

LITELLM_TEXT = "Hello from the LiteLLM mock."
_LITELLM_MODELS = {
    "mock-text": LITELLM_TEXT,
    "mock-rate-limit": "litellm.RateLimitError",
    "mock-server-error": "litellm.InternalServerError",
    "mock-context-window": "litellm.ContextWindowExceededError",
}


def _litellm_config() -> str:
    lines = ["model_list:"]
    for name, mock in _LITELLM_MODELS.items():
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{name}",
            "      api_key: not-used-mock-response",
            f'      mock_response: "{mock}"',
        ]
    lines += [
        "litellm_settings:",
        "  num_retries: 0",
        "  telemetry: false",
        "general_settings:",
        "  master_key: os.environ/LITELLM_MASTER_KEY",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def start_litellm(tmp: Path, config_text: str | None = None) -> Iterator[Running]:
    """The LiteLLM proxy with mock_response models (or the models of ``config_text``, a
    proxy config whose master key is ``os.environ/LITELLM_MASTER_KEY``) and a random
    master key."""
    config = tmp / "litellm.yaml"
    config.write_text(config_text or _litellm_config())
    port = free_port()
    key = "sk-" + secrets.token_hex(32)
    log = tmp / "litellm.log"
    env = {
        "LITELLM_MASTER_KEY": key,
        # Offline: the bundled model cost map, no telemetry.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    args = [str(_BIN / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    with _process([*args, "--port", str(port)], log, env) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(proc, f"{base}/health/liveliness", log, 300, "the LiteLLM proxy")
        yield Running("LiteLLM proxy", importlib.metadata.version("litellm"), base, key, log)


# -- llama.cpp llama-server ------------------------------------------------------------------


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_llama_server", REPO_ROOT / "tools" / "build_llama_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def start_llama_server(tmp: Path, key: str, *extra: str, slots: int = 1) -> Iterator[Running]:
    """llama-server (built once, cached outside the checkout) on a tiny random model, with
    ``slots`` requests served at a time (``-np``); ``extra`` arguments added
    (``--embeddings``)."""
    build = _build_module()
    cache = build.build(build.DEFAULT_CACHE)
    port = free_port()
    log = tmp / "llama-server.log"
    args = [
        str(cache / "llama-server"),
        "-m", str(cache / "tiny-llama.gguf"),
        "--host", "127.0.0.1", "--port", str(port),
        "--api-key", key,
        "-c", str(1024 * slots), "-np", str(slots), "-t", "2",
        "--alias", "tiny-llama", *extra,
    ]  # fmt: skip
    with _process(args, log) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(proc, f"{base}/health", log, 120, "llama-server")
        yield Running("llama.cpp llama-server", _llama_version(cache), base, key, log)


def _llama_version(cache: Path) -> str:
    """e.g. ``commit 0c1e570 (llama-cpp-python 0.3.36 sdist)``."""
    out = subprocess.run(
        [str(cache / "llama-server"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"commit (\w+)", out.stdout + out.stderr)
    sdist = cache.name.removeprefix("llama-server-")
    commit = f"commit {match.group(1)} " if match else ""
    return f"{commit}(llama-cpp-python {sdist} sdist)"


# -- llmock ----------------------------------------------------------------------------------

LLMOCK_RPM = 3


@contextmanager
def start_llmock(tmp: Path) -> Iterator[Running]:
    """llmock answering by echo, with a per-key requests-per-minute limit."""
    port = free_port()
    log = tmp / "llmock.log"
    args = [
        str(_BIN / "llmock"), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--response-style", "echo", "--rpm", str(LLMOCK_RPM), "--log-level", "warning",
    ]  # fmt: skip
    with _process(args, log, {"NO_COLOR": "1", "COLUMNS": "120"}) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(proc, f"{base}/_llmock/scenario", log, 60, "llmock")
        yield Running("llmock", importlib.metadata.version("llmock"), base, "", log)
