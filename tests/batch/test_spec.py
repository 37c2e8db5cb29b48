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


def test_prices_and_a_budget_are_options_of_the_spec() -> None:
    spec = RunSpec.build(
        {"url": URL}, prices={"input": 1, "output": 2}, max_cost=5, max_tokens=1000
    )
    assert (spec.max_cost, spec.max_tokens) == (5.0, 1000)
    assert spec.prices == {"input": 1, "output": 2}  # kept as given, for a view to show
    price_table = spec.price_table
    assert price_table is not None
    # One object of the price names is one price for every model, on every door.
    assert price_table.price_of("any-model") == price_table.price_of("another")
    per_model = RunSpec.build({"url": URL}, prices={"gpt-4o": "input=1,output=2"}).price_table
    assert per_model is not None and per_model.price_of("other") is None


def test_a_cost_budget_without_prices_has_one_message() -> None:
    ((field, message),) = _problems(max_cost=5)
    assert field == "max_cost"
    assert message.startswith("a cost budget needs prices to count the cost")
    # Wrong prices are their own problem: the budget is not also said to lack them.
    problems = _problems(max_cost=5, prices="cheap")
    assert [field for field, _ in problems] == ["prices"]
    assert problems[0][1].startswith("cannot read 'cheap'")


def test_budget_and_cache_problems_are_found_with_the_others() -> None:
    problems = _problems(
        concurrency=0, max_cost=-1, max_tokens=0, cache=3, cache_mode="sometimes", prices=7
    )
    assert [field for field, _ in problems] == [
        "concurrency",
        "prices",
        "max_cost",
        "max_tokens",
        "cache",
        "cache_mode",
    ]
    assert ("max_tokens", "must be a whole number of tokens, 1 or more, got 0") in problems
    assert (
        "cache_mode",
        "a cache mode needs a cache file: give cache too, or leave cache_mode out",
    ) in _problems(cache_mode="refresh")


def test_a_results_table_is_checked_through_the_spec() -> None:
    spec = RunSpec.build({"url": URL}, key="id", include_input=True)
    with pytest.raises(ConfigurationError) as caught:
        spec.check_table(["id", "error_message"])
    assert caught.value.field == "outputs" and "'error_message'" in caught.value.reason
    spec.check_table(["id", "error_message"], lines=True)  # lines hold the input apart
    with pytest.raises(ConfigurationError, match="has no column 'id'"):
        spec.check_table(["text"])


def test_a_run_built_from_a_spec_takes_no_option_of_the_spec() -> None:
    spec = RunSpec.build({"url": URL}, key="id", concurrency=3)
    run = BatchRun(spec, [])
    assert run.spec is spec and run.concurrency == 3
    with pytest.raises(TypeError, match="key with a RunSpec"):
        BatchRun(spec, [], key="other")
