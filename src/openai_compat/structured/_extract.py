"""Reading a JSON value out of a model's text: code fences and prose around it tolerated.

>>> extract_json('Sure! Here it is:\\n```json\\n{"a": 1}\\n```')
{'a': 1}
>>> extract_json('The answer is {"a": [1, 2]} as asked.')
{'a': [1, 2]}
>>> extract_json("no JSON here") is None
True
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["NOT_JSON", "extract_json"]

#: What `extract_json` returns for text that holds no JSON value (None is JSON's null).
NOT_JSON: Any = None

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


def _whole(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def extract_json(text: str) -> Any:
    """The JSON object (or array) ``text`` holds: the whole text, else a fenced block, else
    the first ``{`` (or ``[``) from which a JSON value parses. None when there is none.
    """
    stripped = text.strip()
    ok, value = _whole(stripped)
    if ok:
        return value
    for block in _FENCE.findall(stripped):
        ok, value = _whole(block.strip())
        if ok:
            return value
    for opener in ("{", "["):
        start = stripped.find(opener)
        while start != -1:
            try:
                value, _ = _DECODER.raw_decode(stripped, start)
            except (ValueError, RecursionError):
                start = stripped.find(opener, start + 1)
                continue
            return value
    return NOT_JSON
