"""How many tokens a request is reserved before it is sent.

The rule, offline and the same for every model: the input is the UTF-8 bytes of the
payload's text (every string value of ``messages``, ``input``, ``prompt`` and ``instructions``,
parts of multimodal content included, keys and JSON punctuation not) divided by 4, rounded
up, plus 4 a message (the chat format's own tokens); the output is ``max_completion_tokens``,
else ``max_tokens``, else ``max_output_tokens``, else `DEFAULT_OUTPUT_TOKENS`. Four bytes a
token is OpenAI's own rule of thumb for English; the reservation is settled against the
usage the answer reports, so a wrong guess costs only a moment's headroom, never the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_OUTPUT_TOKENS", "estimate_tokens"]

DEFAULT_OUTPUT_TOKENS = 256
"""Output tokens reserved for a request that names no maximum."""

_PER_MESSAGE = 4
_TEXT_FIELDS = ("messages", "input", "prompt", "instructions", "system")
_OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def _text_bytes(value: Any) -> tuple[int, int]:
    """(UTF-8 bytes of every string in ``value``, messages met)."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")), 0
    size = messages = 0
    if isinstance(value, Mapping):
        if "role" in value:
            messages += 1
        items: Any = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return 0, 0
    for item in items:
        more, inner = _text_bytes(item)
        size += more
        messages += inner
    return size, messages


def estimate_tokens(payload: Mapping[str, Any], default_output: int = DEFAULT_OUTPUT_TOKENS) -> int:
    """The tokens to reserve for ``payload``: its text's bytes / 4, plus its output maximum.

    >>> estimate_tokens({"messages": [{"role": "user", "content": "x" * 400}],
    ...                  "max_tokens": 50})
    155
    >>> estimate_tokens({"input": "héllo"})  # 6 bytes: 2 tokens, plus the default output
    258
    """
    size = messages = 0
    for name in _TEXT_FIELDS:
        if name in payload:
            more, inner = _text_bytes(payload[name])
            size += more
            messages += inner
    output = default_output
    for name in _OUTPUT_FIELDS:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            output = value
            break
    return -(-size // 4) + _PER_MESSAGE * messages + output
