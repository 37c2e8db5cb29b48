"""Keys unique across the whole dataset: the rows whose key is missing or taken, found
before any request.

A local run keeps every key it has read; a Ray run's batches are on many actors. Each batch
first finds, by itself, the rows whose key is missing or came earlier in the same batch;
then it asks the job's coordinator to claim the other keys (`_coordinator._Claims`, about
12 bytes a key): a key another row claimed first is a duplicate. A row claims its key with
a digest of the whole row, so a batch that Ray runs again (a worker died) claims its keys
again as the same rows, not as duplicates. Such rows fail, as in a local run, without a
request, and get a key of their own (``row:`` and the row's digest) in the result lines, so
that the row that did own the key is neither hidden by them nor left out on resume.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from ..batch.keys import key_token

__all__ = ["DUPLICATE_START", "Unkeyed", "row_digest", "unkeyed_rows"]

# How a duplicate's error message starts: the driver's writer tells these rows apart by it.
DUPLICATE_START = "this row is a duplicate:"


def _digest(data: bytes, size: int) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=size).digest(), "little")


def row_digest(row: Mapping[str, Any]) -> int:
    """A 64-bit digest of the whole row (the same in every process, unlike ``hash``).

    >>> row_digest({"id": 1, "text": "a"}) == row_digest({"text": "a", "id": 1})
    True
    """
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=repr)
    return _digest(text.encode("utf-8", "surrogatepass"), 8)


class Unkeyed:
    """A row that fails for its key: the message, and the key its result line gets."""

    __slots__ = ("key", "message")

    def __init__(self, message: str, key: str) -> None:
        self.message = message
        self.key = key


def _own_key(row: Mapping[str, Any], seen: dict[int, int]) -> str:
    digest = row_digest(row)
    repeat = seen.get(digest, 0)  # the same row twice in a batch: still two results
    seen[digest] = repeat + 1
    return f"row:{digest:016x}" + (f"-{repeat}" if repeat else "")


async def unkeyed_rows(
    rows: Sequence[Mapping[str, Any]], key: str, coordinator: Any, run: str | None
) -> dict[int, Unkeyed]:
    """The rows of a batch (by position) whose key is missing or another row's.

    ``run`` names the run whose keys the coordinator keeps; None checks within the batch
    only.
    """
    problems: dict[int, Unkeyed] = {}
    first: dict[str, int] = {}
    seen: dict[int, int] = {}
    for position, row in enumerate(rows):
        value = row.get(key)
        if value is None or value == "":
            message = (
                f"this row has no value in the key column {key!r}; give every row a key, "
                "or choose another column as the key"
            )
            problems[position] = Unkeyed(message, _own_key(row, seen))
            continue
        token = key_token(value)
        if first.setdefault(token, position) != position:
            problems[position] = Unkeyed(_duplicate(token, key), _own_key(row, seen))
    if run is None:
        return problems
    claiming = list(first.items())
    if not claiming:
        return problems
    keys = array("Q", (_digest(token.encode("utf-8", "surrogatepass"), 8) for token, _ in claiming))
    digests = array("I", (row_digest(rows[position]) & 0xFFFFFFFF for _, position in claiming))
    taken: list[int] = await coordinator.claim.remote(run, keys.tobytes(), digests.tobytes())
    for index in taken:
        token, position = claiming[index]
        problems[position] = Unkeyed(_duplicate(token, key), _own_key(rows[position], seen))
    return problems


def _duplicate(token: str, key: str) -> str:
    return (
        f"{DUPLICATE_START} its value {token!r} of the key column {key!r} is the key of "
        "another row; keys must be unique: choose a unique column as the key"
    )
