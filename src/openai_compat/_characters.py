"""Which characters a value sent in a request may hold, and how to name one in a message.

A header value goes out as ASCII (httpx encodes header text as ASCII, h11 refuses control
characters and surrounding white space); a URL holds no spaces, control or invisible
characters; no text may hold a lone surrogate (it cannot be encoded as UTF-8). A value
that breaks one of these rules is refused when the configuration is read, by naming the
character and its position: the value itself (often a secret) is never quoted.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from ._text import excerpt

__all__ = [
    "describe",
    "header_value_problem",
    "printable",
    "strings_of",
    "surrogate_problem",
    "surrogate_problems",
    "url_character_problem",
]

# unicodedata has no names for the control characters; these are the ones people paste.
_CONTROL_NAMES = {
    "\t": "TAB",
    "\n": "LINE FEED (a line break)",
    "\r": "CARRIAGE RETURN (a line break)",
    "\0": "NUL",
    "\x7f": "DELETE",
}


def describe(char: str) -> str:
    """A character as a message names it: its code point and Unicode name.

    >>> describe("\\u2013"), describe("\\n"), describe("\\ud800")
    ('U+2013 EN DASH', 'U+000A LINE FEED (a line break)', 'U+D800 (a lone surrogate)')
    """
    code = f"U+{ord(char):04X}"
    if char in _CONTROL_NAMES:
        return f"{code} {_CONTROL_NAMES[char]}"
    category = unicodedata.category(char)
    if category == "Cs":
        return f"{code} (a lone surrogate)"
    name = unicodedata.name(char, "")
    if name:
        return f"{code} {name}"
    return f"{code} (a control character)" if category == "Cc" else f"{code} (no name)"


def _at(char: str, index: int) -> str:
    return f"{describe(char)} at position {index + 1}"


def header_value_problem(
    text: str, *, spaces: bool = True, what: str = "a header value"
) -> str | None:
    """Why ``text`` (already stripped) cannot be sent as a header value, or None.

    Header values are printable ASCII: no line break, tab or other control character, no
    character beyond ASCII (a dash or an invisible space pasted from a web page). Without
    ``spaces``, a space is refused too (an API key has none). ``what`` names the value.

    >>> header_value_problem("sk-abc\\u200bdef")
    'has U+200B ZERO WIDTH SPACE at position 7; a header value must be plain ASCII (it was probably pasted from a web page or a document: type that character again)'
    >>> header_value_problem("Bearer abc") is None, header_value_problem("a b", spaces=False)
    (True, 'has U+0020 SPACE at position 2; it must not hold spaces')
    """  # noqa: E501
    if text.isascii() and text.isprintable() and (spaces or " " not in text):
        return None  # the usual case, without a loop in Python
    for index, char in enumerate(text):
        if char == " " and not spaces:
            return f"has {_at(char, index)}; it must not hold spaces"
        if not char.isascii():
            return (
                f"has {_at(char, index)}; {what} must be plain ASCII (it was probably "
                "pasted from a web page or a document: type that character again)"
            )
        if not char.isprintable():
            return f"has {_at(char, index)}; {what} is one line of text without control characters"
    return None


def url_character_problem(text: str) -> str | None:
    """Why ``text`` (already stripped) cannot be a URL, or None: its first space, control,
    invisible or unencodable character (Unicode categories C and Z).

    >>> url_character_problem("http://h/v1\\r\\nX-Injected: 1")
    'has U+000D CARRIAGE RETURN (a line break) at position 12; a URL holds no spaces, line breaks, control or invisible characters (write a space as %20)'
    """  # noqa: E501
    if text.isascii() and text.isprintable() and " " not in text:
        return None
    for index, char in enumerate(text):
        if unicodedata.category(char)[0] in "CZ":
            return (
                f"has {_at(char, index)}; a URL holds no spaces, line breaks, control or "
                "invisible characters (write a space as %20)"
            )
    return None


def strings_of(value: Any) -> Iterator[tuple[str, str, bool]]:
    """Every string of JSON-like ``value``, keys too: ``(dotted path, text, is_key)``.

    In document order, and without recursion (the depth of a value is bounded at the door,
    but a walk of any depth costs no stack here).

    >>> list(strings_of({"a": ["x"]}))
    [('a', 'a', True), ('a.0', 'x', False)]
    """
    todo: list[tuple[str, Any]] = [("", value)]
    while todo:
        path, node = todo.pop()
        if isinstance(node, str):
            yield path, node, False
        elif isinstance(node, dict):
            for key in node:
                if isinstance(key, str):
                    yield (f"{path}.{key}" if path else key), key, True
            todo.extend(
                ((f"{path}.{key}" if path else str(key)), child)
                for key, child in reversed(list(node.items()))
            )
        elif isinstance(node, list | tuple):
            todo.extend(
                ((f"{path}.{i}" if path else str(i)), child)
                for i, child in reversed(list(enumerate(node)))
            )


def _surrogate_at(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # only a lone surrogate cannot be encoded
        return _at(text[exc.start], exc.start)
    return None


def surrogate_problems(value: Any) -> list[tuple[str, str]]:
    """``(dotted path, reason)`` for every string of ``value`` holding a lone surrogate.

    JSON text may spell one (``"\\ud800"``); no request body or header can carry it, and
    nothing that holds one can be stored or shown. A key is named by its escaped form.

    >>> surrogate_problems({"headers": {"X-A": "ok\\ud800"}})
    [('headers.X-A', 'holds U+D800 (a lone surrogate) at position 3, which cannot be encoded as UTF-8; remove it')]
    """  # noqa: E501
    problems = []
    for path, text, is_key in strings_of(value):
        where = _surrogate_at(text)
        if where is not None:
            reason = f"holds {where}, which cannot be encoded as UTF-8; remove it"
            problems.append((printable(path), f"(the key) {reason}" if is_key else reason))
    return problems


def surrogate_problem(value: Any) -> str | None:
    """The first of `surrogate_problems`, as one message naming the text's path, or None.

    >>> surrogate_problem({"messages": [{"content": "a\\ud800"}]})
    'holds U+D800 (a lone surrogate) at position 2 of the text at messages.0.content, which cannot be encoded as UTF-8; remove it'
    """  # noqa: E501
    for path, text, _ in strings_of(value):
        where = _surrogate_at(text)
        if where is not None:
            at = f" of the text at {excerpt(printable(path), 100)}" if path else ""
            return f"holds {where}{at}, which cannot be encoded as UTF-8; remove it"
    return None


def printable(text: str) -> str:
    """``text`` with any lone surrogate written as an escape, so that it can be printed.

    >>> printable("a\\ud800b")
    'a\\\\ud800b'
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
