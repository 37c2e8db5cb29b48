"""The LiteLLM proxy in front of llama.cpp's llama-server: a structured-outputs batch (the
run of ``test_llama_structured``, fewer rows) passes through it, and it bridges
``/v1/embeddings`` and ``/v1/responses`` to llama-server.

Row counts are small: llama-server answers a schema row in about 5 s on the shared 2-core
machine, and every request here crosses two servers.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openai_compat import run_batch_sync
from openai_compat.cli import main

from ..conftest import CANARY, NO_RETRY
from ._helpers import complete
from ._launch import Running, start_litellm, start_llama_server
from .conftest import _EXTRA_SECRETS
from .test_llama_structured import SCHEMA, TEMPLATE

pytestmark = [pytest.mark.compat, pytest.mark.server("litellm")]
ROWS = 6
MODEL = "tiny-llama"
EMBED = "tiny-embed"


def _proxy_config(upstream: Running) -> str:
    base = f"{upstream.base_url}/v1"
    lines = ["model_list:"]
    for name, mode in ((MODEL, "chat"), (EMBED, "embedding")):
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{MODEL}",
            f"      api_base: {base}",
            "      api_key: os.environ/LLAMA_UPSTREAM_KEY",
            "    model_info:",
            f"      mode: {mode}",
        ]
    lines += [
        "litellm_settings:",
        "  num_retries: 0",
        "  telemetry: false",
        "  drop_params: false",
        "general_settings:",
        "  master_key: os.environ/LITELLM_MASTER_KEY",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """llama-server (grammar-friendly template, embeddings on) behind a LiteLLM proxy."""
    tmp = tmp_path_factory.mktemp("litellm-llama")
    upstream_key = secrets.token_hex(16)
    _EXTRA_SECRETS.add(upstream_key)  # checked against every test's output, as the proxy's
    extra = ["--jinja", "--chat-template", TEMPLATE, "--embeddings", "--pooling", "mean"]
    with start_llama_server(tmp, upstream_key, *extra) as upstream:
        os.environ["LLAMA_UPSTREAM_KEY"] = upstream_key
        try:
            with start_litellm(tmp, _proxy_config(upstream)) as proxy:
                _EXTRA_SECRETS.add(proxy.key)
                yield proxy
        finally:
            os.environ.pop("LLAMA_UPSTREAM_KEY", None)


def _conn(proxy: Running, tmp: Path, path: str, body: dict[str, Any]) -> Path:
    config = {
        "url": proxy.base_url + path,
        "api_key": proxy.key,
        "config": {"timeout": 120},
        "request_format": json.dumps(body),
    }
    conn = tmp / "conn.json"
    conn.write_text(json.dumps(config))
    return conn


def test_a_structured_batch_passes_through_the_proxy(
    proxied: Running, tmp_path: Path, capsys: Any
) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Classify this ticket: {{text}}"}],
        "max_tokens": 120,
        "temperature": 0,
    }
    conn = _conn(proxied, tmp_path, "/v1/chat/completions", body)
    (tmp_path / "in.csv").write_text(
        "id,text\n" + "".join(f"t{i},printer {i} on fire\n" for i in range(ROWS))
    )
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    out = tmp_path / "out.parquet"
    code = main(
        [
            "batch", "--config", str(conn), "--input", str(tmp_path / "in.csv"),
            "--output", str(out), "--key", "id", "--schema", str(tmp_path / "schema.json"),
            "--concurrency", "1", "--rate", "off",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"schema mode json_schema: {ROWS} valid first, 0 after re-asks, 0 invalid" in err
    table = pq.read_table(out)
    assert table.schema.field("urgency").type == pa.int64()
    assert table.schema.field("tags").type == pa.large_list(pa.large_string())
    for row in table.to_pylist():
        assert row["error_message"] is None
        assert row["label"] in ("bug", "question", "billing") and 0 <= row["urgency"] <= 9
    assert proxied.key not in err and CANARY not in err


def test_embeddings_are_bridged_and_packed(proxied: Running, tmp_path: Path) -> None:
    config = json.loads(
        _conn(
            proxied, tmp_path, "/v1/embeddings", {"model": EMBED, "input": "{{text}}"}
        ).read_text()
    )
    rows = [{"id": f"r{i}", "text": f"row {i} says hello"} for i in range(20)]
    out = tmp_path / "vectors.parquet"
    summary = run_batch_sync(
        config, rows, out, key="id", rate=None, rows_per_request=8, retry=NO_RETRY
    )
    assert (summary.ok, summary.failed) == (20, 0)
    table = pq.read_table(out)
    assert table.schema.field("embedding").type == pa.list_(pa.float32())
    vectors = table.column("embedding").to_pylist()
    assert {len(v) for v in vectors} == {64}  # the tiny model's hidden size
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)


@pytest.mark.parametrize("stream", [False, True])
def test_responses_are_bridged_streamed_and_whole(
    proxied: Running, tmp_path: Path, stream: bool
) -> None:
    body = {"model": MODEL, "input": "Say hello", "max_output_tokens": 16, "temperature": 0}
    config = json.loads(_conn(proxied, tmp_path, "/v1/responses", body).read_text())
    config["is_stream"] = stream
    completion = asyncio.run(complete(config, body))
    assert completion.streamed is stream and completion.warnings == []
    answer = completion.response
    assert answer["status"] in ("completed", "incomplete")
    assert isinstance(answer["output_text"], str) and answer["output_text"]
    assert answer["usage"]["output_tokens"] > 0
