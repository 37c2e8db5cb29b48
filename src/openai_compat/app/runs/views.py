"""What the API shows of runs and uploads: their views, their progress events, a page of
results, and the downloads (JSON Lines exactly the CLI's output; CSV the CLI's, safe to
open in a spreadsheet).

A result is stored as the CLI's JSON Lines line; a page or a download is made of those
lines as they are (a CSV download writes them through the CLI's own ``CsvWriter``, each
cell that a spreadsheet would run as a formula prefixed with ``'``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ...batch.results import BatchResult
from ...batch.writers import CsvWriter
from .store import RunStore
from .stored import StoredRun
from .tables import FINAL_STATUSES

__all__ = [
    "csv_chunks",
    "event",
    "jsonl_chunks",
    "results_page",
    "run_view",
    "spreadsheet_safe",
    "upload_view",
]


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes: they were written in UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    aware = _aware(value)
    return aware.isoformat() if aware is not None else None


def upload_view(row: Any) -> dict[str, Any]:
    """An upload as the API shows it."""
    return {
        "id": row.id,
        "filename": row.filename,
        "format": row.format,
        "compressed": row.compressed,
        "size_bytes": row.size_bytes,
        "rows_estimate": row.rows_estimate,
        "columns": list(row.columns),
        "sample": list(row.sample),
        "created_at": _iso(row.created_at),
    }


def _structured_counts(row: Any, stored: StoredRun) -> dict[str, Any] | None:
    """A run with a schema: the mode it asks in (None until a row said) and its rows by how
    their answer validated (the summary line's ``schema``); None without a schema."""
    if stored.schema is None:
        return None
    return {
        "mode": row.schema_mode,
        "valid_first": int(row.schema_valid_first),
        "valid_after_reasks": int(row.schema_valid_reasked),
        "invalid": int(row.schema_invalid),
    }


def run_view(row: Any) -> dict[str, Any]:
    """A run as the API shows it: what it runs, its status and its figures."""
    done = int(row.ok) + int(row.failed)
    live = dict(row.live or {})
    running = row.status == "running"
    rows_per_s: float | None
    if running and live.get("rows_per_s") is not None:
        rows_per_s = float(live["rows_per_s"])
    else:
        rows_per_s = round(done / row.active_s, 2) if row.active_s > 0 else None
    eta_s: float | None = None
    if row.total is not None and rows_per_s:
        eta_s = round(max(0, int(row.total) - done - int(row.skipped)) / rows_per_s, 1)
    if row.status in FINAL_STATUSES and row.status != "cancelled":
        eta_s = 0.0 if row.status == "succeeded" else None
    stored = StoredRun.model_validate(row.spec)
    return {
        "id": row.id,
        "connector_id": row.connector_id,
        "status": row.status,
        "input": stored.input,
        "mapping": stored.mapping,
        "outputs": stored.outputs,
        "key": stored.key,
        "concurrency": stored.concurrency,
        "rate": stored.rate,
        "token_rate": stored.token_rate,
        "max_concurrency": stored.max_concurrency,
        "prices": stored.prices,
        "max_cost": stored.max_cost,
        "max_tokens": stored.max_tokens,
        "placeholders": stored.placeholders,
        "schema": stored.schema,
        "schema_mode": stored.schema_mode,
        "reasks": stored.reasks,
        "structured": _structured_counts(row, stored),
        "output_names": list(row.output_names),
        "total": row.total,
        "done": done,
        "ok": row.ok,
        "failed": row.failed,
        "skipped": row.skipped,
        "requests": row.requests,
        "tokens": row.total_tokens,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cost": row.cost,
        "rows_per_s": rows_per_s,
        "eta_s": eta_s,
        "live": live,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "updated_at": _iso(row.updated_at),
        "error": row.error,
    }


def event(name: str, data: Any) -> bytes:
    """One server-sent event of a run's events stream."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {text}\n\n".encode()


def results_page(page: list[tuple[int, str]], next_cursor: str | None) -> bytes:
    """A page of stored result lines as the API's JSON ``{"data", "next_cursor"}``."""
    return b'{"data":[%s],"next_cursor":%s}' % (
        ",".join(line for _, line in page).encode("utf-8"),
        json.dumps(next_cursor).encode("ascii"),
    )


class _Chunks:
    """A `CsvWriter` sink collecting what it is given, taken out chunk by chunk."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.empty = True

    def put(self, data: bytes) -> None:
        self.parts.append(data)
        self.empty = False

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data

    def close(self) -> None:
        pass


# A cell a spreadsheet would read as a formula (OWASP's CSV injection): one starting with
# = + - @, a tab or a carriage return. A plain number (-3, +1.5e3) is a number, not one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_QUOTES = (",", '"', "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it but never runs it: a formula gets a leading ``'``.

    >>> spreadsheet_safe("=1+1"), spreadsheet_safe("@SUM(A1)"), spreadsheet_safe("-3")
    ("'=1+1", "'@SUM(A1)", '-3')
    """
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


class _SpreadsheetCsv(CsvWriter):
    """The CLI's CSV with every cell (the header too) made `spreadsheet_safe`: a download is
    opened in a spreadsheet; the CLI's file is data and stays exact."""

    @staticmethod
    def _encode(values: Sequence[str]) -> bytes:
        # Quoted by hand: Python's csv writer leaves a bare CR unquoted when the line end is
        # "\n", and a reader then splits the record there.
        return (",".join(_quoted(spreadsheet_safe(value)) for value in values) + "\n").encode()


def _quoted(cell: str) -> str:
    if any(c in cell for c in _NEEDS_QUOTES):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def jsonl_chunks(store: RunStore, run_id: int) -> Iterator[bytes]:
    """The JSON Lines download of a run's results, a chunk at a time (blocking)."""
    for lines in store.iter_lines(run_id):
        yield ("\n".join(lines) + "\n").encode("utf-8")


def csv_chunks(store: RunStore, run_id: int, names: list[str]) -> Iterator[bytes]:
    """The CSV download of a run's results (``names``: its outputs), a chunk at a time
    (blocking)."""
    sink = _Chunks()
    writer = _SpreadsheetCsv("", names, sink=sink)
    yield sink.take()
    for lines in store.iter_lines(run_id):
        for line in lines:
            writer.write(BatchResult.from_dict(json.loads(line)))
        yield sink.take()
