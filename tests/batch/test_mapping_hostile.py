"""The mapping against arbitrary JSON: deep, huge, non-ASCII, lone surrogates, NaN.

Whatever the rows, mapping lists, output lists and answers, `PayloadBuilder`,
`parse_mapping`, `parse_outputs` and `extract_outputs` either return or raise one of the
errors they document (`ConfigurationError`, `RowMappingError`, `OutputError`), never
another exception; and a payload that `build` returns can always be sent as strict JSON.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_compat._strict_json import dumps_strict, json_problem, json_safe
from openai_compat.errors import ConfigurationError, OutputError
from openai_compat.mapping import (
    PayloadBuilder,
    RowMappingError,
    extract_outputs,
    parse_mapping,
    parse_outputs,
)

HOSTILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text of every kind: non-ASCII, lone surrogates (st.text excludes them unless asked).
text = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec=None, categories=None), max_size=12),
    st.sampled_from(["\ud800", "x\udfff", "é", "²", "0", "12", "{{", "{{a}}", "a.0", "", " "]),
)
numbers = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(4301, 4400).map(lambda n: 10**n),  # too long for str()
    st.just(float("nan")),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
    ),
    max_leaves=20,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


deep = st.integers(min_value=60, max_value=3000).map(nested)
values = st.one_of(json_values, deep)
paths = st.one_of(
    text,
    st.lists(st.one_of(text, st.integers(0, 20).map(str), st.just("99999999")), max_size=5).map(
        ".".join
    ),
)
mapping_item = st.fixed_dictionaries(
    {"name": paths},
    optional={
        "value": st.one_of(text, values),
        "value_type": st.sampled_from(["static", "dynamic", "other", ""]),
        "type": st.one_of(st.sampled_from(["string", "number", "boolean", "array"]), values),
    },
)
mappings = st.one_of(
    st.none(),
    values,
    st.lists(st.one_of(mapping_item, values), max_size=5),
    st.dictionaries(paths, text, max_size=4),
)
rows = st.dictionaries(text, values, max_size=6)
request_formats = st.one_of(
    st.dictionaries(text, values, max_size=4),
    st.just({"model": "m", "messages": [{"role": "user", "content": "{{text}}"}]}),
)


@HOSTILE
@given(request_format=request_formats, mapping=mappings, row=rows)
def test_payload_builder_returns_a_strict_payload_or_a_documented_error(
    request_format: dict[str, Any], mapping: Any, row: dict[str, Any]
) -> None:
    try:
        builder = PayloadBuilder(request_format, mapping)
    except ConfigurationError:
        return
    try:
        payload = builder.build(row)
    except RowMappingError:
        return
    # What build returns is sendable: strict JSON text, UTF-8 encodable.
    dumps_strict(payload).encode("utf-8")


@HOSTILE
@given(mapping=mappings)
def test_parse_mapping_returns_or_raises_a_configuration_error(mapping: Any) -> None:
    with contextlib.suppress(ConfigurationError):
        parse_mapping(mapping)


@HOSTILE
@given(mapping=mappings)
def test_parse_mapping_of_json_text(mapping: Any) -> None:
    try:
        raw = json.dumps(json_safe(mapping))
    except RecursionError:
        return
    with contextlib.suppress(ConfigurationError):
        parse_mapping(raw)


outputs = st.one_of(
    values,
    st.lists(
        st.one_of(
            paths,
            st.fixed_dictionaries(
                {"name": paths},
                optional={
                    "as": st.one_of(text, values),
                    "parse": st.one_of(st.just("json"), values),
                    "fields": st.one_of(st.lists(paths, max_size=3), values),
                },
            ),
            values,
        ),
        max_size=4,
    ),
)
answer_texts = st.one_of(
    text,
    st.integers(60, 5000).map(lambda n: "[" * n + "]" * n),
    st.integers(60, 5000).map(lambda n: "```json\n" + '{"a":' * n + "1" + "}" * n + "\n```"),
    st.just("1" * 5000),
    st.just('{"label": NaN}'),
)
responses = st.one_of(
    st.dictionaries(text, values, max_size=4),
    st.builds(
        lambda content, extra: {"choices": [{"message": {"content": content}}], **extra},
        st.one_of(answer_texts, values),
        st.dictionaries(text, values, max_size=2),
    ),
)


@HOSTILE
@given(raw=outputs, response=responses)
def test_outputs_parse_and_extract_or_raise_documented_errors(raw: Any, response: Any) -> None:
    try:
        fields = parse_outputs(raw)
    except ConfigurationError:
        return
    output, problems = extract_outputs(response, fields)
    assert isinstance(output, dict)
    assert all(isinstance(p, str) for p in problems)


@HOSTILE
@given(response=responses, text_=answer_texts)
def test_parse_json_outputs_of_any_answer(response: dict[str, Any], text_: str) -> None:
    fields = parse_outputs(
        [{"name": "choices.0.message.content", "parse": "json", "fields": ["label", "a.b"]}]
    )
    response = {**response, "choices": [{"message": {"content": text_}}]}
    try:
        output, _problems = extract_outputs(response, fields)
    except OutputError:  # documented, though extract_outputs reports problems instead
        return
    assert set(output) >= {"label", "a.b"}


@HOSTILE
@given(value=values)
def test_json_safe_is_always_strict_json(value: Any) -> None:
    safe = json_safe(value)
    text_ = json.dumps(safe, ensure_ascii=False, allow_nan=False)
    text_.encode("utf-8")
    problem = json_problem(value)
    try:
        dumps_strict(value)
    except ValueError as exc:
        assert str(exc) == (problem or str(exc))
    else:
        assert problem is None


def test_a_parser_of_thousands_of_digits_is_named_not_a_crash() -> None:
    # Found by the hypothesis test above: repr() of such an integer raises ValueError.
    with pytest.raises(ConfigurationError) as caught:
        parse_outputs([{"name": "model", "parse": 10**5000}])
    assert caught.value.field == "outputs[0].parse"
    assert "an integer of 5001 digits" in str(caught.value)


def test_the_padding_a_mapping_asks_for_is_bounded_in_all_not_per_path() -> None:
    # Each path alone is allowed; together they would pad lists to 25 million nulls.
    mapping = [{"name": f"a{i}.10000", "value": "x", "value_type": "static"} for i in range(2500)]
    with pytest.raises(ConfigurationError) as caught:
        parse_mapping(mapping)
    assert caught.value.field == "mapping[1].name"
    assert "20000 list items in all" in str(caught.value)
    assert "a1.10000" in str(caught.value)
    # Paths into the same list count its longest index once: 150 messages are fine.
    many = [{"name": f"messages.{i}.content", "value": "x"} for i in range(150)]
    many.append({"name": "big.10000", "value": "x", "value_type": "static"})
    builder = PayloadBuilder({"model": "m"}, many)
    payload = builder.build({"x": "hi"})
    assert len(payload["messages"]) == 150 and len(payload["big"]) == 10001
