"""Input files: rows streamed (JSON Lines, CSV with a header row, Parquet, from a file or
stdin), their columns, their count, and the format of a directory or glob of them.

Nothing reads the whole file: rows come one at a time (Parquet in record batches), so a
run's memory does not grow with the input. A line or record that cannot be read becomes an
`UnreadableRow`, which the runner records as a failed result instead of dropping it.
Which format a file is comes from `formats`, the one table every engine asks.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import msgspec

from ..._json import MAX_DEPTH, depth_problem
from ...errors import ConfigurationError
from .formats import InputFormat, detect_format, format_named, format_of_name, suffix_format

__all__ = [
    "RowSource",
    "UnreadableRow",
    "count_rows",
    "format_of_input",
    "open_rows",
    "probe_columns",
]

_PARQUET_BATCH = 1024
_COUNT_CHUNK = 1 << 20
# The start of a JSON Lines file its columns are read from (Arrow's first block is as big).
_PROBE_BYTES = 1 << 20
_OPENAI_BATCH = format_named("openai-batch")
# CSV text is decoded with ``surrogateescape``: an undecodable byte becomes one of these
# (strict UTF-8 never yields them otherwise), so a bad line is found without a crash.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# What reading a damaged file raises part way (a corrupt or cut-off gzip stream, a bad
# Parquet page, an I/O error); ConfigurationError (a ValueError) is not among them.
_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError)


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A row of the input that could not be read (bad JSON line, ragged CSV line)."""

    reason: str


Row = dict[str, Any] | UnreadableRow


