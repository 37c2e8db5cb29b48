"""Configuration: defaults, coercions, and one clear error per mistake."""

from __future__ import annotations

import json

import pytest

from openai_compat import ConfigurationError, SourceConfig
from openai_compat.resources import spec
from tests.conftest import CANARY

URL = "http://127.0.0.1:9/v1/chat/completions"


def test_defaults_come_from_the_spec() -> None:
    cfg = SourceConfig.parse({"api_key": "k"})
    props = spec()["connection_specification"]["properties"]
    assert cfg.url == props["url"]["default"] == "https://api.openai.com/v1/chat/completions"
    assert cfg.timeout == 30.0
    assert cfg.is_stream is False
    assert cfg.request_format == json.loads(props["request_format"]["default"])
    assert cfg.response_format == json.loads(props["response_format"]["default"])


def test_config_block_is_optional_and_timeout_forms() -> None:
    assert SourceConfig.parse({"url": URL}).timeout == 30.0
    assert SourceConfig.parse({"url": URL, "config": {}}).timeout == 30.0
    for raw, expected in (("30", 30.0), (30, 30.0), (30.5, 30.5), (" 7 ", 7.0)):
        assert SourceConfig.parse({"url": URL, "config": {"timeout": raw}}).timeout == expected


@pytest.mark.parametrize("bad", ["", "  ", "0", 0, -1, "-5", "abc", True, "nan"])
def test_bad_timeouts_are_errors_naming_the_field(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, "config": {"timeout": bad}})
    assert info.value.field == "config.timeout"
    assert "seconds" in str(info.value) or "positive" in str(info.value)


def test_config_block_must_be_an_object() -> None:
    with pytest.raises(ConfigurationError, match="config: must be an object"):
        SourceConfig.parse({"url": URL, "config": "30"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("TRUE", True), (None, False)],
)
def test_is_stream_accepts_booleans_and_strings(raw: object, expected: bool) -> None:
    assert SourceConfig.parse({"url": URL, "is_stream": raw}).is_stream is expected


@pytest.mark.parametrize("bad", ["yes", "1", 1, "streaming"])
def test_is_stream_rejects_anything_else(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="is_stream: must be true or false"):
        SourceConfig.parse({"url": URL, "is_stream": bad})


@pytest.mark.parametrize("field", ["request_format", "response_format"])
def test_formats_accept_json_text_or_object(field: str) -> None:
    assert getattr(SourceConfig.parse({"url": URL, field: '{"a": 1}'}), field) == {"a": 1}
    assert getattr(SourceConfig.parse({"url": URL, field: {"a": 1}}), field) == {"a": 1}


@pytest.mark.parametrize("field", ["request_format", "response_format"])
@pytest.mark.parametrize(("bad", "why"), [('{"model": ', "not valid JSON"), ("[1]", "JSON object")])
def test_invalid_formats_name_the_field(field: str, bad: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, field: bad})
    assert info.value.field == field
    assert why in str(info.value)
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://host/v1/chat/completions", "http:// or https://"),
        ("api.example.com/v1/chat/completions", "did you mean https://api.example.com"),
        ("http:///v1/chat/completions", "no host"),
        ("", "is required"),
    ],
)
def test_bad_urls(url: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": url})
    assert info.value.field == "url"
    assert why in str(info.value)


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("http://h:1/v1", "http://h:1/v1/chat/completions"),
        ("http://h:1/v1/", "http://h:1/v1/chat/completions"),
        ("http://h:1", "http://h:1/v1/chat/completions"),
        ("http://h:1/", "http://h:1/v1/chat/completions"),
        ("http://h:1/v1/chat/completions/chat/completions", "http://h:1/v1/chat/completions"),
    ],
)
def test_url_problems_name_the_full_url_and_never_rewrite(url: str, fix: str) -> None:
    cfg = SourceConfig.parse({"url": url})
    assert cfg.url == url
    problem = cfg.url_problem()
    assert problem is not None and fix in problem


def test_good_urls_have_no_problem() -> None:
    for url in (
        URL,
        "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=1",
    ):
        assert SourceConfig.parse({"url": url}).url_problem() is None


def test_config_as_json_text_and_invalid_json_text() -> None:
    assert SourceConfig.parse(json.dumps({"url": URL})).url == URL
    with pytest.raises(ConfigurationError, match="configuration: is not valid JSON"):
        SourceConfig.parse("{nope")


def test_api_key_is_hidden_in_repr_and_dumps() -> None:
    cfg = SourceConfig.parse({"url": URL, "api_key": "sk-canary-in-config"})
    assert "sk-canary-in-config" not in repr(cfg)
    assert "sk-canary-in-config" not in str(cfg.model_dump())
    assert "sk-canary-in-config" not in cfg.model_dump_json()
    assert cfg.secrets == ("sk-canary-in-config",)
    assert SourceConfig.parse({"url": URL, "api_key": ""}).secrets == ()


def test_every_problem_is_listed_with_its_field_the_first_as_the_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse(
            {
                "url": "ftp://host/v1/chat/completions",
                "is_stream": "maybe",
                "config": {"timeout": "soon"},
                "request_format": "[1]",
                "advanced": {"deadline": "later", "max_retries": 99, "retries": 3},
            }
        )
    err = info.value
    assert [p.field for p in err.problems] == [
        "request_format",  # found before pydantic runs, so first, as when it stopped the parse
        "url",
        "is_stream",
        "config.timeout",
        "advanced.max_retries",
        "advanced.deadline",
        "advanced.retries",
    ]
    assert (err.field, err.reason) == err.problems[0]
    assert str(err) == "request_format: must be a JSON object ({...}), got an array"
    reasons = dict(err.problems)
    assert (
        reasons["url"]
        == 'must start with http:// or https://, got "ftp://host/v1/chat/completions"'
    )
    assert reasons["config.timeout"] == 'must be a number of seconds such as "30", got "soon"'
    assert reasons["advanced.retries"].startswith("is not an advanced option")


def test_a_config_block_that_is_not_an_object_is_one_problem_among_others() -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": "", "config": "30", "advanced": "{nope"})
    assert [p.field for p in info.value.problems] == ["config", "advanced", "url"]
    assert str(info.value) == 'config: must be an object such as {"timeout": "30"}'


def test_no_problem_shows_a_secret_pasted_into_another_field() -> None:
    gateway = "gw-secret-31c4-DO-NOT-LEAK"
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse(
            {
                "url": CANARY,
                "api_key": CANARY,
                "is_stream": gateway,
                "config": {"timeout": CANARY},
                # As the application stores it: the secret headers as JSON text.
                "advanced": {"secret_headers": json.dumps({"X-Gateway": gateway}), "proxy": CANARY},
            }
        )
    problems = info.value.problems
    assert [p.field for p in problems] == ["url", "is_stream", "config.timeout", "advanced.proxy"]
    for problem in problems:
        assert "***" in problem.message
        assert CANARY not in repr(problem) and gateway not in repr(problem)
    assert CANARY not in str(info.value) and gateway not in str(info.value)
