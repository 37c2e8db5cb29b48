"""The keys an output file already holds, in about 8 bytes a key, never a wrong skip.

A resumed run asks, for every row, "is this key written?". A Python set of the key strings
answers that at about 90 bytes a key (900 MB for ten million). `WrittenKeys` keeps one
64-bit integer per key instead: a digest of the key and the byte offset of the key's record
in the output file, packed together:

- the digest is the key's ``hash()``: SipHash with a random key per process (unless
  ``PYTHONHASHSEED`` is set), computed in C and cached on the string. Its low 14 bits choose
  one of 16,384 buckets, each a sorted ``array('Q')`` of entries; an entry is the next
  ``64 - offset_bits`` bits of the digest above the record's offset (``offset_bits``: enough
  for the file's size, at least 40: files up to 1 TiB leave a 38-bit digest).
- A lookup hashes the key and bisects its bucket (``bisect`` in C, about ten steps at ten
  million keys); `nbytes` is about 8 bytes a key from a million keys up.

A digest match alone never skips a row: the record at the entry's offset is read back from
the file and its key compared exactly (``key_at``), so keys that share a digest cost one
extra read, never a row left out. That is why the offset is kept rather than a wider
digest: a wider digest only makes a wrong skip unlikely, the offset makes it impossible.
The read is on the path of the rows being skipped only (they need no request); a row not
written yet costs the hash and one bisect (a digest match by chance, and so a read, comes
once in about 2**38 / n tests).

>>> records = {0: "a", 10: "b"}
>>> written = WrittenKeys(records.__getitem__)
>>> for offset, token in records.items():
...     written.add(token, offset)
>>> written.freeze()
>>> "a" in written, "b" in written, "c" in written, len(written)
(True, True, False, 2)
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator

__all__ = ["WrittenKeys"]

_BUCKET_BITS = 14
_BUCKETS = 1 << _BUCKET_BITS
_MIN_OFFSET_BITS = 40
_U64 = (1 << 64) - 1

Digest = Callable[[str], int]

# The digest of a new set; tests replace it to force collisions end to end.
default_digest: Digest = hash


def _no_file(offset: int) -> str:
    raise LookupError(f"no record at offset {offset}: this set has no file to read keys from")


class WrittenKeys:
    """A set of key tokens, each with the offset of its record; membership is exact.

    ``key_at(offset)`` reads the key token of the record at ``offset`` (it confirms a digest
    match); lookups need `freeze` first. ``max_offset``: the largest offset to be added (the
    file's size). ``digest`` (a str to any int) is for tests that force collisions.
    """

    __slots__ = (
        "_buckets",
        "_count",
        "_digest",
        "_frozen",
        "_offset_bits",
        "_offset_mask",
        "key_at",
    )

    def __init__(
        self,
        key_at: Callable[[int], str] = _no_file,
        *,
        max_offset: int = 0,
        digest: Digest | None = None,
    ) -> None:
        self.key_at = key_at
        self._digest = digest or default_digest
        self._offset_bits = max(_MIN_OFFSET_BITS, max_offset.bit_length())
        if self._offset_bits > 64 - 8:
            raise ValueError(f"a file of {max_offset} bytes is too large to resume")
        self._offset_mask = (1 << self._offset_bits) - 1
        # Made with the first key: a run that resumes nothing (most runs) needs none.
        self._buckets: list[array[int]] = []
        self._count = 0
        self._frozen = False

    def _split(self, token: str) -> tuple[array[int], int]:
        """The bucket of ``token`` and its digest bits placed above the offset bits."""
        h = self._digest(token) & _U64
        # The bits above the bucket's, shifted over the offset; what overflows 64 bits goes.
        return self._buckets[h & (_BUCKETS - 1)], (h >> _BUCKET_BITS << self._offset_bits) & _U64

    def add(self, token: str, offset: int) -> None:
        """Add ``token``, whose record starts at byte ``offset`` of the file (before `freeze`)."""
        if self._frozen:
            raise RuntimeError("this set is frozen: keys are added before freeze()")
        if not 0 <= offset <= self._offset_mask:
            raise ValueError(f"offset {offset} out of range (max_offset too small)")
        if not self._buckets:
            self._buckets = [array("Q") for _ in range(_BUCKETS)]
        bucket, high = self._split(token)
        bucket.append(high | offset)
        self._count += 1

    def freeze(self) -> None:
        """Sort the buckets (done adding; a lookup bisects them) and drop their growth room."""
        for i, bucket in enumerate(self._buckets):  # one at a time: never two copies
            self._buckets[i] = array("Q", sorted(bucket))
        self._frozen = True

    def __contains__(self, token: object) -> bool:
        if not self._count or not isinstance(token, str):
            return False  # empty: a run that resumes nothing asks for every row
        # _split, inlined: this runs for every row of a resumed run.
        h = self._digest(token) & _U64
        bucket = self._buckets[h & (_BUCKETS - 1)]
        high = (h >> _BUCKET_BITS << self._offset_bits) & _U64
        at = bisect_left(bucket, high)
        if at == len(bucket):
            return False
        end = high | self._offset_mask
        while at < len(bucket) and bucket[at] <= end:
            if self.key_at(bucket[at] & self._offset_mask) == token:
                return True
            at += 1
        return False

    def __len__(self) -> int:
        return self._count

    def offsets(self) -> Iterator[int]:
        """The record offsets of the keys, in no particular order."""
        for bucket in self._buckets:
            for entry in bucket:
                yield entry & self._offset_mask

    def __iter__(self) -> Iterator[str]:
        """The keys, read back from the file in offset order (one read per key)."""
        for offset in sorted(self.offsets()):
            yield self.key_at(offset)

    @property
    def nbytes(self) -> int:
        """The memory this set holds: the buckets (headers and entries) and their list."""
        return sys.getsizeof(self._buckets) + sum(map(sys.getsizeof, self._buckets))
