"""The options a cluster engine cannot honour: one check, shared by Ray and Spark."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from openai_compat.batch._cluster_args import check_cluster_arguments
from openai_compat.errors import ConfigurationError

FORMATS = ("parquet", "jsonl")


def _args(**given: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "key": "id",
        "shard": None,
        "retry_failed": False,
        "input_format": None,
        "input": "rows.parquet",
        "output": "out/",
        "output_format": None,
    }
    return argparse.Namespace(**{**base, **given})


@pytest.mark.parametrize("engine", ["ray", "spark"])
def test_the_output_format_defaults_to_parquet_and_is_case_blind(engine: str) -> None:
    assert check_cluster_arguments(_args(), engine, FORMATS) == "parquet"
    assert check_cluster_arguments(_args(output_format="JSONL"), engine, FORMATS) == "jsonl"


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
        check_cluster_arguments(_args(**given), "spark", FORMATS)
    assert caught.value.field == field
    assert words in str(caught.value)
