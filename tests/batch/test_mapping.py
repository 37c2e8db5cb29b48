"""The platform's mapping rules (connector-contract.md), templates and output extraction.

The rules are checked on the payload builder, and again end to end: the payload each row
produces is the body the scripted server receives.
"""

from __future__ import annotations

from typing import Any

import pytest

import openai_compat.mapping as mapping_package
from openai_compat import ConfigurationError, OpenAICompatError, RowMappingError, errors
from openai_compat.batch import run_batch_sync
from openai_compat.mapping import (
    PayloadBuilder,
    cast_value,
    default_outputs,
    extract_outputs,
    get_path,
    parse_outputs,
    parse_path,
    set_path,
)
from openai_compat.testing import MockServer
from tests.conftest import NO_RETRY, make_config

BASE = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}


def build(mapping: list[dict[str, Any]], row: dict[str, Any], base: Any = None) -> dict[str, Any]:
    return PayloadBuilder(BASE if base is None else base, mapping).build(row)


def item(
    name: str, value: Any, value_type: str = "dynamic", type_: str | None = None
) -> dict[str, Any]:
    entry = {"name": name, "value": value, "value_type": value_type}
    if type_ is not None:
        entry["type"] = type_
    return entry


# -- paths ---------------------------------------------------------------------------------


def test_dotted_path_with_a_list_index_sets_inside_the_existing_list() -> None:
    payload = build([item("messages.0.content", "question")], {"question": "Why?"})
    assert payload["messages"] == [{"role": "user", "content": "Why?"}]


def test_all_digit_segments_are_list_indices() -> None:
    assert parse_path("choices.0.message.content") == ("choices", 0, "message", "content")
    assert parse_path("a.10.b") == ("a", 10, "b")


def test_missing_containers_are_created_list_for_numeric_next_segment_else_object() -> None:
    payload = build(
        [item("tools.0.function.name", "tool"), item("metadata.source", "src")],
        {"tool": "lookup", "src": "crm"},
    )
    assert payload["tools"] == [{"function": {"name": "lookup"}}]
    assert payload["metadata"] == {"source": "crm"}


def test_a_list_shorter_than_the_index_is_padded_with_null() -> None:
    payload = build([item("messages.2.content", "q")], {"q": "third"})
    assert payload["messages"] == [{"role": "user", "content": "Hi"}, None, {"content": "third"}]


def test_a_path_through_a_string_is_a_configuration_error_before_any_row() -> None:
    with pytest.raises(ConfigurationError) as info:
        PayloadBuilder(BASE, [item("model.name", "m")])
    assert "mapping[0].name" in str(info.value)
    assert "model is a string" in str(info.value)


def test_set_path_and_get_path_round_trip() -> None:
    data: dict[str, Any] = {}
    set_path(data, ("a", 1, "b"), 5)
    assert data == {"a": [None, {"b": 5}]}
    assert get_path(data, ("a", 1, "b")) == 5
    assert get_path(data, ("a", 7, "b")) is None
    assert get_path(data, ("x",)) is None


# -- static vs dynamic ---------------------------------------------------------------------


def test_static_uses_the_value_itself_dynamic_reads_the_column() -> None:
    payload = build(
        [item("temperature", "0.2", "static", "number"), item("user", "customer")],
        {"customer": "c-42", "temperature": "9"},
    )
    assert payload["temperature"] == 0.2
    assert payload["user"] == "c-42"


def test_dynamic_reads_nested_json_columns_by_dotted_name() -> None:
    payload = build([item("user", "customer.id")], {"customer": {"id": "c-7"}})
    assert payload["user"] == "c-7"


