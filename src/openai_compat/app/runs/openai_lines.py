"""A result as OpenAI's batch output line, byte for byte as the CLI writes it."""

from __future__ import annotations

from ..._strict_json import json_safe
from ...batch.openai_batch_format import FORMAT, output_line
from ...batch.results import BatchResult
from ...batch.writers import json_line

__all__ = ["OPENAI_LINES", "openai_output_line"]

OPENAI_LINES = FORMAT
"""The ``result_lines`` of a stored run whose results are OpenAI's output lines."""


def openai_output_line(result: BatchResult) -> bytes:
    """OpenAI's output line of ``result`` (with its line end), as `OpenAIBatchWriter`
    writes it."""
    line = output_line(result)
    try:
        return json_line(line)
    except (ValueError, TypeError, RecursionError):
        return json_line(json_safe(line))
