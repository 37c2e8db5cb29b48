"""What each engine can honour: one table, one check, shared by every engine."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from openai_compat.batch.engines import ENGINES
from openai_compat.errors import ConfigurationError


def _args(**given: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "key": "id",
        "shard": None,
        "retry_failed": False,
        "input_format": None,
        "input": "rows.parquet",
        "output": "out/",
        "output_format": None,
        "error_file": None,
    }
    return argparse.Namespace(**{**base, **given})


@pytest.mark.parametrize("engine", ["ray", "spark"])
def test_the_output_format_defaults_to_parquet_and_is_case_blind(engine: str) -> None:
    assert ENGINES[engine].output_format(_args()) == "parquet"
    assert ENGINES[engine].output_format(_args(output_format="JSONL")) == "jsonl"


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({"key": None}, "key", "--engine spark needs --key"),
        ({"shard": "1/2"}, "arguments", "--shard is for local runs; --engine spark"),
        ({"retry_failed": True}, "arguments", "--retry-failed is for local runs"),
        ({"input_format": "csv"}, "arguments", "--input-format is for local runs"),
        ({"input": "-"}, "arguments", "not stdin/stdout"),
        ({"output": "-"}, "arguments", "not stdin/stdout"),
        ({"output_format": "csv"}, "output", "writes parquet or jsonl, not csv"),
    ],
)
def test_what_the_engine_cannot_do_is_named(given: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ENGINES["spark"].check(_args(**given))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_the_local_engine_takes_every_option() -> None:
    given = _args(key=None, shard="1/2", retry_failed=True, input="-", output_format="csv")
    ENGINES["local"].check(given, cost={"max_cost": 1.0, "cache": "c.db"}, database=True)
    with pytest.raises(ValueError, match="by the output's name"):
        ENGINES["local"].output_format(given)


@pytest.mark.parametrize(
    ("engine", "cost", "error_file", "message"),
    [
        (
            "ray",
            {"cache": "c.db"},
            None,
            "--cache, --price(s), --max-cost, --max-tokens and --error-file run with "
            "--engine local for now",
        ),
        (
            "ray",
            {},
            "errors.jsonl",
            "--cache, --price(s), --max-cost, --max-tokens and --error-file run with "
            "--engine local for now",
        ),
        (
            "spark",
            {"cache": "c.db", "max_tokens": 10},
            None,
            "--price(s), --max-cost, --max-tokens and --error-file run with "
            "--engine local for now (--engine spark takes --cache)",
        ),
    ],
)
def test_cost_options_an_engine_cannot_honour_are_named_together(
    engine: str, cost: dict[str, Any], error_file: str | None, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ENGINES[engine].check(_args(error_file=error_file), cost=cost)
    assert caught.value.field == "engine"
    assert caught.value.reason == message


def test_spark_takes_the_cache() -> None:
    ENGINES["spark"].check(_args(), cost={"cache": "c.db", "cache_mode": "use"})


@pytest.mark.parametrize("engine", ["ray", "spark"])
def test_cluster_engines_refuse_databases(engine: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ENGINES[engine].check(_args(), database=True)
    assert caught.value.field == "engine"
    assert caught.value.reason == (
        f"databases are read and written by local runs; --engine {engine} takes files"
    )


def test_a_missing_engine_library_names_its_extra() -> None:
    from openai_compat.batch.engines import Engine

    missing = Engine("nowhere", "openai_compat_no_such_module.cli:run", "Nowhere", "nowhere")
    with pytest.raises(ConfigurationError) as caught:
        missing.runner_function()
    assert caught.value.field == "engine"
    assert caught.value.reason.startswith(
        "--engine nowhere needs Nowhere: pip install 'openai-compat[nowhere]' ("
    )


@pytest.mark.parametrize("engine", ["ray", "spark"])
@pytest.mark.parametrize(
    ("output", "fmt"),
    [("out/", "parquet"), ("results.parquet", "parquet"), ("results.JSONL", "jsonl")],
)
def test_a_cluster_engine_picks_its_format_by_the_outputs_name(
    engine: str, output: str, fmt: str
) -> None:
    # As the local engine does: a name that says a format gets that format, never another.
    assert ENGINES[engine].output_format(_args(output=output)) == fmt
    assert ENGINES[engine].output_format(_args(output=output, output_format="jsonl")) == "jsonl"


@pytest.mark.parametrize("engine", ["ray", "spark"])
def test_a_cluster_engine_refuses_a_name_saying_a_format_it_does_not_write(engine: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ENGINES[engine].check(_args(output="results.csv"))
    assert caught.value.field == "output"
    assert f"--engine {engine} writes parquet or jsonl, not csv (by the name results.csv;" in str(
        caught.value
    )
