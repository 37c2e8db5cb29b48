"""The failure of a cluster engine's own job (not of a row: rows fail as rows)."""

from __future__ import annotations

from ..errors import OpenAICompatError

__all__ = ["EngineJobError"]


class EngineJobError(OpenAICompatError):
    """The engine's job failed (Spark's: its output, an executor); the message names why."""
