"""Result writers: JSON Lines (the default) or CSV, appended and flushed one result at a time
(Parquet, written whole at the end, is `sinks.parquet`'s).

Each result is encoded whole and handed to the OS in one ``write`` on an unbuffered file,
so a crash leaves at most one torn last line, which `checkpoint` repairs on resume.

Every line is strict JSON (RFC 8259), whatever a row or an answer held: NaN and infinities
are written as ``null``, a lone surrogate as U+FFFD (`json_safe`); writing never fails.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import IO, Any, Protocol

from .._strict_json import json_safe
from ..mapping import as_text
from .results import BatchResult

__all__ = [
    "OUTPUT_FORMATS",
    "CsvWriter",
    "FileSink",
    "JsonlWriter",
    "ResultWriter",
    "Sink",
    "csv_columns",
    "detect_output_format",
    "json_line",
    "jsonl_line",
    "open_writer",
]

# "openai-batch": OpenAI's batch output lines (`_openai_batch_format`); "parquet": one file
# written whole at the end (`sinks.parquet`), with pyarrow.
OUTPUT_FORMATS = ("jsonl", "csv", "openai-batch", "parquet")
# The formats an output's name picks (any other name is JSON Lines).
_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")
# What encoding a value that is not strict JSON raises (UnicodeEncodeError is a ValueError).
_NOT_STRICT = (ValueError, TypeError, RecursionError)
# ``json.dumps`` with these options, made once (``dumps`` builds one per call otherwise).
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_line(data: dict[str, Any]) -> bytes:
    """``data`` as one line of compact JSON (UTF-8, newline-terminated)."""
    return _LINE_ENCODER.encode(data).encode("utf-8") + b"\n"


def detect_output_format(path: str, given: str | None = None) -> str:
    """``given``, else ``csv`` for a ``.csv`` name, ``parquet`` for a ``.parquet`` one,
    else JSON Lines.

    >>> detect_output_format("results.PARQUET"), detect_output_format("out.txt")
    ('parquet', 'jsonl')
    """
    if given:
        fmt = given.lower()
        if fmt not in OUTPUT_FORMATS:
            from ..errors import ConfigurationError

            raise ConfigurationError(
                f"unknown output format {given!r}; use {', '.join(OUTPUT_FORMATS)}",
                field="output",
            )
        return fmt
    return _BY_SUFFIX.get(os.path.splitext(path)[1].lower(), "jsonl")


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


class FileSink:
    """An output file (or stdout, ``-``) opened for appending, each line flushed as written."""

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


def jsonl_line(result: BatchResult) -> bytes:
    """The result's JSON Lines line (with its line end), as `JsonlWriter` writes it."""
    data = result.to_dict()
    try:
        return json_line(data)
    except _NOT_STRICT:  # the rare line with NaN or a lone surrogate in it
        return json_line(json_safe(data))


class JsonlWriter:
    """One JSON object per line (``BatchResult.to_dict()``)."""

    def __init__(self, path: str) -> None:
        self._sink = FileSink(path)

    def write(self, result: BatchResult) -> None:
        self._sink.put(jsonl_line(result))

    def write_many(self, results: Sequence[BatchResult]) -> None:
        """Append the lines of ``results`` in one write (each line whole, as `write` does)."""
        if len(results) == 1:
            self._sink.put(jsonl_line(results[0]))
        else:
            self._sink.put(b"".join([jsonl_line(result) for result in results]))

    def close(self) -> None:
        self._sink.close()


def csv_columns(
    output_names: Sequence[str],
    *,
    include_input: bool = False,
    include_response: bool = False,
    include_cached: bool = False,
    include_cost: bool = False,
) -> list[str]:
    """The CSV header: the JSON keys, flattened with dots (``output.summary``, ``error.status``).

    ``cached`` and ``cost`` come last, in runs with a response cache / with prices.
    """
    columns = ["key", *(f"output.{n}" for n in output_names)]
    columns += [f"usage.{u}" for u in _USAGE]
    columns += ["error.status", "error.message", "attempts", "latency_ms"]
    if include_input:
        columns.append("input")
    if include_response:
        columns.append("response")
    if include_cached:
        columns.append("cached")
    if include_cost:
        columns.append("cost")
    return columns


def _cell(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a JSON number")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return as_text(value, compact=True)


class Sink(Protocol):
    """Where a writer puts its bytes (a file, or a download being streamed)."""

    @property
    def empty(self) -> bool:
        """True when nothing was written yet (a CSV header is then written first)."""

    def put(self, data: bytes) -> None:
        """Write ``data``."""

    def close(self) -> None:
        """Close it."""


class CsvWriter:
    """One CSV record per result, with a header row; nested values are JSON text.

    ``sink`` replaces the file ``path`` (the application streams a download through it).
    """

    def __init__(
        self,
        path: str,
        output_names: Sequence[str],
        *,
        include_input: bool = False,
        include_response: bool = False,
        include_cached: bool = False,
        include_cost: bool = False,
        sink: Sink | None = None,
    ) -> None:
        self._sink: Sink = sink if sink is not None else FileSink(path)
        self._names = list(output_names)
        self.columns = csv_columns(
            self._names,
            include_input=include_input,
            include_response=include_response,
            include_cached=include_cached,
            include_cost=include_cost,
        )
        self._extra = [name for name in ("cached", "cost") if name in self.columns]
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
        line = result.to_dict()
        try:
            record = self._encode(self._values(line))
        except _NOT_STRICT:  # the rare line with NaN or a lone surrogate in it
            record = self._encode(self._values(json_safe(line)))
        self._sink.put(record)

    def _values(self, line: dict[str, Any]) -> list[str]:
        usage = line["usage"] or {}
        error = line["error"]
        output = line["output"]
        values = [_cell(line["key"])]
        values += [_cell(output.get(n)) for n in self._names]
        values += [_cell(usage.get(u)) for u in _USAGE]
        values += [
            _cell(error.get("status")) if error is not None else "",
            _cell(error.get("message")) if error is not None else "",
            _cell(line["attempts"]),
            _cell(line["latency_ms"]),
        ]
        if self._include_input:
            values.append(_cell(line.get("input")))
        if self._include_response:
            values.append(_cell(line.get("response")))
        values += [_cell(line.get(name)) for name in self._extra]
        return values

    def close(self) -> None:
        self._sink.close()


def open_writer(
    path: str,
    fmt: str,
    output_names: Sequence[str],
    *,
    include_input: bool = False,
    include_response: bool = False,
    include_cached: bool = False,
    include_cost: bool = False,
) -> ResultWriter:
    """A writer appending to ``path`` (``-`` = stdout) in format ``fmt``."""
    if fmt == "csv":
        return CsvWriter(
            path,
            output_names,
            include_input=include_input,
            include_response=include_response,
            include_cached=include_cached,
            include_cost=include_cost,
        )
    return JsonlWriter(path)
