"""llama.cpp's llama-server, started with embeddings on, through every API the connector
speaks: an embeddings batch packed by 64 into a Parquet list<float32> column, and
``/v1/responses`` and ``/v1/completions`` streamed and whole."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openai_compat import run_batch_sync

from ..conftest import CANARY, NO_RETRY
from ._helpers import complete, errors, records, run
from ._launch import Running, start_llama_server

pytestmark = [pytest.mark.compat, pytest.mark.server("llama")]
MODEL = "tiny-llama"


@pytest.fixture(scope="module")
def llama_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("llama-embeddings")
    with start_llama_server(tmp, CANARY, "--embeddings", "--pooling", "mean") as running:
        yield running


def _config(server: Running, path: str, body: dict[str, Any], *, stream: bool = False) -> Any:
    return {
        "url": server.base_url + path,
        "api_key": server.key,
        "is_stream": stream,
        "config": {"timeout": 60},
        "request_format": json.dumps(body),
    }


def test_an_embeddings_batch_is_packed_by_64_into_a_list_of_float32_column(
    llama_embeddings: Running, tmp_path: Path
) -> None:
    config = _config(llama_embeddings, "/v1/embeddings", {"model": MODEL, "input": "{{text}}"})
    rows = [{"id": f"r{i}", "text": f"row {i} says {'hello ' * (i % 4)}"} for i in range(500)]
    out = tmp_path / "vectors.parquet"
    summary = run_batch_sync(config, rows, out, key="id", rate=None, concurrency=2, retry=NO_RETRY)
    assert (summary.ok, summary.failed) == (500, 0)
    table = pq.read_table(out)
    assert table.schema.field("embedding").type == pa.list_(pa.float32())
    vectors = table.column("embedding").to_pylist()
    # The tiny model's hidden size; every vector normalised (llama-server's default).
    assert {len(v) for v in vectors} == {64}
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)
    # Packed: 500 rows in requests of at most 64 inputs (the server's log counts them).
    log = llama_embeddings.log.read_text(errors="replace")
    assert CANARY not in log
    tokens = table.column("prompt_tokens").to_pylist()
    assert all(isinstance(t, int) and t >= 0 for t in tokens) and sum(tokens) > 500
    again = run_batch_sync(config, rows[:3], tmp_path / "three.jsonl", key="id", rate=None)
    assert again.ok == 3
    lines = [json.loads(x) for x in (tmp_path / "three.jsonl").read_text().splitlines()]
    by_key = {line["key"]: line["output"]["embedding"] for line in lines}
    first = dict(zip(table.column("key").to_pylist(), vectors, strict=True))
    for key, vector in by_key.items():
        assert all(
            math.isclose(a, b, abs_tol=1e-4) for a, b in zip(vector, first[key], strict=True)
        )


@pytest.mark.parametrize("stream", [False, True])
def test_responses_streamed_and_whole(llama_embeddings: Running, stream: bool) -> None:
    body = {"model": MODEL, "input": "Say hello", "max_output_tokens": 6, "temperature": 0}
    config = _config(llama_embeddings, "/v1/responses", body, stream=stream)
    completion = asyncio.run(complete(config, body))
    assert completion.streamed is stream
    assert completion.warnings == []
    answer = completion.response
    assert answer["status"] in ("completed", "incomplete")
    assert isinstance(answer["output_text"], str) and answer["output_text"]
    assert answer["usage"]["output_tokens"] > 0
    if stream:
        deltas = [
            c["delta"]
            for c in completion.chunks or []
            if c.get("type") == "response.output_text.delta"
        ]
        assert "".join(deltas) == answer["output_text"]
    messages = run(config, body)
    assert errors(messages) == []
    assert records(messages)


@pytest.mark.parametrize("stream", [False, True])
def test_completions_streamed_and_whole(llama_embeddings: Running, stream: bool) -> None:
    body = {"model": MODEL, "prompt": "Say hello", "max_tokens": 6, "temperature": 0, "seed": 1}
    config = _config(llama_embeddings, "/v1/completions", body, stream=stream)
    completion = asyncio.run(complete(config, body))
    assert completion.streamed is stream and completion.warnings == []
    [choice] = completion.response["choices"]
    assert isinstance(choice["text"], str) and choice["text"]
    assert choice["finish_reason"] == "length"
