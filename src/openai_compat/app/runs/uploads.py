"""Uploaded datasets: a multipart body streamed to the data directory, then looked at.

The file part is parsed as it arrives (python-multipart's streaming parser) and written
chunk by chunk to ``<data dir>/uploads/``; nothing holds the file in memory, and the
upload is refused (413) as soon as it passes the cap. The file is then opened with the
batch readers (the same as the CLI's: JSON Lines, CSV, Parquet, any of them gzipped), and
its columns, first rows and an estimate of its row count are kept with it.

A small file can hold a lot once read (a gzipped line of hundreds of MB, a Parquet value
repeated by its dictionary), so every line of a text upload is measured before any row is
read (at most `MAX_LINE_BYTES`), Parquet is looked at a row at a time, and the stored
sample is bounded (`SAMPLE_VALUE_CHARS`, `SAMPLE_BYTES`).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from ..._strict_json import json_safe
from ...batch.sources import (
    RowSource,
    UnreadableRow,
    count_rows,
    format_of_name,
    probe_columns,
)
from ...errors import ConfigurationError
from ..connectors import validate_name
from ..http import ApiError, BodyTooLarge, FieldError

__all__ = [
    "MAX_LINE_BYTES",
    "MULTIPART_SLACK",
    "SAMPLE_BYTES",
    "SAMPLE_ROWS",
    "SAMPLE_VALUE_CHARS",
    "Inspected",
    "UploadedFile",
    "inspect_upload",
    "receive_upload",
    "remove_upload_file",
    "sweep_orphan_uploads",
    "too_large",
    "upload_body_cap",
    "upload_dir",
    "upload_path",
]

SAMPLE_ROWS = 10
# A line of a JSON Lines or CSV upload may hold at most this much: reading one row must not
# take the server's memory (a few hundred KB of gzip can hold a line of hundreds of MB).
MAX_LINE_BYTES = 8 * 1024 * 1024
# What the sample kept with an upload may hold: it is shown, not run (the run reads the
# file), so a long value is cut and the rows stop at this much JSON.
SAMPLE_VALUE_CHARS = 1000
SAMPLE_BYTES = 64 * 1024
# Chunks of the line scan: never more than a line may hold, so a line within one chunk is
# short enough and only a line across chunks needs counting.
_SCAN_CHUNK = 1 << 20
# The multipart framing around the file (boundaries, part headers) is not the file.
MULTIPART_SLACK = 64 * 1024
_FILE_FIELD = "file"
# The files this module writes in the uploads folder: an upload's, and one being received.
_OURS = re.compile(r"[0-9a-f]{32}\.[a-z0-9-]+(\.gz)?|\.receiving-[0-9]+")
_NAME_LIMIT = 255
# A text part longer than this is not kept (the parts kept are names such as ``purpose``).
_FIELD_LIMIT = 1024


def upload_dir(data_dir: Path) -> Path:
    """Where uploads are kept (owner-only; a directory left looser is tightened)."""
    path = data_dir / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def upload_path(data_dir: Path, upload_id: str, fmt: str, compressed: bool) -> Path:
    """The stored file of an upload: its name says its format, as the readers expect."""
    return upload_dir(data_dir) / f"{upload_id}.{fmt}{'.gz' if compressed else ''}"


def too_large(limit: int) -> ApiError:
    """The 413 of an upload over the cap."""
    return ApiError(
        413,
        f"the upload is too large: at most {limit} bytes are accepted "
        "(set OPENAI_COMPAT_MAX_UPLOAD_BYTES to allow more)",
        max_upload_bytes=limit,
    )


def upload_body_cap(limit: int) -> tuple[int, Callable[[int], ApiError]]:
    """The cap of an upload request's body (``limit``, the file's cap, and the multipart
    framing around it), and its 413, which names the file's cap."""
    return limit + MULTIPART_SLACK, lambda cap: too_large(cap - MULTIPART_SLACK)


@dataclass
class UploadedFile:
    """A file part received to disk: its temporary path, given name, size."""

    path: Path
    filename: str
    size: int
    # The other parts that are short text fields (a Files API upload's ``purpose``).
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Receiver:
    """The callbacks of the streaming parser: the first ``file`` part goes to ``path``."""

    path: Path
    limit: int
    size: int = 0
    filename: str | None = None
    _header_field: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _headers: dict[str, bytes] = field(default_factory=dict)
    _writing: bool = False
    _done: bool = False
    # The closing boundary was read: without it the body was cut off, and so may the file be.
    ended: bool = False
    _file: Any = None
    # A text part being read (its name and bytes so far), kept only while short.
    fields: dict[str, str] = field(default_factory=dict)
    _field_name: str | None = None
    _field_value: bytearray = field(default_factory=bytearray)

    def on_part_begin(self) -> None:
        self._headers = {}
        self._field_name = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        name = bytes(self._header_field).decode("latin-1").lower()
        self._headers[name] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None and name != _FILE_FIELD:
            self._field_name = name
            self._field_value.clear()
        if self._done or name != _FILE_FIELD or filename is None:
            return
        self.filename = os.path.basename(filename.decode("utf-8", "replace").replace("\\", "/"))
        # Owner-only, as everything else in the data directory.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(descriptor, "wb")
        self._writing = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field_name is not None and len(self._field_value) <= _FIELD_LIMIT:
            self._field_value += data[start:end]
        if not self._writing:
            return
        self.size += end - start
        if self.size > self.limit:
            raise too_large(self.limit)
        self._file.write(data[start:end])

    def on_part_end(self) -> None:
        if self._field_name is not None and len(self._field_value) <= _FIELD_LIMIT:
            self.fields[self._field_name] = self._field_value.decode("utf-8", "replace")
        self._field_name = None
        if self._writing:
            self._file.close()
            self._writing = False
            self._done = True

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


