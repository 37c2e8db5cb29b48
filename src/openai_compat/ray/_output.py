"""The output directory of a Ray run: part files, written by the driver, read back to resume.

JSON Lines parts hold exactly the local run's result lines (written by the local writer, one
flushed line at a time; a torn last line is cut off on resume, as for a local output).
Parquet parts are written whole to a hidden temporary name and renamed, so a part is
either complete or absent. Each run adds its own parts; ``--resume`` reads the keys of all
of them (the rows to leave out: an anti-join on the key).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..batch.checkpoint import prepare_output
from ..batch.keys import key_token
from ..batch.results import BatchResult, BatchSummary
from ..batch.sinks.parts import PartLayout, prepare_parts
from ..batch.writers import JsonlWriter
from ._udf import KEY_COLUMN, LINE_COLUMN, UNKEYED_COLUMN
from ._unique import DUPLICATE_START

__all__ = ["PartWriter", "prepare_directory"]

_PART = "part-"
_FLUSH_ROWS = 5000


_LAYOUT = PartLayout(
    "Ray",
    {"jsonl": f"{_PART}*.jsonl", "parquet": f"{_PART}*.parquet"},
    # A part the driver did not finish: its rows are not in the output.
    unfinished=(f".{_PART}*.tmp",),
)


def prepare_directory(path: str, fmt: str, mode: str, key: str) -> set[str]:
    """Make the output directory ready for ``mode``; the key texts already written."""
    done: set[str] = set()
    for part in prepare_parts(path, fmt, mode, _LAYOUT):
        if fmt == "jsonl":
            checkpoint = prepare_output(str(part), "jsonl", "resume")
            done.update(checkpoint.done)
            checkpoint.close()
        else:
            table = pq.read_table(part, columns=[key])
            done.update(key_token(value) for value in table.column(key).to_pylist())
    return done


class PartWriter:
    """Writes the result blocks of one run into new part files; counts them as it goes."""

    def __init__(self, path: str, fmt: str, key: str, summary: BatchSummary) -> None:
        self.directory = Path(path)
        self.fmt = fmt
        self.key = key
        self.summary = summary
        self.run_id = uuid.uuid4().hex[:12]
        self.duplicates = 0
        self._seen: set[str] = set()
        self._jsonl: JsonlWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._parts = 0

    def write(self, block: pa.Table) -> None:
        """Write one block of results (the flat rows, or the ``lines`` form for JSON Lines)."""
        if self.fmt == "jsonl":
            self._write_lines(block)
        else:
            self._write_flat(block)

    def _fresh(self, tokens: Iterable[str | None]) -> list[bool]:
        # Every key once: a row Ray ran twice (a retried task) is written the first time only.
        # A row failed for its own key (missing, or another row's: None here) is always
        # written: it is not that key's result.
        keep = []
        for token in tokens:
            if token is None:
                keep.append(True)
                continue
            new = token not in self._seen
            self._seen.add(token)
            keep.append(new)
            self.duplicates += not new
        return keep

    def _write_lines(self, block: pa.Table) -> None:
        if self._jsonl is None:
            self._jsonl = JsonlWriter(str(self.directory / f"{_PART}{self.run_id}.jsonl"))
        keys = block.column(KEY_COLUMN).to_pylist()
        lines = block.column(LINE_COLUMN).to_pylist()
        if UNKEYED_COLUMN in block.column_names:
            unkeyed = block.column(UNKEYED_COLUMN).to_pylist()
            keys = [None if own else k for k, own in zip(keys, unkeyed, strict=True)]
        for keep, line in zip(self._fresh(keys), lines, strict=True):
            if keep:
                result = BatchResult.from_dict(json.loads(line))
                self._jsonl.write(result)
                self.summary.add(result)

    def _write_flat(self, block: pa.Table) -> None:
        messages = block.column("error_message").to_pylist()
        tokens = [
            None
            if value is None or value == "" or (m is not None and m.startswith(DUPLICATE_START))
            else key_token(value)
            for value, m in zip(block.column(self.key).to_pylist(), messages, strict=True)
        ]
        keep = self._fresh(tokens)
        if not all(keep):
            block = block.filter(pa.array(keep))
        self._count(block)
        self._pending.append(block)
        self._pending_rows += block.num_rows
        if self._pending_rows >= _FLUSH_ROWS:
            self.flush()

    def _count(self, block: pa.Table) -> None:
        s = self.summary
        ok = block.column("error_message").null_count  # null: the row succeeded
        s.ok += ok
        s.failed += block.num_rows - ok
        s.requests += _total(block, "attempts")
        s.prompt_tokens += _total(block, "prompt_tokens")
        s.completion_tokens += _total(block, "completion_tokens")
        s.total_tokens += _total(block, "total_tokens")

    def flush(self) -> None:
        """Write the blocks held so far as one part file (whole, then renamed into place)."""
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        self._parts += 1
        name = f"{_PART}{self.run_id}-{self._parts:05d}.parquet"
        temporary = self.directory / f".{name}.tmp"
        pq.write_table(table, temporary)
        os.replace(temporary, self.directory / name)

    def close(self) -> None:
        self.flush()
        if self._jsonl is not None:
            self._jsonl.close()


def _total(block: pa.Table, column: str) -> int:
    import pyarrow.compute as pc

    value: Any = pc.sum(block.column(column)).as_py()
    return int(value or 0)
