"""Options of ``openai-compat batch``'s arguments that every engine's runner passes on."""

from __future__ import annotations

from ._structured_cli import schema_options

__all__ = ["schema_options"]
