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
    # The model to ask for, for a server that serves one model under a name it chose.
    model: str = ""

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


# -- Hugging Face transformers serve ---------------------------------------------------------


def tfserve_venv() -> Path:
    """The environment of ``transformers serve``: the ``tfserve`` extra, apart from this one
    (transformers 5 needs huggingface-hub 2, LiteLLM one below 2); ``make test-compat``
    creates it."""
    return Path(os.environ.get("TRANSFORMERS_SERVE_VENV", REPO_ROOT / ".venv-tfserve"))


def _tfserve_python() -> Path:
    python = tfserve_venv() / "bin" / "python"
    if not (tfserve_venv() / "bin" / "transformers").is_file():
        raise RuntimeError(
            f"transformers serve is not installed in {tfserve_venv()}: run make test-compat "
            "(it installs the tfserve extra there), or set TRANSFORMERS_SERVE_VENV"
        )
    return python


def _tfserve_version(python: Path) -> str:
    """e.g. ``5.25.0 (torch 2.13.0+cpu)``."""
    code = (
        "from importlib.metadata import version as v; "
        "print(v('transformers'), f\"(torch {v('torch')})\")"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@contextmanager
def start_transformers_serve(tmp: Path) -> Iterator[Running]:
    """``transformers serve`` pinned to a tiny random llama model, built once offline
    (``tools/make_tiny_hf_llama.py``, cached); ``Running.model`` is the name it answers to.
    It checks no API key. The hub is never asked (``HF_HUB_OFFLINE``)."""
    python = _tfserve_python()
    offline = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    built = subprocess.run(
        [str(python), str(REPO_ROOT / "tools" / "make_tiny_hf_llama.py")],
        capture_output=True,
        text=True,
        env={**os.environ, **offline},
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"tools/make_tiny_hf_llama.py failed:\n{built.stderr[-4000:]}")
    model = built.stdout.strip().splitlines()[-1]
    port = free_port()
    log = tmp / "transformers-serve.log"
    args = [
        str(python.parent / "transformers"), "serve", model,
        "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
    ]  # fmt: skip
    with _process(args, log, offline) as proc:
        base = f"http://127.0.0.1:{port}"
        # Importing torch and transformers is most of its start-up: about 45 s here.
        _wait_ready(proc, f"{base}/health", log, 300, "transformers serve")
        version = _tfserve_version(python)
        yield Running("Hugging Face transformers serve", version, base, "", log, model)
