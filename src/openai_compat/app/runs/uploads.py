"""Uploaded datasets: a multipart body streamed to the data directory, then looked at.

The file part is parsed as it arrives (python-multipart's streaming parser) and written
chunk by chunk to ``<data dir>/uploads/``; nothing holds the file in memory, and the
upload is refused (413) as soon as it passes the cap. The file is then opened with the
batch readers (the same as the CLI's: JSON Lines, CSV, Parquet, any of them gzipped), and
its columns, first rows and an estimate of its row count are kept with it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from ..._strict_json import json_safe
from ...batch.sources import RowSource, UnreadableRow, count_rows, format_of_name
from ...errors import ConfigurationError
from ..http import ApiError, BodyTooLarge, FieldError

__all__ = [
    "MULTIPART_SLACK",
    "SAMPLE_ROWS",
    "Inspected",
    "UploadedFile",
    "inspect_upload",
    "receive_upload",
    "too_large",
    "upload_body_cap",
    "upload_dir",
    "upload_path",
]

SAMPLE_ROWS = 10
# The multipart framing around the file (boundaries, part headers) is not the file.
MULTIPART_SLACK = 64 * 1024
_FILE_FIELD = "file"
_NAME_LIMIT = 255


def upload_dir(data_dir: Path) -> Path:
    """Where uploads are kept (owner-only)."""
    path = data_dir / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    _file: Any = None

    def on_part_begin(self) -> None:
        self._headers = {}

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
        if self._done or name != _FILE_FIELD or filename is None:
            return
        self.filename = os.path.basename(filename.decode("utf-8", "replace").replace("\\", "/"))
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed at the part's end
        self._writing = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._writing:
            return
        self.size += end - start
        if self.size > self.limit:
            raise too_large(self.limit)
        self._file.write(data[start:end])

    def on_part_end(self) -> None:
        if self._writing:
            self._file.close()
            self._writing = False
            self._done = True

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
        )
    }
    parser = MultipartParser(boundary, callbacks)
    try:
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
    if receiver.filename is None:
        into.unlink(missing_ok=True)
        raise ApiError.invalid(
            [FieldError("file", "no file part named 'file' (with a filename) in the body")]
        )
    return UploadedFile(into, receiver.filename[:_NAME_LIMIT] or "upload", receiver.size)


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


def _showable(row: dict[str, Any]) -> Any:
    # Parquet values may be dates, decimals or bytes: shown as their text, as CSV output does.
    return json_safe(json.loads(json.dumps(row, default=str)))


def _count_gzipped(path: Path, fmt: str) -> int | None:
    if fmt == "parquet":
        return None
    lines = 0
    last = b"\n"
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1) if fmt == "csv" else lines


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
        source = RowSource(path)
        columns: dict[str, None] = {}  # in the order first seen; linear in the names
        sample: list[Any] = []
        problems: list[str] = []
        for row in source:
            if isinstance(row, UnreadableRow):
                problems.append(row.reason)
            else:
                columns.update(dict.fromkeys(row))
                sample.append(_showable(row))
            if len(sample) + len(problems) >= SAMPLE_ROWS:
                break
        if not sample and problems:
            raise ConfigurationError(f"its first rows cannot be read: {problems[0]}", field="file")
        try:
            estimate = _count_gzipped(path, fmt) if compressed else count_rows(source)
        except (OSError, EOFError):
            estimate = None
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
        columns=list(columns),
        sample=sample,
        created_at=datetime.now(UTC),
    )
