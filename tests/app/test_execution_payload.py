"""``checked_payload``: the encoder-first check of ``execute_model`` refuses what the walks
over the payload refused, with the same 422, and hands over the body the client would send."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_compat._json import parse_json_object
from openai_compat.app.connectors.execution import checked_payload
from openai_compat.app.http.problems import ApiError
from openai_compat.app.http.rendering import surrogate_problems_of
from openai_compat.errors import ConfigurationError

# Text of every kind: lone surrogates, as they are and as JSON escapes written out.
texts = st.text(st.characters(codec=None, exclude_categories=())) | st.sampled_from(
    ["\\ud800", "a\\uDBFF b", "\\ud83d\\ude00", "\\\\ud800", "\\u00e9", "\ud800", "ok"]
)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {"model": "m"}
    node = root
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return root


def _the_walks(raw: dict[str, Any] | str) -> tuple[int, Any] | dict[str, Any]:
    """What execute_model did before: parse (the depth), then the surrogate walk."""
    try:
        payload = parse_json_object(raw, field="payload")
    except ConfigurationError as exc:
        error = ApiError.from_config_error(exc, "payload")
        return error.status, error.body
    problems = surrogate_problems_of(payload, "payload")
    if problems:
        error = ApiError.invalid(problems)
        return error.status, error.body
    return payload


def _checked(raw: dict[str, Any] | str) -> tuple[int, Any] | dict[str, Any]:
    try:
        payload, encoded = checked_payload(raw)
    except ApiError as error:
        return error.status, error.body
    if encoded is not None:
        assert encoded == json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return payload


@given(payload=st.dictionaries(texts, values, max_size=4))
def test_checked_payload_answers_as_the_walks_did(payload: dict[str, Any]) -> None:
    assert _checked(payload) == _the_walks(payload)
    try:
        text = json.dumps(payload)  # JSON text with ASCII escapes, as a browser sends it
    except ValueError:
        return
    assert _checked(text) == _the_walks(text)


@pytest.mark.parametrize(
    "raw",
    [
        _deep(63),
        _deep(64),
        _deep(3_000),
        {"model": "m", "t": float("nan")},
        {"model": "m", "t": float("nan"), "s": "\\ud800"},
        {"model": "\ud800"},
        {"\ud800": "key"},
        {"template": '{"a": "\\ud800"}'},
        '{"model": "\\ud800"}',
        '{"model": "m", "messages": [' * 40 + "]}" * 40,
        "[1]",
        "not json",
    ],
)
def test_checked_payload_answers_hostile_payloads_as_the_walks_did(
    raw: dict[str, Any] | str,
) -> None:
    assert _checked(raw) == _the_walks(raw)
