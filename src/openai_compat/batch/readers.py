"""The old home of the input readers, now `openai_compat.batch.sources`.

Kept only while the app's modules still import these names from here (they are being
moved); once they import `openai_compat.batch.sources`, this module goes.
"""

from __future__ import annotations

from .sources import (
    FORMATS,
    RowSource,
    UnreadableRow,
    count_rows,
    detect_format,
    open_rows,
    read_in_thread,
)

__all__ = [
    "FORMATS",
    "RowSource",
    "UnreadableRow",
    "count_rows",
    "detect_format",
    "open_rows",
    "read_in_thread",
]
