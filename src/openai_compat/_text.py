"""Text for messages: one rule for cutting an excerpt out of something long."""

from __future__ import annotations

__all__ = ["excerpt", "shown"]


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` on one line (white space folded), at most ``limit`` characters.

    >>> excerpt("a\\n  b")
    'a b'
    >>> excerpt("x" * 10, limit=8)
    'xxxxx...'
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a message about a user's value.

    Never raises: Python refuses to write an integer of thousands of digits as text, and a
    message about such a value must still be written.

    >>> shown("json5")
    "'json5'"
    >>> shown(10**5000)
    'an integer of 5001 digits'
    """
    try:
        text = repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"an integer of {_digits(value)} digits"
        return f"a {type(value).__name__} that cannot be written as text"
    return excerpt(text, limit)


def _digits(value: int) -> int:
    # str() refuses it; count by powers of ten instead (exact, no text made).
    n = abs(value)
    digits = 1
    while n >= 10**1000:
        n //= 10**1000
        digits += 1000
    while n >= 10:
        n //= 10
        digits += 1
    return digits
