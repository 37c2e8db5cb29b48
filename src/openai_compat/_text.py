"""Text for messages: one rule for cutting an excerpt out of something long."""

from __future__ import annotations

__all__ = ["excerpt"]


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` on one line (white space folded), at most ``limit`` characters.

    >>> excerpt("a\\n  b")
    'a b'
    >>> excerpt("x" * 10, limit=8)
    'xxxxx...'
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."
