"""Configuration: defaults, coercions, and one clear error per mistake."""

from __future__ import annotations

import json
from typing import Any

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


# -- hostile values: each refused at the door with a clear problem, never quoted ----------

KEY = "sk-hostile-key-0123456789"


@pytest.mark.parametrize("pasted", [f"{KEY}\n", f"{KEY}\r\n", f"\t{KEY} ", f" {KEY}\u00a0\n"])
def test_surrounding_whitespace_of_the_key_is_stripped(pasted: str) -> None:
    cfg = SourceConfig.parse({"url": URL, "api_key": pasted})
    assert cfg.api_key.get_secret_value() == KEY
    assert cfg.advanced.key_header(cfg.api_key.get_secret_value()) == (
        "Authorization",
        f"Bearer {KEY}",
    )
    assert cfg.secrets == (KEY,)


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("sk-hostile\u2013key-0123456789", "U+2013 EN DASH at position 11"),
        ("sk-hostile\u200bkey-0123456789", "U+200B ZERO WIDTH SPACE at position 11"),
        ("sk-hostilé-key-0123456789", "U+00E9 LATIN SMALL LETTER E WITH ACUTE at position 10"),
        ("sk-hostile\nkey-0123456789", "U+000A LINE FEED (a line break) at position 11"),
        ("sk-hostile\tkey-0123456789", "U+0009 TAB at position 11"),
        ("sk-hostile\x00key-0123456789", "U+0000 NUL at position 11"),
        ("sk-hostile\ud800key-0123456789", "U+D800 (a lone surrogate) at position 11"),
        ("sk-hostile key-0123456789", "U+0020 SPACE at position 11"),
    ],
)
def test_a_key_that_cannot_be_sent_is_refused_by_naming_the_character(key: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, "api_key": key})
    err = info.value
    assert err.field == "api_key"
    assert named in err.reason
    assert "not shown" in err.reason
    for fragment in (key, "hostile", "0123456789"):
        assert fragment not in str(err) and fragment not in repr(err.problems)
    str(err).encode("utf-8")  # printable as it is, even for a lone surrogate


def test_a_key_sent_as_a_whole_header_value_may_hold_a_space() -> None:
    # With auth "header" the key is the header value as is: "Token abc" is a real scheme.
    advanced = {"auth": "header", "auth_header": "Authorization"}
    cfg = SourceConfig.parse({"url": URL, "api_key": "Token abc123", "advanced": advanced})
    assert cfg.advanced.key_header("Token abc123") == ("Authorization", "Token abc123")
    with pytest.raises(ConfigurationError, match="api_key: has U\\+0009 TAB"):
        SourceConfig.parse({"url": URL, "api_key": "Token\tabc123", "advanced": advanced})


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (URL + "\r\nX-Injected: 1", "U+000D CARRIAGE RETURN (a line break) at position 39"),
        ("http://127.0.0.1:9/v1/chat completions", "U+0020 SPACE at position 27"),
        ("http://127.0.0.1:9/v1/\tchat/completions", "U+0009 TAB at position 23"),
        ("http://127.0.0.1:9/v1\u200b/chat/completions", "U+200B ZERO WIDTH SPACE"),
        (URL + "\ud800", "U+D800 (a lone surrogate) at position 39"),
        (URL + "?q=" + "a" * 100_000, "is 100041 characters long; a URL of more than 8192"),
        ("http://127.0.0.1:99999/v1/chat/completions", "invalid port (99999)"),
        ("http://127.0.0.1:-1/v1/chat/completions", "invalid port (-1)"),
        ("http://127.0.0.1:0/v1/chat/completions", "invalid port (0)"),
        ("http://127.0.0.1:http/v1/chat/completions", "invalid port (http)"),
        ("http://[::1/v1/chat/completions", "is not a URL"),
    ],
)
def test_urls_that_cannot_be_sent_are_refused_when_read(url: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": url})
    assert info.value.field == "url"
    assert why in info.value.reason
    assert len(str(info.value)) < 400
    str(info.value).encode("utf-8")


def test_a_url_of_8192_characters_is_still_a_url() -> None:
    url = URL + "?q=" + "a" * (8192 - len(URL) - 3)
    assert SourceConfig.parse({"url": url}).url == url


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{KEY}@127.0.0.1:9/v1/chat/completions",
        f"http://{KEY}@127.0.0.1:9/v1/chat/completions",
        f"https://:{KEY}@api.example.com/v1/chat/completions",
    ],
)
def test_a_key_in_the_url_is_refused_and_never_echoed(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": url, "api_key": ""})
    assert info.value.field == "url"
    assert "put the key in api_key" in info.value.reason
    assert KEY not in str(info.value) and KEY not in repr(info.value.problems)


@pytest.mark.parametrize(
    ("timeout", "why"),
    [
        (10**400, "must be at most 86400 seconds (one day), got a number of more than 80 digits"),
        ("1" + "0" * 400, "must be at most 86400 seconds (one day)"),
        (86_401, "must be at most 86400 seconds (one day), got 86401"),
        (float("inf"), "must be at most 86400 seconds"),
        ("inf", "must be at most 86400 seconds"),
        (float("nan"), "must be a positive number of seconds"),
        (-(10**400), "must be a positive number of seconds"),
    ],
)
def test_timeouts_are_finite_and_at_most_a_day(timeout: object, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, "config": {"timeout": timeout}})
    assert info.value.field == "config.timeout"
    assert why in info.value.reason
    assert len(info.value.reason) < 200
    assert SourceConfig.parse({"url": URL, "config": {"timeout": 86_400}}).timeout == 86_400.0


