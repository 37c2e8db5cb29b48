"""``openai-compat batch``'s structured-output arguments: ``--schema``, ``--schema-mode``,
``--reasks``."""

from __future__ import annotations

import argparse
from typing import Any

from ..structured import MODES

__all__ = ["add_schema_arguments", "schema_options"]


def add_schema_arguments(p: argparse.ArgumentParser) -> None:
    """Add the structured-output group to ``p``."""
    group = p.add_argument_group(
        "structured outputs",
        "a JSON Schema every answer must validate against: each top-level property becomes "
        "an output column, typed",
    )
    group.add_argument(
        "--schema",
        metavar="FILE",
        help='a JSON Schema object, or OpenAI\'s {"name", "schema", "strict"} wrapper (JSON)',
    )
    group.add_argument(
        "--schema-mode",
        choices=MODES,
        help="how to ask for it (default auto: the strongest mode the server takes)",
    )
    group.add_argument(
        "--reasks",
        type=int,
        metavar="N",
        help="ask an invalid answer again up to N times, naming its errors (default 2)",
    )


def schema_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options of the parsed arguments (none given: none)."""
    options: dict[str, Any] = {}
    for name in ("schema", "schema_mode", "reasks"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    return options
