"""Input rows, streamed: JSON Lines, CSV (header row) and Parquet, from a file or stdin.

Nothing reads the whole file: rows come one at a time (Parquet in record batches), so a
run's memory does not grow with the input. A line or record that cannot be read becomes an
`UnreadableRow`, which the runner records as a failed result instead of dropping it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import gzip
import io
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ..errors import ConfigurationError

__all__ = [
    "FORMATS",
    "RowSource",
    "UnreadableRow",
    "count_rows",
    "detect_format",
    "open_rows",
    "read_in_thread",
]

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_PARQUET_BATCH = 1024
_COUNT_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A row of the input that could not be read (bad JSON line, ragged CSV line)."""

    reason: str


Row = dict[str, Any] | UnreadableRow


def detect_format(path: str, given: str | None = None) -> str:
    """The input format: ``given``, else from the file name; ``-`` (stdin) is JSON Lines."""
    if given:
        fmt = given.lower()
        if fmt in ("ndjson", "jsonlines"):
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise ConfigurationError(
                f"unknown input format {given!r}; use one of {', '.join(FORMATS)}", field="input"
            )
        return fmt
    if path == "-":
        return "jsonl"
    name = path.lower().removesuffix(".gz")
    suffix = os.path.splitext(name)[1]
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if suffix == ".json":
        raise ConfigurationError(
            f"{path}: a .json file is read as one JSON document, but batch input is streamed; "
            "write one JSON object per line and name it .jsonl (or pass --input-format jsonl)",
            field="input",
        )
    raise ConfigurationError(
        f"{path}: cannot tell the format from the name; use .jsonl, .csv or .parquet, "
        "or pass --input-format",
        field="input",
    )


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


def _jsonl_rows(stream: IO[bytes]) -> Iterator[Row]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            yield UnreadableRow(f"input line {number} is not valid JSON: {exc}")
            continue
        if not isinstance(row, dict):
            kind = type(row).__name__
            yield UnreadableRow(f"input line {number} is a JSON {kind}, not an object")
            continue
        yield row


def _csv_rows(stream: IO[bytes], path: str) -> Iterator[Row]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    width = len(header)
    blanks = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if blanks or len(set(header)) != width:
        problem = f"empty column names at {blanks}" if blanks else "repeated column names"
        raise ConfigurationError(f"{path}: the header row has {problem}: {header}", field="input")
    for values in reader:
        if not values:
            continue
        if len(values) != width:
            yield UnreadableRow(
                f"input line {reader.line_num} has {len(values)} fields, the header has {width}"
            )
            continue
        yield dict(zip(header, values, strict=True))


def _parquet_rows(path: str) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError(
            "Parquet input needs pyarrow: pip install 'openai-compat[parquet]'", field="input"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path} as Parquet: {exc}", field="input") from None
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH):
        yield from batch.to_pylist()


class RowSource:
    """The rows of one input (a path or ``-``), read lazily; iterate it once."""

    def __init__(self, path: str | os.PathLike[str], fmt: str | None = None) -> None:
        self.path = os.fspath(path)
        self.format = detect_format(self.path, fmt)
        if self.path != "-" and not Path(self.path).is_file():
            raise ConfigurationError(f"no such input file: {self.path}", field="input")

    def __iter__(self) -> Iterator[Row]:
        if self.format == "parquet":
            if self.path == "-":
                raise ConfigurationError("Parquet cannot be read from stdin", field="input")
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


_END: Any = object()


async def read_in_thread(rows: Iterable[Any], size: int) -> AsyncIterator[list[Any]]:
    """Chunks of ``size`` rows, read and decoded on a daemon thread.

    File reads and JSON decoding stay off the event loop, and a reader blocked on a stdin
    that never ends cannot hold up a stopped run, nor the interpreter's exit (executor
    threads would be joined at exit; this one is a daemon).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)
    stopped = threading.Event()

    def hand_over(item: Any) -> bool:
        try:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
        except (RuntimeError, asyncio.CancelledError, concurrent.futures.CancelledError):
            return False  # the loop is gone, or the run stopped
        return not stopped.is_set()

    def produce() -> None:
        iterator = iter(rows)
        try:
            while not stopped.is_set():
                chunk = [row for _, row in zip(range(size), iterator, strict=False)]
                if not chunk:
                    hand_over(_END)
                    return
                if not hand_over(chunk):
                    return
        except BaseException as exc:  # handed to the event loop, raised there
            hand_over(exc)

    threading.Thread(target=produce, name="batch-reader", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        # Wake a reader waiting to hand over a chunk, so it sees the stop.
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                queue.get_nowait()