def test_a_number_beyond_the_parsers_digit_limit_is_a_problem_of_its_field() -> None:
    text = '{"model": "m", "max_tokens": ' + "9" * 5000 + "}"
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, "request_format": text})
    assert info.value.field == "request_format"
    assert "holds a number of more than 4300 digits" in info.value.reason
    with pytest.raises(ConfigurationError, match="configuration: holds a number"):
        SourceConfig.parse('{"url": "' + URL + '", "config": {"timeout": ' + "9" * 5000 + "}}")


@pytest.mark.parametrize("field", ["request_format", "response_format"])
@pytest.mark.parametrize(
    "value",
    [
        {"messages": [{"role": "user", "content": "a\ud800"}]},
        '{"messages": [{"role": "user", "content": "a\\ud800"}]}',  # JSON text may spell one
        {"messages": [{"role": "user", "a\udfff": "b"}]},
    ],
)
def test_a_lone_surrogate_in_a_format_is_a_problem_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, field: value})
    assert info.value.field == field
    assert "(a lone surrogate) at position 2 of the text at messages.0." in info.value.reason
    str(info.value).encode("utf-8")


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_is_a_problem_not_a_recursion_error(depth: int) -> None:
    text = "[" * depth + "]" * depth
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, "request_format": text})
    assert (info.value.field, info.value.reason) == (
        "request_format",
        "is nested more than 64 levels deep; flatten it (objects and arrays inside each other)",
    )
    with pytest.raises(ConfigurationError, match="configuration: is nested more than 64"):
        SourceConfig.parse('{"url": "' + URL + '", "x": ' + text + "}")


def test_field_paths_from_hostile_keys_are_short_and_printable() -> None:
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, "advanced": {"k" * 10_000: 1}})
    (problem,) = info.value.problems
    assert problem.field.startswith("advanced.kkk") and len(problem.field) <= 120
    assert problem.message.startswith("is not an advanced option")
    with pytest.raises(ConfigurationError) as info:
        SourceConfig.parse({"url": URL, "advanced": {"\ud800": 1}})
    assert info.value.field == "advanced"
    str(info.value).encode("utf-8")
