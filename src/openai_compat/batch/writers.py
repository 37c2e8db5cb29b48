"""Result writers: JSON Lines (the default) or CSV, appended and flushed one result at a time.

Each result is encoded whole and handed to the OS in one ``write`` on an unbuffered file,
so a crash leaves at most one torn last line, which `checkpoint` repairs on resume.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any, Protocol

from ..mapping import as_text
from .results import BatchResult

__all__ = [
    "OUTPUT_FORMATS",
    "CsvWriter",
    "JsonlWriter",
    "ResultWriter",
    "csv_columns",
    "detect_output_format",
    "open_writer",
]

OUTPUT_FORMATS = ("jsonl", "csv")
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def detect_output_format(path: str, given: str | None = None) -> str:
    """``given``, else ``csv`` for a ``.csv`` name, else JSON Lines."""
    if given:
        fmt = given.lower()
        if fmt not in OUTPUT_FORMATS:
            from ..errors import ConfigurationError

            raise ConfigurationError(
                f"unknown output format {given!r}; use jsonl or csv", field="output"
            )
        return fmt
    return "csv" if path.lower().endswith(".csv") else "jsonl"


class ResultWriter(Protocol):
    """Appends results to the output."""

    def write(self, result: BatchResult) -> None:
        """Append one result and hand it to the OS."""

    def close(self) -> None:
        """Close the output."""


def _write_all(fd: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = fd.write(view)
        view = view[written or 0 :]


class _FileSink:
    def __init__(self, path: str) -> None:
        self.path = path
        self._stdout = path == "-"
        self._file: IO[bytes] = (
            sys.stdout.buffer if self._stdout else open(path, "ab", buffering=0)  # noqa: SIM115
        )

    def put(self, data: bytes) -> None:
        if self._stdout:
            self._file.write(data)
            self._file.flush()
        else:
            _write_all(self._file, data)

    @property
    def empty(self) -> bool:
        return not self._stdout and os.fstat(self._file.fileno()).st_size == 0

    def close(self) -> None:
        if not self._stdout:
            self._file.close()


class JsonlWriter:
    """One JSON object per line (``BatchResult.to_dict()``)."""

    def __init__(self, path: str) -> None:
        self._sink = _FileSink(path)

    def write(self, result: BatchResult) -> None:
        line = json.dumps(result.to_dict(), ensure_ascii=False, separators=(",", ":"))
        self._sink.put(line.encode("utf-8") + b"\n")

    def close(self) -> None:
        self._sink.close()


def csv_columns(
    output_names: Sequence[str], *, include_input: bool = False, include_response: bool = False
) -> list[str]:
    """The CSV header: the JSON keys, flattened with dots (``output.summary``, ``error.status``)."""
    columns = ["key", *(f"output.{n}" for n in output_names)]
    columns += [f"usage.{u}" for u in _USAGE]
    columns += ["error.status", "error.message", "attempts", "latency_ms"]
    if include_input:
        columns.append("input")
    if include_response:
        columns.append("response")
    return columns


def _cell(value: Any) -> str:
    return as_text(value, compact=True)


class CsvWriter:
    """One CSV record per result, with a header row; nested values are JSON text."""

    def __init__(
        self,
        path: str,
        output_names: Sequence[str],
        *,
        include_input: bool = False,
        include_response: bool = False,
    ) -> None:
        self._sink = _FileSink(path)
        self._names = list(output_names)
        self.columns = csv_columns(
            self._names, include_input=include_input, include_response=include_response
        )
        self._include_input = include_input
        self._include_response = include_response
        if self._sink.empty or path == "-":
            self._sink.put(self._encode(self.columns))

    @staticmethod
    def _encode(values: Sequence[str]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue().encode("utf-8")

    def write(self, result: BatchResult) -> None:
        usage = result.usage or {}
        error = result.error or {}
        values = [_cell(result.key)]
        values += [_cell(result.output.get(n)) for n in self._names]
        values += [_cell(usage.get(u)) for u in _USAGE]
        values += [
            _cell(error.get("status")),
            _cell(error.get("message")) if result.error is not None else "",
            _cell(result.attempts),
            _cell(result.latency_ms),
        ]
        line = result.to_dict()
        if self._include_input:
            values.append(_cell(line.get("input")))
        if self._include_response:
            values.append(_cell(line.get("response")))
        self._sink.put(self._encode(values))

    def close(self) -> None:
        self._sink.close()


def open_writer(
    path: str,
    fmt: str,
    output_names: Sequence[str],
    *,
    include_input: bool = False,
    include_response: bool = False,
) -> ResultWriter:
    """A writer appending to ``path`` (``-`` = stdout) in format ``fmt``."""
    if fmt == "csv":
        return CsvWriter(
            path, output_names, include_input=include_input, include_response=include_response
        )
    return JsonlWriter(path)
