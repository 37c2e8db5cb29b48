"""Streamed legacy completions in a batch run ask for usage (``stream_options.include_usage``,
which OpenAI's ``/v1/completions`` takes as chat does) and count what the last chunk reports."""

from __future__ import annotations

import json
from typing import Any

from openai_compat.batch import run_batch_sync
from openai_compat.testing import MockServer
from tests.conftest import NO_RETRY, make_config


def test_a_streamed_completions_run_asks_for_usage_and_counts_it(server: MockServer) -> None:
    config = make_config(
        server.base_url + "/v1/completions",
        is_stream=True,
        request_format=json.dumps({"model": "mock-model", "prompt": "{{text}}"}),
        response_format='{"choices": [{"text": "x"}]}',
    )
    got: list[Any] = []
    summary = run_batch_sync(
        config,
        [{"id": "a", "text": "one two"}, {"id": "b", "text": "three"}],
        key="id",
        rate=None,
        retry=NO_RETRY,
        on_result=got.append,
    )
    assert summary.ok == 2 and summary.failed == 0
    for request in server.requests:
        assert request.json["stream"] is True
        assert request.json["stream_options"] == {"include_usage": True}
    by_key = {r.key: r for r in got}
    assert by_key["a"].output == {"choices.0.text": "You said: one two"}
    # The scripted server's usage: 10 prompt tokens, a completion token per word of its text.
    assert by_key["a"].usage["completion_tokens"] == 4  # You said: one two
    assert summary.prompt_tokens == 20 and summary.completion_tokens == 4 + 3
