"""Results into a Parquet file, written whole when the run ends (Parquet cannot be appended).

The rows go to a hidden temporary file beside the output (``.NAME.<id>.tmp``) and the file
is renamed over the output when the run ends, stopped or not: the output is always either
the previous file or the new one, never half a file. ``--resume`` and ``--retry-failed``
read the previous file back (its keys are left out; failed rows dropped to run again) and
copy its rows into the new file first. A process killed before the end leaves the previous
file as it was, so the rows of that session are sent again on ``--resume``; long runs that
must survive a kill write JSON Lines, whose every line is kept as it is written.

The columns are the flat result row every column engine writes (`results.flat_columns`)
after a text ``key``, then ``input`` (JSON text), ``cached`` and ``cost`` when the run has
them. pyarrow is imported only here, for a run that writes Parquet.
"""

from __future__ import annotations

import glob
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..._strict_json import json_safe
from ...errors import ConfigurationError
from ..checkpoint import MODES
from ..keys import key_token
from ..results import BatchResult
from ._base import Prepared

__all__ = ["ParquetResults", "require_pyarrow"]

# Results are held until this many make one row group (few, large groups read fast).
_ROW_GROUP = 5000


def require_pyarrow(path: str) -> None:
    """Refuse a Parquet output pyarrow cannot write, or that cannot be a file, before any
    row is sent."""
    if path == "-":
        raise ConfigurationError(
            "Parquet cannot be written to stdout (a Parquet file ends with its index); "
            "name an output file, or write JSON Lines to stdout",
            field="output",
        )
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"writing {path} as Parquet needs pyarrow: pip install 'openai-compat[parquet]', "
            "or name the output .jsonl or .csv",
            field="output",
        ) from None


class ParquetResults:
    """A `ResultSink` over a Parquet output file."""

    def __init__(
        self,
        path: str,
        output_names: Sequence[str],
        *,
        include_input: bool = False,
        include_response: bool = False,
        include_cached: bool = False,
        include_cost: bool = False,
        types: Mapping[str, Any] | None = None,
    ) -> None:
        require_pyarrow(path)
        import pyarrow as pa

        self.path = path
        self._names = list(output_names)
        self._include_input = include_input
        self._include_response = include_response
        self._types = dict(types or {})
        self._extra = [
            name for name, wanted in (("cached", include_cached), ("cost", include_cost)) if wanted
        ]
        from ..arrow import result_schema  # pyarrow's: loaded once pyarrow is known to be here

        # The flat result row in the same Arrow types as Ray's and Spark's part files.
        fields = [pa.field("key", pa.large_string())]
        fields += list(
            result_schema(self._names, include_response=include_response, types=self._types)
        )
        if include_input:
            fields.append(pa.field("input", pa.large_string()))
        if include_cached:
            fields.append(pa.field("cached", pa.bool_()))
        if include_cost:
            fields.append(pa.field("cost", pa.float64()))
        self.schema = pa.schema(fields)
        directory, name = os.path.split(os.path.abspath(path))
        self._temporary_glob = os.path.join(glob.escape(directory), f".{glob.escape(name)}.*.tmp")
        self._temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
        self._writer: Any = None
        self._pending: list[dict[str, Any]] = []
        self._rows = 0
        self._mode = "new"

    def prepare(self, mode: str) -> Prepared:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self._mode = mode
        path = self.path
        if os.path.isdir(path):
            raise ConfigurationError(f"{path} is a directory", field="output")
        has_results = os.path.exists(path) and os.path.getsize(path) > 0
        if has_results and mode == "new":
            raise ConfigurationError(
                f"{path} already has results: pass --resume to finish that run, --retry-failed "
                "to also run its failed rows again, or --overwrite to start over",
                field="output",
            )
        kept = self._read_back() if has_results and mode != "overwrite" else None
        removed = 0
        if kept is not None and mode == "retry-failed":
            import pyarrow.compute as pc

            ok = pc.is_null(kept.column("error_message"))
            removed = kept.num_rows - pc.sum(ok.cast("int64")).as_py()
            kept = kept.filter(ok)
        # A temporary file a killed run left behind holds nothing that can be read.
        for stale in glob.glob(self._temporary_glob):
            os.remove(stale)
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self._temporary, self.schema)
        done: set[str] = set()
        if kept is not None and kept.num_rows:
            self._writer.write_table(kept)
            self._rows += kept.num_rows
            done.update(kept.column("key").to_pylist())
        return Prepared(done, removed)

    def _read_back(self) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise ConfigurationError(
                f"{self.path} is not a Parquet file ({exc}); pass --overwrite to start over, or "
                "name another output",
                field="output",
            ) from None
        if not table.schema.equals(self.schema):
            raise ConfigurationError(
                f"{self.path} holds results with other columns "
                f"({', '.join(table.schema.names)}) than this run writes "
                f"({', '.join(self.schema.names)}): run with the same outputs and --include-* "
                "options, or pass --overwrite to start over",
                field="output",
            )
        return table

    async def write(self, results: Sequence[BatchResult]) -> None:
        assert self._writer is not None, "prepare() first"
        self._pending.extend(self._row(result) for result in results)
        if len(self._pending) >= _ROW_GROUP:
            self._flush(self._writer)

    def _row(self, result: BatchResult) -> dict[str, Any]:
        row: dict[str, Any] = {"key": key_token(result.key)}
        row.update(
            result.to_flat(self._names, include_response=self._include_response, types=self._types)
        )
        line = result.to_dict()
        if self._include_input:
            value = line.get("input")
            row["input"] = None if value is None else _json_text(value)
        for name in self._extra:
            row[name] = line.get(name)
        return row

    def _flush(self, writer: Any) -> None:
        if not self._pending:
            return
        import pyarrow as pa

        rows, self._pending = self._pending, []
        writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
        self._rows += len(rows)

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            self._flush(writer)
        finally:
            writer.close()
        if self._rows == 0:
            # Nothing to keep: no file (an empty Parquet file would still have a schema and
            # a size, and a new run would take it for results); --overwrite starts over.
            os.remove(self._temporary)
            if self._mode == "overwrite" and os.path.exists(self.path):
                os.remove(self.path)
            return
        # Whole, then renamed: the output is the previous file or this one, never a part.
        os.replace(self._temporary, self.path)


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return json.dumps(json_safe(value), ensure_ascii=False, separators=(",", ":"))
