"""A base64 embeddings answer is decoded at the single-request doors too (`Endpoint.complete`,
``read`` and ``run_model``): every door hands on floats, as batch runs do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import Endpoint
from openai_compat.cli import main
from openai_compat.connector import OpenAICompatibleConnector
from openai_compat.testing import MockServer, embedding_vector
from tests.conftest import CANARY, NO_RETRY, make_config

BASE64 = {
    "model": "mock-model",
    "input": ["one", "two words"],
    "encoding_format": "base64",
    "dimensions": 6,
}


def _config(server: MockServer) -> dict[str, Any]:
    return make_config(server.base_url + "/v1/embeddings", request_format=json.dumps(BASE64))


async def test_complete_decodes_a_base64_answer_to_floats(server: MockServer) -> None:
    async with Endpoint(_config(server), retry=NO_RETRY) as endpoint:
        completion = await endpoint.complete(BASE64)
    # Asked for in base64 (a quarter of the bytes on the wire), handed on as floats.
    assert server.requests[0].json["encoding_format"] == "base64"
    vectors = [item["embedding"] for item in completion.response["data"]]
    assert vectors == [embedding_vector("one", 6), embedding_vector("two words", 6)]
    assert [item["index"] for item in completion.response["data"]] == [0, 1]


async def test_a_float_answer_is_handed_on_as_it_came(server: MockServer) -> None:
    payload = {k: v for k, v in BASE64.items() if k != "encoding_format"}
    async with Endpoint(_config(server), retry=NO_RETRY) as endpoint:
        completion = await endpoint.complete(payload)
    assert completion.response["data"][0]["embedding"] == embedding_vector("one", 6)


@pytest.mark.parametrize("assemble", [False, True])
def test_run_model_records_hold_floats(server: MockServer, assemble: bool) -> None:
    messages = OpenAICompatibleConnector().run_model(_config(server), BASE64, assemble=assemble)
    records = [m.model_dump(mode="json")["record"]["data"] for m in messages if m.type == "record"]
    assert len(records) == 1
    assert records[0]["data"][1]["embedding"] == embedding_vector("two words", 6)


def test_the_read_command_prints_floats(
    server: MockServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "conn.json").write_text(json.dumps(_config(server)))
    (tmp_path / "payload.json").write_text(json.dumps(BASE64))
    code = main(
        [
            "read",
            "--config",
            str(tmp_path / "conn.json"),
            "--payload",
            str(tmp_path / "payload.json"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    (line,) = [json.loads(x) for x in out.splitlines() if '"record"' in x]
    assert line["record"]["data"]["data"][0]["embedding"] == embedding_vector("one", 6)
    assert CANARY not in out


def test_a_broken_base64_vector_is_handed_on_as_the_server_sent_it() -> None:
    from openai_compat.apis import EMBEDDINGS

    answer = {"data": [{"index": 0, "embedding": "not base64!"}]}
    assert EMBEDDINGS.finish_answer(answer) == answer
