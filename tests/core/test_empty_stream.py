"""A 200 event stream with no chunk at all is a failure in every door, worded as check words it.

llama-cpp-python's server answers a prompt longer than its context that way: the status and
headers of a stream, then the body closes with no byte. A stream cut off after some chunks is
another matter: it keeps its chunks and warns (tests/core/test_connector.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openai_compat import Endpoint, OpenAICompatibleConnector, StreamError, run_batch_sync
from openai_compat.testing import MockServer, Reply, raw_reply
from tests.conftest import NO_RETRY, make_config
from tests.core.test_cli import cli, lines, write

EMPTY = "the endpoint answered, but with an empty stream (no chunk)"
PAYLOAD = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
SSE = "text/event-stream"

EMPTY_STREAMS = {
    "no byte": raw_reply(b"", content_type=SSE),
    "only [DONE]": raw_reply(b"data: [DONE]\n\n", content_type=SSE),
    "only comments": raw_reply(b": keep-alive\n\n: keep-alive\n\n", content_type=SSE),
    "only empty events": raw_reply(b"data:\n\ndata:\n\n", content_type=SSE),
}


@pytest.fixture(params=sorted(EMPTY_STREAMS))
def empty(request: pytest.FixtureRequest) -> Reply:
    return EMPTY_STREAMS[request.param]


async def test_endpoint_complete_raises_the_check_message(server: MockServer, empty: Reply) -> None:
    server.enqueue(empty)
    async with Endpoint(make_config(server.url, is_stream=True), retry=NO_RETRY) as endpoint:
        with pytest.raises(StreamError, match=r"empty stream \(no chunk\)") as info:
            await endpoint.complete(PAYLOAD)
    assert str(info.value) == EMPTY and info.value.attempts == 1


@pytest.mark.parametrize("assemble", [False, True])
def test_run_model_ends_with_an_error_and_invents_no_answer(
    server: MockServer, empty: Reply, assemble: bool
) -> None:
    server.enqueue(empty, empty)
    config = make_config(server.url, is_stream=True)
    connector = OpenAICompatibleConnector(retry=NO_RETRY)
    messages = connector.run_model(config, PAYLOAD, assemble=assemble)
    assert [m.type for m in messages] == ["log"]
    assert messages[0].log is not None
    assert (messages[0].log.level, messages[0].log.message) == ("error", EMPTY)
    status = connector.check_connection(config).connection_status
    assert status is not None and (status.status, status.message) == ("failed", EMPTY)


def test_cli_read_assemble_exits_1(tmp_path: Path, server: MockServer) -> None:
    server.enqueue(EMPTY_STREAMS["no byte"])
    config = write(tmp_path, "c.json", make_config(server.url, is_stream=True))
    payload = write(tmp_path, "p.json", PAYLOAD)
    done = cli("--retries", "0", "read", "--config", config, "--payload", payload, "--assemble")
    assert done.returncode == 1
    (message,) = lines(done.stdout)
    assert message["log"]["level"] == "error" and message["log"]["message"] == EMPTY
    assert "chat.completion" not in done.stdout


def test_a_batch_row_with_an_empty_stream_is_a_failed_row(server: MockServer) -> None:
    server.enqueue(EMPTY_STREAMS["no byte"])
    results = []
    summary = run_batch_sync(
        make_config(server.url, is_stream=True),
        [{"id": 1}],
        key="id",
        retry=NO_RETRY,
        concurrency=1,
        on_result=results.append,
    )
    assert summary.failed == 1 and summary.ok == 0
    (result,) = results
    assert result.error is not None and result.error["message"] == EMPTY
    assert result.attempts == 1
