"""The command-line options a cluster engine (Ray, Spark) cannot honour, refused up front."""

from __future__ import annotations

import argparse
from collections.abc import Collection

from ..errors import ConfigurationError

__all__ = ["check_cluster_arguments"]


def check_cluster_arguments(
    args: argparse.Namespace, engine: str, output_formats: Collection[str]
) -> str:
    """The output format of ``--engine ENGINE``; what it cannot do is a `ConfigurationError`."""
    if args.key is None:
        raise ConfigurationError(
            f"--engine {engine} needs --key: rows are matched by key on --resume", field="key"
        )
    for flag, given in (
        ("--shard", args.shard),
        ("--retry-failed", args.retry_failed),
        ("--input-format", args.input_format),
    ):
        if given:
            raise ConfigurationError(
                f"{flag} is for local runs; --engine {engine} does not take it", field="arguments"
            )
    if "-" in (args.input, args.output):
        raise ConfigurationError(
            f"--engine {engine} reads files and writes a directory, not stdin/stdout",
            field="arguments",
        )
    fmt = (args.output_format or "parquet").lower()
    if fmt not in output_formats:
        raise ConfigurationError(
            f"--engine {engine} writes parquet or jsonl, not {fmt}", field="output"
        )
    return fmt
