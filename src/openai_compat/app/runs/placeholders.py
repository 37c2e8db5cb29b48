"""The ``{{column}}`` placeholders of a request format, and rows read through a choice of
columns for them: a placeholder filled from a column of another name.

The mapping editor's preview and a run's validation list the placeholders; a run (and the
preview) reads each row with its placeholders filled from the columns chosen for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...mapping import MISSING, harvest

__all__ = ["alias_row", "placeholders_of"]

# The mapping package's own placeholder syntax (see mapping._payload).
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def placeholders_of(node: Any) -> list[str]:
    """The ``{{column}}`` placeholders inside the strings of ``node``, in order, once each.

    >>> placeholders_of({"messages": [{"content": "Sum up {{body}} for {{ who }} ({{body}})"}]})
    ['body', 'who']
    """
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            found.extend(c for c in _PLACEHOLDER.findall(value) if c and c not in found)

    walk(node)
    return found


def alias_row(row: Mapping[str, Any], placeholders: Mapping[str, str]) -> dict[str, Any]:
    """``row`` with each placeholder's name holding the value of the column chosen for it.

    A chosen column the row lacks leaves the placeholder as it is (the builder then names
    the missing column).

    >>> alias_row({"text": "hi"}, {"body": "text"})
    {'text': 'hi', 'body': 'hi'}
    """
    out = dict(row)
    for placeholder, column in placeholders.items():
        if column and column != placeholder:
            value = harvest(row, column)
            if value is not MISSING:
                out[placeholder] = value
    return out
