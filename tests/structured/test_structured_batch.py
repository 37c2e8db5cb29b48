"""Structured outputs in batch runs against the scripted server: modes, auto, re-asks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_compat import run_batch_sync
from openai_compat.batch import BatchResult
from openai_compat.errors import ConfigurationError
from openai_compat.testing import chat_completion, error_reply, json_reply
from tests.conftest import CANARY, NO_RETRY, make_config

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["bug", "question", "billing"]},
        "urgency": {"type": "integer"},
        "summary": {"type": "string"},
    },
    "required": ["label", "urgency", "summary"],
    "additionalProperties": False,
}
VALID = {"label": "bug", "urgency": 3, "summary": "printer on fire"}
INVALID = {"label": "bug", "urgency": "soon", "summary": "printer on fire"}


def _text(value: Any) -> Any:
    return json_reply(chat_completion(json.dumps(value)))


def _run(server: Any, rows: list[dict[str, Any]], **options: Any) -> tuple[Any, list[BatchResult]]:
    results: list[BatchResult] = []
    config = make_config(
        server.url,
        request_format='{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}',
    )
    summary = run_batch_sync(
        config,
        rows,
        on_result=results.append,
        key="id",
        concurrency=1,
        rate=None,
        retry=NO_RETRY,
        **options,
    )
    return summary, sorted(results, key=lambda r: str(r.key))


def test_json_schema_mode_sends_the_schema_and_types_the_outputs(server: Any) -> None:
    server.enqueue(_text(VALID), _text({**VALID, "urgency": 1}))
    summary, results = _run(
        server,
        [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}],
        schema=SCHEMA,
        schema_mode="json_schema",
    )
    assert [r.output for r in results] == [VALID, {**VALID, "urgency": 1}]
    body = server.requests[0].json
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": True},
    }
    assert len(server.requests) == 2
    assert results[0].to_dict()["schema"] == {"mode": "json_schema", "answers": 1, "valid": True}
    assert (summary.schema_mode, summary.valid_first, summary.valid_reasked, summary.invalid) == (
        "json_schema",
        2,
        0,
        0,
    )
    assert "schema mode json_schema: 2 valid first, 0 after re-asks, 0 invalid" in str(summary)


def test_valid_only_on_the_second_answer_is_one_reask(server: Any) -> None:
    server.enqueue(_text(INVALID), _text(VALID))
    summary, results = _run(
        server, [{"id": "a", "text": "x"}], schema=SCHEMA, schema_mode="json_schema"
    )
    assert len(server.requests) == 2
    assert results[0].ok and results[0].output == VALID
    assert results[0].attempts == 2
    # The usage of both answers is the row's.
    assert results[0].usage is not None
    first = chat_completion(json.dumps(INVALID))["usage"]["total_tokens"]
    second = chat_completion(json.dumps(VALID))["usage"]["total_tokens"]
    assert results[0].usage["total_tokens"] == first + second
    reask = server.requests[1].json["messages"]
    assert [m["role"] for m in reask] == ["user", "assistant", "user"]
    assert reask[1]["content"] == json.dumps(INVALID)
    assert '$.urgency: "soon" is not of type "integer"' in reask[2]["content"]
    assert (summary.valid_first, summary.valid_reasked, summary.requests) == (0, 1, 2)


def test_never_valid_fails_the_row_naming_the_path_and_keeps_the_last_answer(server: Any) -> None:
    server.enqueue(_text(INVALID), _text(INVALID), json_reply(chat_completion("soon, I think")))
    summary, results = _run(
        server,
        [{"id": "a", "text": "x"}],
        schema=SCHEMA,
        schema_mode="json_schema",
        include_response=True,
    )
    assert len(server.requests) == 3
    result = results[0]
    assert not result.ok
    assert result.error is not None
    assert result.error["message"] == "after 3 attempts: $: the answer is not JSON: 'soon, I think'"
    assert result.response["choices"][0]["message"]["content"] == "soon, I think"
    assert result.attempts == 3
    assert (summary.failed, summary.invalid) == (1, 1)


def test_reasks_zero_fails_at_once_with_the_validation_error(server: Any) -> None:
    server.enqueue(_text(INVALID))
    _, results = _run(
        server, [{"id": "a", "text": "x"}], schema=SCHEMA, schema_mode="json_schema", reasks=0
    )
    assert len(server.requests) == 1
    assert results[0].error is not None
    assert results[0].error["message"] == (
        'after 1 attempts: $.urgency: "soon" is not of type "integer"'
    )


def test_auto_leaves_a_refused_response_format_for_tools_once_per_run(server: Any) -> None:
    refused = error_reply(
        400, "response_format json_schema is not supported", param="response_format"
    )

    def tool(value: dict[str, Any]) -> Any:
        return json_reply(
            chat_completion(
                None,
                finish_reason="tool_calls",
                tool_calls=[{"name": "output", "arguments": value}],
            )
        )

    server.enqueue(refused, tool(VALID), tool({**VALID, "label": "question"}))
    summary, results = _run(
        server, [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}], schema=SCHEMA
    )
    bodies = [r.json for r in server.requests]
    assert len(bodies) == 3
    assert "response_format" in bodies[0]
    assert bodies[1]["tool_choice"] == {"type": "function", "function": {"name": "output"}}
    assert bodies[1]["tools"][0]["function"]["parameters"] == SCHEMA
    assert "tools" in bodies[2] and "response_format" not in bodies[2]
    assert [r.output["label"] for r in results] == ["bug", "question"]
    assert results[0].attempts == 2  # the refused request counts
    assert summary.schema_mode == "tools"


def test_auto_leaves_modes_the_server_ignores_down_to_prompt(server: Any) -> None:
    free = json_reply(chat_completion("Sure, here you go."))
    # json_schema, tools and json_object ignored (free text); prompt: free text, then valid.
    server.enqueue(free, free, free, free, _text(VALID))
    summary, results = _run(server, [{"id": "a", "text": "x"}], schema=SCHEMA)
    bodies = [r.json for r in server.requests]
    assert len(bodies) == 5
    assert "response_format" in bodies[0]
    assert "tools" in bodies[1]
    assert bodies[2]["response_format"] == {"type": "json_object"}
    assert bodies[2]["messages"][0]["role"] == "system"
    assert "JSON Schema" in bodies[3]["messages"][0]["content"]
    assert "response_format" not in bodies[3] and "tools" not in bodies[3]
    assert results[0].ok and results[0].output == VALID
    assert summary.schema_mode == "prompt"
    assert (summary.valid_first, summary.valid_reasked) == (0, 1)


def test_fenced_answer_with_leading_prose_validates(server: Any) -> None:
    server.enqueue(json_reply(chat_completion("Here:\n```json\n" + json.dumps(VALID) + "\n```")))
    _, results = _run(server, [{"id": "a", "text": "x"}], schema=SCHEMA, schema_mode="prompt")
    assert results[0].output == VALID and len(server.requests) == 1


def test_outputs_rename_and_pick_from_the_valid_value(server: Any) -> None:
    server.enqueue(_text(VALID))
    _, results = _run(
        server,
        [{"id": "a", "text": "x"}],
        schema=SCHEMA,
        schema_mode="json_schema",
        outputs=[{"name": "label", "as": "category"}],
    )
    assert results[0].output == {"category": "bug"}


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "array"}, 'the top level must be an object ("type": "object")'),
        (
            {"type": "object", "properties": {"a": {"type": "nonsense"}}},
            "is not a valid JSON Schema",
        ),
        ("/nonexistent/ticket.schema.json", "cannot read the schema file"),
    ],
)
def test_a_bad_schema_is_refused_before_anything_is_sent(
    server: Any, schema: Any, words: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _run(server, [{"id": "a", "text": "x"}], schema=schema)
    assert words in str(caught.value)
    assert caught.value.field == "schema"
    assert server.requests == []
    assert CANARY not in str(caught.value)


def _scenario_run(
    server: Any, query: str, rows: int, **options: Any
) -> tuple[Any, list[BatchResult]]:
    results: list[BatchResult] = []
    config = make_config(
        f"{server.url}?scenario=structured&{query}",
        request_format='{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}',
    )
    summary = run_batch_sync(
        config,
        [{"id": f"r{i}", "text": f"ticket {i}"} for i in range(rows)],
        on_result=results.append,
        key="id",
        concurrency=8,
        rate=None,
        retry=NO_RETRY,
        schema=SCHEMA,
        **options,
    )
    return summary, results


def test_thirty_percent_invalid_first_answers_cost_exactly_thirty_percent_more(server: Any) -> None:
    summary, results = _scenario_run(server, "invalid_pct=30", 100)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert len(server.requests) == 130
    assert summary.requests == 130
    assert (summary.schema_mode, summary.valid_first, summary.valid_reasked) == (
        "json_schema",
        70,
        30,
    )
    assert {r.output["label"] for r in results} <= {"bug", "question", "billing"}
    assert all(isinstance(r.output["urgency"], int) for r in results)


def test_auto_under_concurrency_probes_once_then_sends_tools(server: Any) -> None:
    summary, results = _scenario_run(server, "refuse=response_format", 20)
    assert all(r.ok for r in results)
    refused = [r for r in server.requests if "response_format" in r.json]
    assert len(refused) == 1  # one row found out; every other row waited for the mode
    assert len(server.requests) == 21
    assert summary.schema_mode == "tools"


def test_cache_keeps_only_valid_first_answers_under_the_schema(server: Any, tmp_path: Any) -> None:
    cache = str(tmp_path / "answers.sqlite")
    rows = [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]
    # a: valid at once; b: valid only after a re-ask.
    server.enqueue(_text(VALID), _text(INVALID), _text(VALID))
    first, _ = _run(server, rows, schema=SCHEMA, schema_mode="json_schema", cache=cache)
    assert (first.valid_first, first.valid_reasked, len(server.requests)) == (1, 1, 3)
    server.clear()
    server.enqueue(_text(INVALID), _text(VALID))
    _, results = _run(server, rows, schema=SCHEMA, schema_mode="json_schema", cache=cache)
    # a comes from the cache; b's re-asked answer was never stored as a first answer.
    assert len(server.requests) == 2
    assert [r.cached for r in results] == [True, False]
    assert results[1].attempts == 2 and results[1].ok
    # The same request without the schema is not answered from the schema run's cache.
    server.clear()
    plain, _ = _run(server, rows[:1], cache=cache)
    assert len(server.requests) == 1 and plain.cached == 0
