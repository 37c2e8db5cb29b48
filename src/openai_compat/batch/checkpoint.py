"""The output file is the checkpoint: read it back to resume a run.

On ``resume`` every row already written (ok or failed) is skipped; a torn last line (the
process was killed in the middle of a write) is cut off first. On ``retry-failed`` the
failed lines are removed (the file is rewritten to a temporary file and swapped in
atomically, so a crash at any moment leaves either the old or the new file) and their
rows run again, along with any row not written yet.

The keys to skip are a `WrittenKeys` (about 8 bytes a key instead of a Python set's 90):
each key's digest and the offset of its record, which `KeyReader` reads back to confirm a
digest match exactly, so a digest collision never skips a row. The checkpoint keeps the
file open for those reads; `Checkpoint.close` closes it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import ConfigurationError
from .keys import key_token
from .keyset import WrittenKeys

__all__ = ["MODES", "Checkpoint", "Record", "json_line_records", "prepare_output", "rewrite_kept"]

MODES = ("new", "overwrite", "resume", "retry-failed")
_KEY_FIRST = b'{"key":'
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass(slots=True)
class Checkpoint:
    """What the output already holds: the keys to skip, and what was done to the file."""

    done: WrittenKeys = field(default_factory=WrittenKeys)
    ok: int = 0
    failed: int = 0
    removed_failed: int = 0
    torn_bytes: int = 0
    reader: KeyReader | None = None

    def close(self) -> None:
        """Close the file the key checks read (the keys cannot be checked afterwards)."""
        if self.reader is not None:
            self.reader.close()


class KeyReader:
    """The key token of the record at a byte offset of an output file (JSON Lines or CSV).

    Opened on the first read: a run whose rows are all new never reads the file again.
    """

    def __init__(self, path: str, fmt: str, columns: Sequence[str]) -> None:
        self.path = path
        self.csv = fmt == "csv"
        self._key_column = list(columns).index("key") if self.csv else 0
        self._file: IO[bytes] | None = None

    def __call__(self, offset: int) -> str:
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        self._file.seek(offset)
        raw = self._file.readline()
        if not self.csv:
            if raw.startswith(_KEY_FIRST):  # as JsonlWriter writes: decode the key alone
                text = raw.decode("utf-8")
                at = _WHITESPACE.match(text, len(_KEY_FIRST)).end()  # type: ignore[union-attr]
                return key_token(_DECODER.raw_decode(text, at)[0])
            return key_token(json.loads(raw)["key"])
        while raw.count(b'"') % 2:  # a quoted value with line ends: read on to its end
            more = self._file.readline()
            if not more:
                break
            raw += more
        return next(csv.reader([raw.decode("utf-8")]))[self._key_column]

    def close(self) -> None:
        """Close the file (a later read opens it again)."""
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(slots=True)
class Record:
    """One result record of an output file, as resume reads it back (any output format)."""

    end: int  # byte offset just past this record
    raw: bytes
    key: str | None = None
    failed: bool = False


def json_line_records(
    path: str, read: Callable[[Any], tuple[str, bool]], not_a_line: str
) -> Iterator[Record]:
    """The records of a JSON Lines output file, each line's key and failure told by
    ``read`` (its parsed object in; what it raises, ValueError, KeyError or TypeError, makes
    the file one this run does not resume: "``path`` line N is not ``not_a_line``").
    A torn last line ends them: the caller cuts it off."""
    offset = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            end = offset + len(line)
            if not line.endswith(b"\n"):
                return
            offset = end
            if not line.strip():
                continue
            try:
                key, failed = read(json.loads(line))
            except (ValueError, KeyError, TypeError):
                raise ConfigurationError(
                    f"{path} line {number} is not {not_a_line}", field="output"
                ) from None
            yield Record(end, line, key, failed)


def _result_line(data: Any) -> tuple[str, bool]:
    return key_token(data["key"]), data.get("error") is not None


def _jsonl_records(path: str) -> Iterator[Record]:
    return json_line_records(
        path,
        _result_line,
        "a result line of a batch run; resume only with the output file of a batch run (or "
        "choose another --output)",
    )


def _csv_records(path: str, columns: Sequence[str]) -> Iterator[Record]:
    offset = 0
    pending = b""
    quotes = 0
    header_seen = False
    with open(path, "rb") as f:
        for line in f:
            pending += line
            quotes += line.count(b'"')
            # A record ends at a line end outside quotes (quotes inside values are doubled).
            if not line.endswith(b"\n") or quotes % 2:
                continue
            offset += len(pending)
            raw, pending, quotes = pending, b"", 0
            values = next(csv.reader([raw.decode("utf-8")]), [])
            if not header_seen:
                header_seen = True
                if values != list(columns):
                    raise ConfigurationError(
                        f"{path} has other columns than this run writes ({', '.join(values)}); "
                        "resume with the same outputs and --include-* options, or choose "
                        "another --output",
                        field="output",
                    )
                yield Record(offset, raw)
                continue
            if len(values) != len(columns):
                raise ConfigurationError(
                    f"{path} has a record with {len(values)} fields instead of {len(columns)}",
                    field="output",
                )
            row = dict(zip(columns, values, strict=True))
            failed = bool(row["error.message"] or row["error.status"])
            yield Record(offset, raw, row["key"], failed)


def _records(path: str, fmt: str, columns: Sequence[str]) -> Iterator[Record]:
    return _csv_records(path, columns) if fmt == "csv" else _jsonl_records(path)


def rewrite_kept(path: str, kept: Iterator[Record], done: WrittenKeys) -> None:
    """Write the ``kept`` records to ``path`` (atomically); their keys go into ``done``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".batch-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            offset = 0
            for record in kept:
                if record.key is not None:
                    done.add(record.key, offset)
                offset += out.write(record.raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def prepare_output(
    path: str, fmt: str, mode: str, *, csv_columns: Sequence[str] = ()
) -> Checkpoint:
    """Get ``path`` ready for appending, per ``mode`` (one of `MODES`).

    ``new`` refuses an output that already has content (so a finished run is never
    silently doubled); ``overwrite`` empties it.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    state = Checkpoint()
    if path == "-":
        if mode in ("resume", "retry-failed"):
            raise ConfigurationError(
                "cannot resume from stdout; write to a file with --output FILE", field="output"
            )
        return state
    exists = os.path.exists(path)
    if exists and os.path.isdir(path):
        raise ConfigurationError(f"{path} is a directory", field="output")
    if not exists or os.path.getsize(path) == 0:
        return state
    if mode == "new":
        raise ConfigurationError(
            f"{path} already has results: pass --resume to finish that run, --retry-failed to "
            "also run its failed rows again, or --overwrite to start over",
            field="output",
        )
    if mode == "overwrite":
        with open(path, "wb"):
            pass
        return state

    state.reader = KeyReader(path, fmt, csv_columns)
    state.done = WrittenKeys(state.reader, max_offset=os.path.getsize(path))
    good_end = 0
    failed_lines = False
    for record in _records(path, fmt, csv_columns):
        good_end = record.end
        if record.key is None:
            continue
        if record.failed:
            state.failed += 1
            failed_lines = True
            if mode == "retry-failed":
                continue
        else:
            state.ok += 1
        state.done.add(record.key, record.end - len(record.raw))
    size = os.path.getsize(path)
    if good_end < size:
        state.torn_bytes = size - good_end
        os.truncate(path, good_end)
    if mode == "retry-failed" and failed_lines:
        state.removed_failed = state.failed
        state.failed = 0
        # The offsets move: the keys are taken again, from the file as rewritten.
        state.done = WrittenKeys(state.reader, max_offset=os.path.getsize(path))
        rewrite_kept(
            path, (r for r in _records(path, fmt, csv_columns) if not r.failed), state.done
        )
    state.done.freeze()
    return state