# -- casts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (None, ""),
        (42, "42"),
        (3.5, "3.5"),
        (True, "true"),
        ({"a": 1}, '{"a": 1}'),
    ],
)
def test_string_cast(value: Any, expected: str) -> None:
    assert cast_value(value, "string") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), (" 7 ", 7), ("-3", -3), (5, 5), ("3.7", 3.7), (2.5, 2.5), ("1e3", 1000.0)],
)
def test_number_cast_keeps_integers_integers_and_decimals_decimals(
    value: Any, expected: Any
) -> None:
    # The original turned "3.7" into 3: we keep 3.7 (documented in docs/batch/index.md).
    result = cast_value(value, "number")
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("value", ["abc", "", None, True, "nan", "1_000", [1]])
def test_number_cast_rejects_what_is_not_a_number(value: Any) -> None:
    with pytest.raises(ValueError, match="not a"):
        cast_value(value, "number")


@pytest.mark.parametrize(
    ("value", "expected"),
    # The original turned a real boolean true into false: we keep true.
    [
        ("true", True),
        (True, True),
        ("false", False),
        (False, False),
        ("yes", False),
        (1, False),
        (None, False),
    ],
)
def test_boolean_cast_is_true_only_for_true(value: Any, expected: bool) -> None:
    assert cast_value(value, "boolean") is expected


@pytest.mark.parametrize("type_", ["array", "object", None, "whatever"])
def test_other_types_pass_through(type_: str | None) -> None:
    value = {"nested": [1, "2"]}
    assert cast_value(value, type_) is value


def test_casts_apply_to_dynamic_values() -> None:
    payload = build(
        [
            item("max_tokens", "limit", type_="number"),
            item("stream", "streaming", type_="boolean"),
            item("messages.0.content", "body", type_="string"),
        ],
        {"limit": "64", "streaming": True, "body": None},
    )
    assert payload["max_tokens"] == 64
    assert payload["stream"] is True
    assert payload["messages"][0]["content"] == ""


# -- overwrite, templates --------------------------------------------------------------------


def test_later_items_with_the_same_name_overwrite_earlier_ones() -> None:
    payload = build(
        [item("messages.0.content", "first"), item("messages.0.content", "second")],
        {"first": "A", "second": "B"},
    )
    assert payload["messages"][0]["content"] == "B"


def test_the_request_format_is_copied_not_shared_between_rows() -> None:
    builder = PayloadBuilder(BASE, [item("messages.0.content", "q")])
    first = builder.build({"q": "one"})
    second = builder.build({"q": "two"})
    assert first["messages"][0]["content"] == "one"
    assert second["messages"][0]["content"] == "two"
    assert BASE["messages"][0]["content"] == "Hi"  # type: ignore[index]


def test_templates_fill_columns_inside_strings() -> None:
    base = {
        "model": "mock-model",
        "messages": [
            {"role": "system", "content": "You label {{ kind }} tickets."},
            {"role": "user", "content": "Summarise ticket {{id}}: {{body}}"},
        ],
    }
    payload = build([], {"id": 17, "body": "printer on fire", "kind": "IT"}, base)
    assert payload["messages"][0]["content"] == "You label IT tickets."
    assert payload["messages"][1]["content"] == "Summarise ticket 17: printer on fire"


def test_template_with_a_missing_column_fails_the_row_naming_the_column() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "Summarise: {{body}}"}]}
    with pytest.raises(RowMappingError) as info:
        build([], {"text": "x"}, base)
    assert info.value.column == "body"
    message = str(info.value)
    assert "'body'" in message and "messages.0.content" in message and "text" in message


def test_missing_dynamic_column_fails_the_row() -> None:
    with pytest.raises(RowMappingError, match="no column 'question'"):
        build([item("messages.0.content", "question")], {"other": 1})


