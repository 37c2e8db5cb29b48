"""Row keys and shards: what identifies a row in the output, which machine runs it, and the
text a key is stored as in a database (`stored_key`, `read_key`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

__all__ = ["Shard", "key_token", "read_key", "row_key", "stored_key"]

Key = str | int

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_SURROGATE = re.compile("[\ud800-\udfff]")
# The mark of a key stored escaped (`stored_key`): U+FFFD, which already stands for what
# text could not hold.
_ESCAPED = "\ufffd"


def _unicode(text: str) -> str:
    # A lone surrogate cannot be written as UTF-8: the output has U+FFFD in its place, so
    # the key in memory must too, or a resumed run would not know the row.
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def key_token(key: Any) -> str:
    """The text a key is compared by (in memory, and when read back from an output file).

    >>> key_token(17), key_token("t-17")
    ('17', 't-17')
    """
    if isinstance(key, str):
        return _unicode(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    return _unicode(json.dumps(key, ensure_ascii=False, sort_keys=True, default=str))


def row_key(row: Mapping[str, Any] | None, index: int, column: str | None) -> Key:
    """The key of a row: its ``column`` value, else its 0-based index.

    A row whose key column is missing or empty (or cannot be written as text) gets
    ``"row:<index>"``, so it still has a stable key that a resumed run recognises.
    """
    if column is None:
        return index
    value = row.get(column) if row is not None else None
    if value is None or value == "":
        return f"row:{index}"
    if isinstance(value, str):
        return _unicode(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return value
    try:
        return key_token(value)
    except (ValueError, RecursionError):  # NaN is fine; 5,000 digits or 5,000 levels are not
        return f"row:{index}"


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``k`` of ``n`` (1 <= k <= n): the rows whose key hashes to ``k - 1`` modulo n.

    The hash is BLAKE2b of the key's text, so every machine (any Python, any platform, any
    ``PYTHONHASHSEED``) agrees on the split.

    >>> shards = [Shard.parse(f"{k}/3") for k in (1, 2, 3)]
    >>> [sum(s.contains(str(i)) for s in shards) for i in range(5)]
    [1, 1, 1, 1, 1]
    """

    k: int
    n: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``"k/n"``, e.g. ``"2/8"`` for the second of eight shards."""
        match = _SHARD.fullmatch(text or "")
        if not match:
            raise ConfigurationError(
                f"must look like k/n, e.g. 2/8 (the second of eight shards), got {text!r}",
                field="shard",
            )
        k, n = int(match.group(1)), int(match.group(2))
        if n < 1 or not 1 <= k <= n:
            raise ConfigurationError(
                f"{text!r}: shards are numbered 1 to n (1/{max(n, 1)} ... {max(n, 1)}/{max(n, 1)})",
                field="shard",
            )
        return cls(k, n)

    def contains(self, token: str) -> bool:
        """True when the key (as `key_token` text) belongs to this shard."""
        if self.n == 1:
            return True
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.n == self.k - 1

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def stored_key(token: str) -> str:
    r"""The text a key is stored as: itself, or, when it holds a NUL (which PostgreSQL text
    cannot hold) or starts with the mark, the mark and the key as a JSON string.

    Every key is stored as a different text and read back as itself (`read_key`), so a
    resumed run knows every row, and ``a\x00b`` never takes the place of ``a\ufffdb``.

    >>> stored_key("t-1"), stored_key("a\x00b") == '\ufffd"a\\u0000b"'
    ('t-1', True)
    """
    if "\x00" not in token and not token.startswith(_ESCAPED):
        return token
    return _ESCAPED + json.dumps(token, ensure_ascii=False)


def read_key(stored: str) -> str:
    """The key stored as ``stored`` (`stored_key` undone)."""
    if stored.startswith(_ESCAPED + '"') and stored.endswith('"'):
        try:
            value = json.loads(stored[len(_ESCAPED) :])
        except ValueError:
            return stored  # not written by stored_key (another program's row): as it is
        if isinstance(value, str):
            return value
    return stored
