"""The configuration parser against arbitrary JSON-like input: a result or a clear error.

Whatever arrives (deep, huge, non-ASCII, lone surrogates, numbers beyond any float,
infinities), ``SourceConfig.parse`` returns a configuration or raises one
``ConfigurationError`` whose every message is printable, and that never holds the key.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_compat import ConfigurationError, SourceConfig

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text as people paste it, and as JSON escapes can spell it: every code point, lone
# surrogates included, plus the characters that break headers and URLs.
_hostile_chars = st.sampled_from(["\n", "\r", "\t", "\0", " ", "\u2013", "\u200b", "\ud800"])
texts = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
    st.text(st.one_of(st.sampled_from(string.printable), _hostile_chars), max_size=30),
    st.builds(
        lambda c, n: c * n, st.sampled_from(["a", "/", "\ud800"]), st.sampled_from([1, 9000])
    ),
)
numbers = st.one_of(
    st.integers(),
    st.sampled_from([10**400, -(10**400), 0, -1, 99999, 86_401]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=20,
)


def _deep(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


deep = st.builds(_deep, st.sampled_from([2, 63, 64, 65, 1000]), scalars)
deep_text = st.sampled_from([10, 1000, 100_000]).map(lambda n: "[" * n + "]" * n)
values = st.one_of(json_like, deep, deep_text)

_URL = "http://127.0.0.1:9/v1/chat/completions"
urls = st.one_of(
    texts,
    st.builds(lambda tail: _URL + tail, texts),
    st.builds(lambda userinfo: f"http://{userinfo}@127.0.0.1/v1", texts),
    st.builds(lambda port: f"http://127.0.0.1:{port}/v1", numbers),
)
advanced_options = st.fixed_dictionaries(
    {},
    optional={
        "headers": st.one_of(values, st.dictionaries(texts, values, max_size=3)),
        "secret_headers": st.one_of(values, st.dictionaries(texts, values, max_size=3)),
        "auth": st.one_of(values, st.sampled_from(["bearer", "api-key", "header", "none"])),
        "auth_header": st.one_of(values, st.sampled_from(["Host", "X-Api-Key", "Connection"])),
        "ca_bundle": values,
        "verify_tls": values,
        "proxy": st.one_of(values, urls),
        "max_retries": values,
        "deadline": values,
        "unknown": values,
    },
)
configurations = st.fixed_dictionaries(
    {},
    optional={
        "url": st.one_of(urls, values),
        "api_key": st.one_of(texts, values),
        "is_stream": values,
        "config": st.one_of(values, st.fixed_dictionaries({"timeout": values})),
        "request_format": values,
        "response_format": values,
        "advanced": st.one_of(values, advanced_options),
    },
)


def _parse_or_refuse(raw: Any) -> None:
    try:
        SourceConfig.parse(raw)
    except ConfigurationError as exc:
        key = raw.get("api_key") if isinstance(raw, dict) else None
        texts = [str(exc), *(part for p in exc.problems for part in p)]
        for text in texts:
            text.encode("utf-8")  # printable: no lone surrogate reaches a message
            if isinstance(key, str) and len(key.strip()) >= 8:
                assert key not in text and key.strip() not in text
        assert exc.problems and (exc.field, exc.reason) == exc.problems[0]


@FAST
@given(configurations)
def test_any_configuration_is_a_result_or_a_configuration_error(raw: dict[str, Any]) -> None:
    _parse_or_refuse(raw)


@FAST
@given(values)
def test_any_value_at_all_is_a_result_or_a_configuration_error(raw: Any) -> None:
    _parse_or_refuse(raw if isinstance(raw, dict | str) else {"url": raw})


@FAST
@given(configurations)
def test_the_json_text_of_a_configuration_is_read_as_the_dict(raw: dict[str, Any]) -> None:
    try:
        text = json.dumps(raw)  # escapes lone surrogates, spells NaN and Infinity
    except (ValueError, RecursionError):
        return  # an int beyond the digit limit, or too deep for the encoder
    _parse_or_refuse(text)
    _parse_or_refuse(text.encode("utf-8"))


@FAST
@given(
    st.text(max_size=40).filter(lambda k: len(k.strip()) >= 8),
    st.sampled_from(["url", "is_stream", "config"]),
)
def test_a_key_pasted_in_another_field_is_never_shown(key: str, field: str) -> None:
    raw: dict[str, Any] = {"url": _URL, "api_key": key}
    raw[field] = {"timeout": key} if field == "config" else key
    _parse_or_refuse(raw)
