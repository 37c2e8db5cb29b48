"""Which rows a run sends, told by their keys: `RowKeys`.

A row's key is its ``key`` column's value, or its row number without one. A row of another
shard, or whose key an earlier run already wrote (``skip``), is left out; a key the first
row's columns lack is refused before any request; a missing or repeated key fails its row
(a repeated one gets its row number as its own key, so its result line is told apart).

A key given for want of one (``row:N``) may be a real key of the input too: every key of a
run is unique all the same. A key given is never one a row before it has; when ``row:N``
is taken it becomes ``row:N:2`` (``:3``, ...); and a real key equal to one given to a row
before is that row's key already, so its row fails as a duplicate under a key of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..errors import ConfigurationError
from .keys import Shard, key_token, row_key
from .results import BatchSummary
from .spec import missing_column

__all__ = ["RowKeys"]


def _quoted(row: Any, column: str | None) -> str:
    value = row.get(column) if isinstance(row, Mapping) and column is not None else None
    return repr(key_token(value)) if value not in (None, "") else "(none)"


def _own_key(row: Any, column: str | None, key: str | int) -> bool:
    """True when ``key`` is the row's own (its column's value), not one given for want of
    one (``row_key``'s ``row:N``)."""
    if not isinstance(key, str) or not key.startswith("row:") or not isinstance(row, Mapping):
        return row is not None or not isinstance(key, str)
    value = row.get(column) if column is not None else None
    return isinstance(value, str) and key_token(value) == key


class RowKeys:
    """The key rules of one run; `admit` is asked once per row, in row order."""

    __slots__ = ("_checked", "_given", "_seen", "key", "shard", "skip", "summary")

    def __init__(
        self,
        key: str | None,
        shard: Shard | None,
        summary: BatchSummary,
        *,
        skip: Collection[str] = (),
        column_checked: bool = False,
    ) -> None:
        self.key = key
        self.shard = shard
        self.summary = summary
        # Key texts to leave out (a resumed run's, from its output).
        self.skip = skip
        # The first row of each key (to name it when a key comes again).
        self._seen: dict[str, int] | None = {} if key is not None else None
        # The keys given to rows without one of their own (``row:N``), as rows of ``_seen``.
        self._given: set[str] = set()
        self._checked = key is None or column_checked

    def admit(self, index: int, row: Any, readable: bool) -> tuple[str | int, str | None] | None:
        """The row's key and why it fails (None: it is sent), or None when it is not run
        here (another shard's, or already written; counted in the summary)."""
        if readable and not self._checked:
            self._check_column(row)
        key = row_key(row if readable else None, index, self.key)
        token = key_token(key)
        if self.shard is not None and not self.shard.contains(token):
            self.summary.other_shards += 1
            return None
        problem: str | None = None
        if self._seen is not None:
            given = not _own_key(row if readable else None, self.key, key)
            if given:
                key = token = self._give(index)
            first = self._seen.setdefault(token, index)
            if first != index:
                # Its own key, so its result line is told apart from the first row's (and a
                # resumed run skips it like any row already written).
                taken = token
                key = token = self._give(index)
                whose = (
                    f"the key given to row {first}, which has no key of its own"
                    if taken in self._given
                    else f"the key of row {first}"
                )
                problem = (
                    f"row {index} is a duplicate: its value {_quoted(row, self.key)} of the key "
                    f"column {self.key!r} is {whose}; keys must be unique: "
                    "choose a unique column for --key, or leave it out to use row numbers"
                )
            elif readable and row.get(self.key) in (None, ""):
                problem = (
                    f"row {index} has no value in the key column {self.key!r}; give every row "
                    "a key, or choose another column for --key"
                )
        if token in self.skip:
            self.summary.skipped += 1
            return None
        return key, problem

    def _give(self, index: int) -> str:
        """A key for row ``index`` that no row before it has: ``row:N``, else ``row:N:2``..."""
        assert self._seen is not None
        token = key_token(row_key(None, index, self.key))
        candidate, n = token, 1
        while candidate in self._seen:
            n += 1
            candidate = f"{token}:{n}"
        self._seen[candidate] = index
        self._given.add(candidate)
        return candidate

    def _check_column(self, row: Mapping[str, Any]) -> None:
        """A ``key`` column the first row lacks is a typo: refused before any request."""
        self._checked = True
        if self.key is not None and self.key not in row:
            raise ConfigurationError(
                f"{missing_column(self.key, list(row), 'the first row')}; "
                "choose one of them, or leave out --key to use row numbers",
                field="key",
            )