async def receive_upload(
    content_type: str, body: AsyncIterator[bytes], into: Path, limit: int
) -> UploadedFile:
    """Stream a ``multipart/form-data`` body's ``file`` part into the file ``into``."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(
            415,
            "send the file as multipart/form-data with a part named 'file' "
            "(curl -F file=@rows.csv ...)",
        )
    receiver = _Receiver(into, limit)
    callbacks: Any = {
        name: getattr(receiver, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    try:
        # Inside the try: the parser refuses some boundaries (over 256 characters) as it is made.
        parser = MultipartParser(boundary, callbacks)
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        receiver.close()
        into.unlink(missing_ok=True)
        raise
    except BodyTooLarge:
        # The gate counts the whole body (the file and its framing) and may stop it first.
        receiver.close()
        into.unlink(missing_ok=True)
        raise too_large(limit) from None
    except Exception as exc:  # python-multipart's parse errors
        receiver.close()
        into.unlink(missing_ok=True)
        raise ApiError(400, f"the multipart body cannot be read: {exc}") from None
    receiver.close()
    if not receiver.ended:
        into.unlink(missing_ok=True)
        raise ApiError(
            400,
            "the multipart body ends before its closing boundary: it was cut off, and the "
            "file with it; send the whole file again",
        )
    if receiver.filename is None:
        into.unlink(missing_ok=True)
        raise ApiError.invalid(
            [FieldError("file", "no file part named 'file' (with a filename) in the body")]
        )
    filename = receiver.filename[:_NAME_LIMIT] or "upload"
    problems = validate_name(filename)
    if problems:
        into.unlink(missing_ok=True)
        raise ApiError.invalid(
            [FieldError("file", f"its name {problems[0]['message']}; rename the file")]
        )
    return UploadedFile(into, filename, receiver.size, receiver.fields)


@dataclass(frozen=True)
class Inspected:
    """What an upload holds: its format, columns, first rows and row count estimate."""

    id: str
    filename: str
    format: str
    compressed: bool
    size_bytes: int
    rows_estimate: int | None
    columns: list[str]
    sample: list[Any]
    created_at: datetime

    def row(self) -> dict[str, Any]:
        """The upload's row, as the store records it."""
        return {
            "id": self.id,
            "filename": self.filename,
            "format": self.format,
            "compressed": self.compressed,
            "size_bytes": self.size_bytes,
            "rows_estimate": self.rows_estimate,
            "columns": self.columns,
            "sample": self.sample,
            "created_at": self.created_at,
        }


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SAMPLE_VALUE_CHARS:
        return value[:SAMPLE_VALUE_CHARS] + "…"
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value[:SAMPLE_VALUE_CHARS]]
    return value


def _showable(row: dict[str, Any]) -> Any:
    # Parquet values may be dates, decimals or bytes: shown as their text, as CSV output does.
    return _cut(json_safe(json.loads(json.dumps(row, default=str))))


def _within_sample(sample: list[Any], row: Any) -> bool:
    """Whether ``row`` still fits in the sample's bytes."""
    size = len(json.dumps([*sample, row], ensure_ascii=False).encode())
    return size <= SAMPLE_BYTES


def _mib(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size} bytes"


def _too_long(line: int) -> ConfigurationError:
    return ConfigurationError(
        f"line {line} is longer than the {_mib(MAX_LINE_BYTES)} a line of an upload may hold; "
        "split that row or shorten its values",
        field="file",
    )


def _scan_lines(path: Path, compressed: bool, fmt: str) -> int | None:
    """Count the lines of a JSON Lines or CSV file (its rows estimate) in bounded memory;
    ``ConfigurationError`` naming the limit at the first line over `MAX_LINE_BYTES`."""
    # The CSV reader also ends a line at a lone CR; the JSON Lines reader only at LF.
    breaks = (b"\n", b"\r") if fmt == "csv" else (b"\n",)
    lines = 0
    current = 0  # the bytes of the line not ended yet
    last = b"\n"
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as f:
            while chunk := f.read(_SCAN_CHUNK):
                found = [at for at in (chunk.find(b) for b in breaks) if at >= 0]
                current += min(found) if found else len(chunk)
                if current > MAX_LINE_BYTES:
                    raise _too_long(lines + 1)
                if found:
                    current = len(chunk) - max(chunk.rfind(b) for b in breaks) - 1
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError, zlib.error):
        # A damaged stream: its rows cannot be read past this point either (the readers say
        # so row by row), so no longer line can reach a run.
        return None
    if current > MAX_LINE_BYTES:
        raise _too_long(lines + 1)
    if last != b"\n":
        lines += 1
    return max(0, lines - 1) if fmt == "csv" else lines


