"""The keys an output file already holds, in about 12 bytes a key, never a wrong skip.

A resumed run asks, for every row, "is this key written?". A Python set of the key strings
answers that at about 70 bytes a key (700 MB for ten million). `WrittenKeys` keeps, per
key, a 64-bit keyed BLAKE2b digest and the byte offset of the key's record in the output
file instead, packed into bytes:

- the digest's first 14 bits choose one of 16,384 buckets; a bucket is one ``bytes`` of
  12-byte entries: the digest's next 6 bytes, then the record's offset (6 bytes, files up to
  256 TiB). With 33 bytes of object header per bucket that is about 12 bytes a key from a
  million keys up (`nbytes`).
- A lookup digests the key and searches its bucket with ``bytes.find`` (C speed; a match
  must sit at an entry boundary).

A digest match alone never skips a row: the record at the stored offset is read back from
the file and its key compared exactly (`key_at`), so two keys that share a digest can
cost one extra read, never a row left out. That is why the offset is kept rather than a
wider digest: a wider digest only makes a wrong skip unlikely, the offset makes it
impossible. The read is on the path of the rows being skipped only (they need no request);
a row not written yet costs the digest and one bucket search. The digest is keyed with a
random salt per set, so an output file cannot be crafted to fill one bucket.

>>> keys = {"a": 0, "b": 10}
>>> written = WrittenKeys(lambda offset: {0: "a", 10: "b"}[offset])
>>> for token, offset in keys.items():
...     written.add(token, offset)
>>> "a" in written, "b" in written, "c" in written, len(written)
(True, True, False, 2)
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator

__all__ = ["WrittenKeys"]

_BUCKET_BITS = 14
_TAIL = 6  # digest bytes stored after the bucket's bits
_OFFSET = 6  # bytes of the record offset
_ENTRY = _TAIL + _OFFSET
_MAX_OFFSET = 1 << (8 * _OFFSET)

Digest = Callable[[bytes], bytes]


def keyed_blake2b() -> Digest:
    """A 64-bit BLAKE2b digest keyed with a fresh random salt (the default of a set)."""
    salt = os.urandom(16)

    def digest(data: bytes) -> bytes:
        return hashlib.blake2b(data, digest_size=8, key=salt).digest()

    return digest


def _no_file(offset: int) -> str:
    raise LookupError(f"no record at offset {offset}: this set has no file to read keys from")


class WrittenKeys:
    """A set of key tokens, each with the offset of its record; membership is exact.

    ``key_at(offset)`` reads the key token of the record at ``offset`` (it confirms a digest
    match). ``digest`` (at least 8 bytes out) is for tests that force collisions.
    """

    __slots__ = ("_buckets", "_count", "_digest", "_frozen", "key_at")

    def __init__(self, key_at: Callable[[int], str] = _no_file, *, digest: Digest | None = None):
        self.key_at = key_at
        self._digest = digest or keyed_blake2b()
        self._buckets: list[bytes | bytearray] = [bytearray() for _ in range(1 << _BUCKET_BITS)]
        self._count = 0
        self._frozen = False

    def _locate(self, token: str) -> tuple[bytes | bytearray, bytes]:
        digest = self._digest(token.encode("utf-8", "surrogatepass"))
        bucket = int.from_bytes(digest[:2], "big") >> (16 - _BUCKET_BITS)
        return self._buckets[bucket], digest[2 : 2 + _TAIL]

    def add(self, token: str, offset: int) -> None:
        """Add ``token``, whose record starts at byte ``offset`` of the file."""
        if self._frozen:
            raise RuntimeError("the set is frozen")
        if not 0 <= offset < _MAX_OFFSET:
            raise ValueError(f"offset {offset} out of range (files up to 256 TiB)")
        bucket, tail = self._locate(token)
        assert isinstance(bucket, bytearray)
        bucket += tail
        bucket += offset.to_bytes(_OFFSET, "big")
        self._count += 1

    def freeze(self) -> None:
        """Drop the growth room of the buckets (done adding): about 12% less memory."""
        self._buckets = [bytes(b) for b in self._buckets]
        self._frozen = True

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str) or not self._count:
            return False
        bucket, tail = self._locate(token)
        at = bucket.find(tail)
        while at >= 0:
            if at % _ENTRY == 0:
                offset = int.from_bytes(bucket[at + _TAIL : at + _ENTRY], "big")
                if self.key_at(offset) == token:
                    return True
            at = bucket.find(tail, at + 1)
        return False

    def __len__(self) -> int:
        return self._count

    def offsets(self) -> Iterator[int]:
        """The record offsets of the keys, in no particular order."""
        for bucket in self._buckets:
            for at in range(_TAIL, len(bucket), _ENTRY):
                yield int.from_bytes(bucket[at : at + _OFFSET], "big")

    def __iter__(self) -> Iterator[str]:
        """The keys, read back from the file (in offset order; one read per key)."""
        for offset in sorted(self.offsets()):
            yield self.key_at(offset)

    @property
    def nbytes(self) -> int:
        """The memory this set holds: the buckets (headers and entries) and their list."""
        return sys.getsizeof(self._buckets) + sum(map(sys.getsizeof, self._buckets))
