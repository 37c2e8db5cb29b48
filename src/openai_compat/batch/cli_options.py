"""Options of ``openai-compat batch``'s arguments that every engine's runner passes on."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from ._structured_cli import schema_options

__all__ = ["packing_options", "schema_options"]


def packing_options(args: Namespace) -> dict[str, Any]:
    """``--rows-per-request`` as ``map_endpoint``'s keyword (none when not given: the
    dialect's default holds)."""
    value = getattr(args, "rows_per_request", None)
    return {} if value is None else {"rows_per_request": value}