def _parquet_start(path: Path) -> tuple[list[str], list[Any], int | None]:
    """A Parquet file's columns, first rows (read a few at a time: a small file can hold
    rows of hundreds of MB once decoded) and row count."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot be read as Parquet: {exc}", field="file") from None
    columns = list(parquet.schema_arrow.names)
    sample: list[Any] = []
    for batch in parquet.iter_batches(batch_size=1):
        row = _showable(batch.to_pylist()[0])
        if not _within_sample(sample, row):
            break
        sample.append(row)
        if len(sample) >= SAMPLE_ROWS:
            break
    return columns, sample, int(parquet.metadata.num_rows)


def _text_start(path: Path, fmt: str, compressed: bool) -> tuple[list[str], list[Any], int | None]:
    """A file's columns, first rows and rows estimate, through the batch readers: every
    line is measured first, so no row read here or by a run is over `MAX_LINE_BYTES`."""
    estimate = _scan_lines(path, compressed, fmt) if fmt != "parquet" else None
    source = RowSource(path)
    names: dict[str, None] = {}  # in the order first seen; linear in the names
    sample: list[Any] = []
    problems: list[str] = []
    full = False
    for read, row in enumerate(source, start=1):
        if isinstance(row, UnreadableRow):
            problems.append(row.reason)
        else:
            names.update(dict.fromkeys(row))
            shown = _showable(row)
            # The first rows, in order: none after one that does not fit.
            if full or not _within_sample(sample, shown):
                full = True
            else:
                sample.append(shown)
        if read >= SAMPLE_ROWS:
            break
    if not sample and problems:
        raise ConfigurationError(f"its first rows cannot be read: {problems[0]}", field="file")
    columns = list(names)
    if not columns and fmt == "csv":
        # A header without rows still names the columns a run is checked against.
        columns = probe_columns(str(path), fmt)
    if fmt == "parquet":
        estimate = count_rows(source)
    return columns, sample, estimate


def remove_upload_file(data_dir: Path, row: Any) -> None:
    """Remove an upload's file (its row is gone)."""
    upload_path(data_dir, row.id, row.format, row.compressed).unlink(missing_ok=True)


def sweep_orphan_uploads(
    data_dir: Path, recorded: Callable[[], set[str]], *, older_than_s: float
) -> list[str]:
    """Remove the files of ``<data dir>/uploads`` that no upload row names (an upload killed
    before its row was written, a receiving file left by a crash): their names. A file
    changed in the last ``older_than_s`` seconds is left alone (another instance sharing
    the directory may be receiving it)."""
    folder = upload_dir(data_dir)
    found = [p for p in folder.iterdir() if _OURS.fullmatch(p.name)]
    if not found:
        return []
    known = recorded()
    cutoff = time.time() - older_than_s
    removed = []
    for path in found:
        upload_id = None if path.name.startswith(".") else path.name.split(".", 1)[0]
        if upload_id in known:
            continue
        try:
            if path.stat().st_mtime > cutoff:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path.name)
    return removed


def inspect_upload(data_dir: Path, received: UploadedFile) -> Inspected:
    """Move the received file to its place and read its start; 422 (file removed) if it is
    not a dataset the batch readers can read. Blocking: call it in a worker thread."""
    try:
        # Judged by name as every engine judges it (no --input-format on a web page).
        fmt = format_of_name(received.filename, input_format_option=False).name
    except ConfigurationError as exc:
        received.path.unlink(missing_ok=True)
        raise ApiError.invalid([FieldError("file", exc.reason)]) from None
    compressed = received.filename.lower().endswith(".gz")
    upload_id = uuid.uuid4().hex
    path = upload_path(data_dir, upload_id, fmt, compressed)
    shutil.move(received.path, path)
    try:
        if fmt == "parquet" and not compressed:
            columns, sample, estimate = _parquet_start(path)
        else:
            columns, sample, estimate = _text_start(path, fmt, compressed)
    except ConfigurationError as exc:
        path.unlink(missing_ok=True)
        shown = exc.reason.replace(str(path), received.filename)
        raise ApiError.invalid([FieldError("file", shown)]) from None
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise ApiError.invalid(
            [FieldError("file", f"cannot be read as {fmt}: {type(exc).__name__}")]
        ) from None
    return Inspected(
        id=upload_id,
        filename=received.filename,
        format=fmt,
        compressed=compressed,
        size_bytes=received.size,
        rows_estimate=estimate,
        columns=columns,
        sample=sample,
        created_at=datetime.now(UTC),
    )
