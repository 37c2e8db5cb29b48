"""RunSpec: a run's options checked once, the same way for every engine."""

from __future__ import annotations

from typing import Any

import pytest

from openai_compat.batch import BatchRun
from openai_compat.batch.keys import Shard
from openai_compat.batch.scheduler import DEFAULT_CONCURRENCY, DEFAULT_RATE, MAX_CONCURRENCY, Rate
from openai_compat.batch.spec import RunSpec, missing_column
from openai_compat.errors import ConfigurationError

URL = "http://127.0.0.1:9/v1/chat/completions"


def _problems(**options: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigurationError) as caught:
        RunSpec.build({"url": URL}, **options)
    return [(p.field, p.message) for p in caught.value.problems]


def test_defaults_are_the_engines() -> None:
    spec = RunSpec.build({"url": URL})
    assert spec.concurrency == DEFAULT_CONCURRENCY
    assert spec.rate == DEFAULT_RATE
    assert (spec.key, spec.shard, spec.include_input, spec.include_response) == (
        None,
        None,
        False,
        False,
    )


def test_values_are_parsed_once_into_their_types() -> None:
    spec = RunSpec.build({"url": URL}, rate="10/second", shard="2/4", key="id", concurrency=3)
    assert spec.rate == Rate(10, 1.0)
    assert spec.shard == Shard(2, 4)
    assert spec.concurrency == 3
    assert RunSpec.build({"url": URL}, rate=None).rate is None  # None is no limit


def test_every_problem_is_found_at_once_each_with_its_field() -> None:
    problems = _problems(
        concurrency=0, rate="fast", shard="5/2", include_input="yes", outputs=[["x"]]
    )
    assert [field for field, _ in problems] == [
        "outputs[0]",
        "concurrency",
        "rate",
        "shard",
        "include_input",
    ]
    assert ("concurrency", "must be 1 to 10000 (requests in flight at once), got 0") in problems
    assert ("include_input", "must be true or false, got 'yes'") in problems


@pytest.mark.parametrize("concurrency", [0, -1, MAX_CONCURRENCY + 1, True, 2.5, "8"])
def test_concurrency_is_a_whole_number_in_one_range(concurrency: Any) -> None:
    ((field, message),) = _problems(concurrency=concurrency)
    assert field == "concurrency"
    assert message == (
        f"must be 1 to {MAX_CONCURRENCY} (requests in flight at once), got {concurrency!r}"
    )


def test_a_configuration_problem_keeps_its_own_field() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RunSpec.build({"url": "ftp://127.0.0.1/x"})
    assert caught.value.field == "url"


def test_an_unknown_option_is_named() -> None:
    assert _problems(concurency=4) == [("concurency", "is not an option of a run")]


def test_a_missing_key_column_has_one_message() -> None:
    spec = RunSpec.build({"url": URL}, key="ID")
    with pytest.raises(ConfigurationError) as caught:
        spec.check_columns(["id", "text"])
    assert caught.value.field == "key"
    assert caught.value.reason == "the input has no column 'ID' (its columns: 'id', 'text')"
    assert missing_column("x", []) == "the input has no column 'x' (its columns: none)"
    spec.check_columns(["ID"])
    RunSpec.build({"url": URL}).check_columns([])  # no key: nothing to check


def test_the_local_engine_refuses_through_the_spec() -> None:
    with pytest.raises(ConfigurationError) as caught:
        BatchRun({"url": URL}, [], concurrency=MAX_CONCURRENCY + 1)
    assert caught.value.field == "concurrency"
    run = BatchRun({"url": URL}, [], key="id", rate="5/second")
    assert run.spec.key == "id" and run.scheduler is not None
    assert run.spec.rate == Rate(5, 1.0)