def test_value_that_cannot_be_cast_fails_the_row() -> None:
    with pytest.raises(
        RowMappingError, match=r"mapping\[0\] \(max_tokens\): cannot cast column 'n'"
    ):
        build([item("max_tokens", "n", type_="number")], {"n": "lots"})


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ("[", "mapping"),
        ([{"value": "x"}], "mapping[0].name"),
        ([{"name": "a..b", "value": "x"}], "mapping[0].name"),
        ([{"name": "a", "value": "x", "value_type": "sometimes"}], "mapping[0].value_type"),
        ([{"name": "a", "value_type": "dynamic"}], "mapping[0].value"),
        (["messages.0.content"], "mapping[0]"),
    ],
)
def test_bad_mapping_lists_are_explained(mapping: Any, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PayloadBuilder(BASE, mapping)
    assert info.value.field == field


# -- end to end: what the server receives -----------------------------------------------------


def test_every_rule_reaches_the_server_and_unmappable_rows_send_nothing(
    server: MockServer, tmp_path: Any
) -> None:
    config = make_config(
        server.url,
        request_format='{"model": "mock-model", "messages": [{"role": "user", "content": "Ticket {{id}}: {{body}}"}]}',
    )
    mapping = [
        item("max_tokens", "limit", type_="number"),
        item("temperature", "0.5", "static", "number"),
        item("logprobs", "flag", type_="boolean"),
        item("metadata.tags.0", "tag"),
        item("messages.1.role", "assistant", "static"),
        item("messages.1.content", "prior"),
        item("messages.1.content", "override"),
    ]
    rows = [
        {
            "id": 1,
            "body": "a",
            "limit": "16",
            "flag": True,
            "tag": "x",
            "prior": "p",
            "override": "o",
        },
        {
            "id": 2,
            "body": "b",
            "limit": "2.5",
            "flag": "no",
            "tag": "y",
            "prior": "p",
            "override": "o",
        },
        {
            "id": 3,
            "body": "c",
            "limit": "many",
            "flag": "true",
            "tag": "z",
            "prior": "p",
            "override": "o",
        },
        {"id": 4, "limit": "1", "flag": "true", "tag": "z", "prior": "p", "override": "o"},
    ]
    results: list[Any] = []
    summary = run_batch_sync(
        config, rows, mapping=mapping, key="id", rate=None, retry=NO_RETRY, on_result=results.append
    )
    assert (summary.ok, summary.failed) == (2, 2)
    bodies = sorted((r.json for r in server.requests), key=lambda b: b["messages"][0]["content"])
    assert len(bodies) == 2, "rows that cannot be mapped send no request"
    assert bodies[0] == {
        "model": "mock-model",
        "messages": [
            {"role": "user", "content": "Ticket 1: a"},
            {"role": "assistant", "content": "o"},
        ],
        "max_tokens": 16,
        "temperature": 0.5,
        "logprobs": True,
        "metadata": {"tags": ["x"]},
    }
    assert bodies[1]["max_tokens"] == 2.5
    assert bodies[1]["logprobs"] is False
    failed = {r.key: r.to_dict() for r in results if r.error}
    assert set(failed) == {3, 4}
    assert failed[3]["attempts"] == 0 and failed[3]["error"]["status"] is None
    assert "cannot cast column 'limit' to number" in failed[3]["error"]["message"]
    assert "no column 'body'" in failed[4]["error"]["message"]


# -- outputs ---------------------------------------------------------------------------------


ANSWER = {
    "id": "chatcmpl-1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}}],
    "usage": {"total_tokens": 12},
}


def test_output_paths_with_names() -> None:
    fields = parse_outputs(
        [
            {"name": "choices.0.message.content", "as": "text"},
            {"name": "usage.total_tokens", "as": "tokens"},
        ]
    )
    assert extract_outputs(ANSWER, fields) == ({"text": "Hello", "tokens": 12}, [])


def test_default_outputs_are_the_string_leaves_of_the_response_format() -> None:
    sample = {
        "id": "x",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
    }
    assert [f.source for f in default_outputs(sample)] == [
        "id",
        "choices.0.delta.content",
        "choices.0.finish_reason",
    ]
    assert [f.source for f in default_outputs({})] == ["choices.0.message.content"]


def test_a_delta_path_reads_message_in_an_assembled_or_json_answer() -> None:
    fields = parse_outputs(["choices.0.delta.content"])
    assert extract_outputs(ANSWER, fields)[0] == {"choices.0.delta.content": "Hello"}


def test_missing_output_path_is_null_not_an_error() -> None:
    assert extract_outputs(ANSWER, parse_outputs(["choices.3.message.content"])) == (
        {"choices.3.message.content": None},
        [],
    )


def test_parse_json_into_fields() -> None:
    answer = {"choices": [{"message": {"content": '```json\n{"label": "bug", "score": 0.9}\n```'}}]}
    fields = parse_outputs(
        [
            {"name": "choices.0.message.content", "as": "verdict", "parse": "json"},
            {"name": "choices.0.message.content", "parse": "json", "fields": ["label", "score"]},
        ]
    )
    output, problems = extract_outputs(answer, fields)
    assert problems == []
    assert output == {"verdict": {"label": "bug", "score": 0.9}, "label": "bug", "score": 0.9}


def test_parse_json_of_non_json_text_is_a_problem_keeping_the_text() -> None:
    answer = {"choices": [{"message": {"content": "Sure! The label is bug."}}]}
    fields = parse_outputs([{"name": "choices.0.message.content", "as": "v", "parse": "json"}])
    output, problems = extract_outputs(answer, fields)
    assert output == {"v": "Sure! The label is bug."}
    assert len(problems) == 1 and "not valid JSON" in problems[0]


def test_a_long_non_json_answer_is_quoted_as_one_short_line() -> None:
    text = "Sure!\n\n  " + "The label is bug. " * 10
    answer = {"choices": [{"message": {"content": text}}]}
    fields = parse_outputs([{"name": "choices.0.message.content", "as": "v", "parse": "json"}])
    _, problems = extract_outputs(answer, fields)
    quoted = " ".join(text.split())[:77] + "..."
    assert problems == [
        "choices.0.message.content: the answer is not valid JSON (Expecting value at line 1 "
        f"column 1): {quoted!r}"
    ]


def test_an_entry_that_is_not_an_object_is_named_with_its_kind() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_outputs([["usage.total_tokens"]])
    assert info.value.reason == (
        'must be an object such as {"name": "usage.total_tokens", "as": "tokens"}, got a list'
    )
    with pytest.raises(ConfigurationError) as info:
        PayloadBuilder(BASE, [7])
    assert info.value.field == "mapping[0]"
    assert info.value.reason.endswith('"type": "string"}, got a number')


def test_the_package_keeps_its_public_names() -> None:
    assert sorted(mapping_package.__all__) == [
        "MISSING",
        "MappingItem",
        "OutputError",
        "OutputField",
        "PayloadBuilder",
        "RowMappingError",
        "VectorName",
        "as_text",
        "cast_value",
        "default_outputs",
        "extract_outputs",
        "get_path",
        "harvest",
        "output_fields",
        "output_names",
        "parse_mapping",
        "parse_outputs",
        "parse_path",
        "set_path",
    ]
    assert all(hasattr(mapping_package, name) for name in mapping_package.__all__)
    # One OutputError for the whole package, so callers can catch OpenAICompatError.
    assert mapping_package.OutputError is errors.OutputError
    assert issubclass(mapping_package.OutputError, OpenAICompatError)


@pytest.mark.parametrize(
    ("outputs", "field"),
    [
        ({"name": "x"}, "outputs"),
        ([{"name": ""}], "outputs[0].name"),
        ([{"name": "a", "parse": "yaml"}], "outputs[0].parse"),
        ([{"name": "a", "fields": ["x"]}], "outputs[0].fields"),
        ([{"name": "a", "as": "t"}, {"name": "b", "as": "t"}], "outputs[1]"),
    ],
)
def test_bad_outputs_are_explained(outputs: Any, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_outputs(outputs)
    assert info.value.field == field