def _open_binary(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        if path.lower().endswith(".gz"):
            return cast(IO[bytes], gzip.open(path, "rb"))
        return open(path, "rb")
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
        raise ConfigurationError(message, field="input") from None


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# The words of `depth_problem`, for a line too deep for the parser itself to finish.
_TOO_DEEP = depth_problem(_nested(MAX_DEPTH + 1))


def _may_nest_deeply(line: bytes) -> bool:
    # A line can nest more than MAX_DEPTH levels only if it has that many brackets: counting
    # them (in C) spares the walk of `depth_problem` for nearly every row.
    return line.count(b"[") + line.count(b"{") > MAX_DEPTH


# msgspec parses a line into the same dict as ``json.loads`` in a fraction of the time; what
# it refuses (NaN, a lone surrogate, a byte order mark, an integer past Python's limit, bad
# JSON) goes through ``json.loads``, so every line reads, or fails, as it always did.
_fast_loads = msgspec.json.Decoder().decode
_NOT_FAST: Any = object()


def _jsonl_rows(stream: Iterable[bytes]) -> Iterator[Row]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = _fast_loads(line)
        except (ValueError, RecursionError):
            row = _NOT_FAST
        try:
            if row is _NOT_FAST:
                row = json.loads(line)
        except RecursionError:
            yield UnreadableRow(f"input line {number} {_TOO_DEEP}")
            continue
        except UnicodeDecodeError as exc:
            byte = exc.object[exc.start : exc.start + 1].hex()
            yield UnreadableRow(
                f"input line {number} is not UTF-8 text (byte 0x{byte} at position "
                f"{exc.start}); save the file as UTF-8"
            )
            continue
        except ValueError as exc:
            yield UnreadableRow(f"input line {number} is not valid JSON: {exc}")
            continue
        if not isinstance(row, dict):
            kind = type(row).__name__
            yield UnreadableRow(f"input line {number} is a JSON {kind}, not an object")
            continue
        if _may_nest_deeply(line):
            problem = depth_problem(row)
            if problem is not None:
                yield UnreadableRow(f"input line {number} {problem}")
                continue
        yield row


def _csv_text(stream: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_header(reader: Any, path: str) -> list[str] | None:
    """The header row, checked: a file whose header cannot be read is refused (exit 2)."""
    try:
        header: list[str] | None = next(reader, None)
    except csv.Error as exc:
        raise ConfigurationError(
            f"{path}: the header row cannot be read as CSV: {exc}", field="input"
        ) from None
    if header is None:
        return None
    if any(_UNDECODABLE.search(name) for name in header):
        raise ConfigurationError(
            f"{path}: the header row is not UTF-8 text; save the file as UTF-8", field="input"
        )
    width = len(header)
    blanks = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if blanks or len(set(header)) != width:
        problem = f"empty column names at {blanks}" if blanks else "repeated column names"
        raise ConfigurationError(f"{path}: the header row has {problem}: {header}", field="input")
    return header


def _csv_rows(stream: IO[bytes], path: str) -> Iterator[Row]:
    reader = csv.reader(_csv_text(stream))
    header = _csv_header(reader, path)
    if header is None:
        return
    width = len(header)
    while True:
        try:
            values = next(reader, None)
        except csv.Error as exc:  # e.g. a field over the size limit; the reader goes on after it
            yield UnreadableRow(f"input line {reader.line_num} cannot be read as CSV: {exc}")
            continue
        if values is None:
            return
        if not values:
            continue
        if len(values) != width:
            yield UnreadableRow(
                f"input line {reader.line_num} has {len(values)} fields, the header has {width}"
            )
            continue
        if any(_UNDECODABLE.search(value) for value in values):
            yield UnreadableRow(
                f"input line {reader.line_num} is not UTF-8 text; save the file as UTF-8"
            )
            continue
        yield dict(zip(header, values, strict=True))


def _parquet_file(path: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError(
            "Parquet input needs pyarrow: pip install 'openai-compat[parquet]'", field="input"
        ) from None
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path} as Parquet: {exc}", field="input") from None


def _parquet_rows(path: str) -> Iterator[Row]:
    for batch in _parquet_file(path).iter_batches(batch_size=_PARQUET_BATCH):
        yield from batch.to_pylist()


def _probe(path: str, fmt: str) -> None:
    """Open ``path`` as its format and read its start, so a file that is not what its name
    says is refused (exit 2) before anything is sent."""
    if fmt == "parquet":
        _parquet_file(path)
        return
    stream = _open_binary(path)
    try:
        if fmt == "csv":
            _csv_header(csv.reader(_csv_text(stream)), path)
        else:
            stream.read(1)
    except (OSError, EOFError, zlib.error) as exc:
        what = "gzip data" if path.lower().endswith(".gz") else "readable"
        raise ConfigurationError(f"{path} is not {what}: {exc}", field="input") from None
    finally:
        stream.close()


class RowSource:
    """The rows of one input (a path or ``-``), read lazily; iterate it once."""

    def __init__(self, path: str | os.PathLike[str], fmt: str | None = None) -> None:
        self.path = os.fspath(path)
        self.format = detect_format(self.path, fmt)
        if self.path == "-":
            read = format_named(self.format)
            if not read.stdin:
                raise ConfigurationError(f"{read.label} cannot be read from stdin", field="input")
            return
        if not Path(self.path).is_file():
            raise ConfigurationError(f"no such input file: {self.path}", field="input")
        _probe(self.path, self.format)
        if fmt is None and self.format == _OPENAI_BATCH.found_in:
            from ..openai_batch_format import looks_like_batch_file

            if looks_like_batch_file(_open_binary(self.path)):
                self.format = _OPENAI_BATCH.name

    def __iter__(self) -> Iterator[Row]:
        read = 0
        try:
            for row in self._rows():
                read += 1
                yield row
        except ConfigurationError:
            raise
        except _READ_ERRORS as exc:
            # A damaged stream (a cut-off gzip, a bad Parquet page): what follows cannot be
            # read, so it becomes one failed row (a resume skips it) instead of a crash.
            yield UnreadableRow(
                f"the input cannot be read after its first {read} rows: "
                f"{type(exc).__name__}: {exc}; the rows after that point are not run"
            )

    def _rows(self) -> Iterator[Row]:
        if self.format == "parquet":
            yield from _parquet_rows(self.path)
            return
        stream = _open_binary(self.path)
        try:
            if self.format == "csv":
                yield from _csv_rows(stream, self.path)
            else:
                yield from _jsonl_rows(stream)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    def __repr__(self) -> str:
        return f"RowSource({self.path!r}, format={self.format!r})"


def open_rows(path: str | os.PathLike[str], fmt: str | None = None) -> RowSource:
    """The rows of ``path`` (``-`` = JSON Lines on stdin) in format ``fmt`` or by suffix."""
    return RowSource(path, fmt)


def count_rows(source: RowSource) -> int | None:
    """A quick estimate of the number of rows, for the ETA (None when unknown).

    JSON Lines and CSV count line ends in binary chunks (a CSV value with a line break
    makes it an over-estimate); Parquet reads its footer.
    """
    if source.path == "-" or source.path.lower().endswith(".gz"):
        return None
    try:
        if source.format == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(source.path).metadata.num_rows)
        lines = 0
        last = b"\n"
        with open(source.path, "rb") as f:
            while chunk := f.read(_COUNT_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        if last != b"\n":
            lines += 1
        return max(0, lines - 1) if source.format == "csv" else lines
    except Exception:  # An estimate only: never let it break a run.
        return None


def _first_block(lines: Iterable[bytes], size: int) -> Iterator[bytes]:
    taken = 0
    for line in lines:
        yield line
        taken += len(line)
        if taken >= size:
            return


def probe_columns(path: str, fmt: str | None = None) -> list[str]:
    """The column names at the start of the file ``path`` (format ``fmt`` or by name).

    A CSV file's header row, a Parquet file's schema, the keys of the JSON Lines objects of
    the file's first block (about 1 MiB; in the order they first appear). A file that is
    not what its format says is a `ConfigurationError`, as when its rows are opened.
    """
    if path == "-":
        raise ConfigurationError("the columns of stdin cannot be read ahead", field="input")
    name = detect_format(path, fmt)
    if name == "parquet":
        return list(_parquet_file(path).schema_arrow.names)
    stream = _open_binary(path)
    try:
        if name == "csv":
            return _csv_header(csv.reader(_csv_text(stream)), path) or []
        columns: dict[str, None] = {}
        for row in _jsonl_rows(_first_block(stream, _PROBE_BYTES)):
            if not isinstance(row, UnreadableRow):
                columns.update(dict.fromkeys(row))
        return list(columns)
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}", field="input") from None
    finally:
        stream.close()


def _hidden(name: str) -> bool:
    # Names Ray and Spark leave out of a directory they read: _SUCCESS, .part-0.crc.
    return name.startswith(("_", "."))


def _files_under(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        for root, directories, files in os.walk(path):
            directories[:] = sorted(d for d in directories if not _hidden(d))
            yield from (os.path.join(root, f) for f in sorted(files) if not _hidden(f))


def _format_of_files(location: str, paths: Iterable[str]) -> InputFormat:
    """The one format of the files at ``paths`` (directories: the files under them)."""
    first: dict[str, str] = {}
    for path in _files_under(paths):
        first.setdefault(format_of_name(path, input_format_option=False).name, path)
    if not first:
        raise ConfigurationError(f"{location}: holds no files to read", field="input")
    if len(first) > 1:
        (one, a), (other, b) = list(first.items())[:2]
        example = ""
        if os.path.isdir(location):
            suffix = format_named(one).suffixes[0]
            example = f", such as {os.path.join(location, '*' + suffix)}"
        raise ConfigurationError(
            f"{location}: holds files of more than one format ({a} is {one}, {b} is {other}); "
            f"give a glob that matches the files of one{example}",
            field="input",
        )
    return format_named(next(iter(first)))


def _remote_format(location: str) -> InputFormat:
    try:
        return format_of_name(location, input_format_option=False)
    except ConfigurationError as exc:
        if suffix_format(location) is not None:
            raise  # a known suffix refused (.json): its own message says what to do
        # A directory on object storage is not listed here: its files are named by a glob.
        base = location.rsplit("/", 1)[0] if glob.has_magic(location) else location.rstrip("/")
        raise ConfigurationError(
            f"{exc.reason}; for a directory, give a glob of its files, such as {base}/*.parquet",
            field="input",
        ) from None


def format_of_input(location: str) -> InputFormat:
    """The format of an engine's input, as Ray and Spark read it.

    A file by its name; a local directory or glob by the files it holds or matches (left
    out: names starting with ``_`` or ``.``, as Ray and Spark leave them), which must all be
    of one format; a path or glob on object storage (``s3://...``) by its name, so a
    directory there is refused with a hint to give a glob of its files. A glob that matches
    nothing is judged by its name (the engine then says nothing matches). The refusals are
    a local run's, without its ``--input-format`` (Ray and Spark do not take it).
    """
    if location == "-":
        return format_named("jsonl")
    if "://" in location:
        return _remote_format(location)
    if glob.has_magic(location):
        matched = sorted(glob.glob(location))
        if matched:
            matched = [m for m in matched if not _hidden(os.path.basename(m))]
            return _format_of_files(location, matched)
    elif os.path.isdir(location):
        return _format_of_files(location, [location])
    return format_of_name(location, input_format_option=False)
