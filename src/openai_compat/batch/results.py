"""What a batch run produces: one `BatchResult` per row, and a `BatchSummary` of the run.

Where results are columns (Ray, Spark, SQL tables) a result is the *flat row* of
`BatchResult.to_flat`, with the columns of `flat_columns`: defined here once for every engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..apis import Usage
from ..mapping import VectorName
from .budget import usd

__all__ = ["FLAT_RESULT_COLUMNS", "RESPONSE_COLUMN", "BatchResult", "BatchSummary", "flat_columns"]

_NOT_SET: Any = object()
_NO_USAGE = Usage()

# The columns every flat result row has after the input columns and the outputs, with their
# kind: ``text``, ``integer`` or ``decimal`` (each engine maps a kind to its own type). Every
# column may be null; outputs are ``text`` (a value that is not text is its JSON spelling,
# as in CSV output), so every block of results has the same schema, even one where all failed.
FLAT_RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("error_status", "integer"),
    ("error_message", "text"),
    ("attempts", "integer"),
    ("latency_ms", "decimal"),
    ("prompt_tokens", "integer"),
    ("completion_tokens", "integer"),
    ("total_tokens", "integer"),
)
# The whole answer as JSON text, when asked for (the name Ray's own HTTP processor uses).
RESPONSE_COLUMN = "http_response"


def _kind(name: str) -> str:
    return "vector" if isinstance(name, VectorName) else "text"


def flat_columns(
    output_names: Sequence[str],
    *,
    include_response: bool = False,
    types: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """The result columns of a flat row (after the input columns) and their kinds.

    >>> [name for name, _ in flat_columns(["summary"])][:3]
    ['summary', 'error_status', 'error_message']
    """
    # With a schema, ``types`` (`openai_compat.structured.ColumnType` by output name) gives
    # an output its kind: also ``boolean``, ``list``, ``struct`` or ``json``. A vector
    # output (`VectorName`) is a column of its own kind: a list of float32.
    typed = types or {}
    columns = [(name, typed[name].kind if name in typed else _kind(name)) for name in output_names]
    columns += FLAT_RESULT_COLUMNS
    if include_response:
        columns.append((RESPONSE_COLUMN, "text"))
    return columns


def _flat_text(value: Any) -> str | None:
    from ..mapping import as_text

    return None if value is None else as_text(value, compact=True)


def _flat_vector(value: Any) -> list[float] | None:
    """A vector as a list of floats; anything else (a failed row's None) as None."""
    if isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return [float(v) for v in value]
    return None


def typed_value(value: Any, kind: str) -> Any:
    """An output's value in a typed column of ``kind``: lists and structs as they are (each
    engine writes them its way), ``json`` as JSON text, whole numbers of an integer column
    as ints. A value of the wrong type (an output read from a row that failed) is None.

    A ``json`` value is always JSON text, a string too (quoted): the column of a union of
    a string and a number must tell ``"5"`` from ``5``, and a database's JSON column
    refuses bare text.

    >>> typed_value(3.0, "integer"), typed_value(2, "decimal"), typed_value({"a": 1}, "json")
    (3, 2.0, '{"a":1}')
    >>> typed_value("5", "json"), typed_value(5, "json")
    ('"5"', '5')
    """
    if value is None:
        return None
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if kind == "text":
        return value if isinstance(value, str) else _flat_text(value)
    if kind == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "decimal":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "list":
        return value if isinstance(value, list) else None
    return value if isinstance(value, dict) else None


@dataclass(slots=True)
class BatchResult:
    """The result of one row; ``to_dict()`` is the output line.

    ``key`` is the ``--key`` column's value (else the row's 0-based index), ``error`` is
    None or ``{"status": HTTP status or None, "message": ...}``. ``input`` / ``response``
    are only written when asked for; ``cached`` (True: the answer came from the response
    cache) only in a run with a cache, ``cost`` (USD) only in a run with prices.
    ``request_id`` is the endpoint's, kept for the OpenAI batch output (not in the line).
    """

    key: str | int
    index: int
    output: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    latency_ms: float = 0.0
    input: Any = _NOT_SET
    response: Any = _NOT_SET
    request_id: str | None = None
    cached: bool | None = None
    cost: Any = _NOT_SET
    # With a schema: {"mode", "answers", "valid"} (written as the line's "schema").
    schema: dict[str, Any] | None = None

    @property
    def has_cost(self) -> bool:
        """True when ``cost`` was set (it is then written; None: no price applied)."""
        return self.cost is not _NOT_SET

    @property
    def has_response(self) -> bool:
        """True when ``response`` was set (it is then written)."""
        return self.response is not _NOT_SET

    @property
    def ok(self) -> bool:
        """True when the row succeeded."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The result line: key, output, usage, error, attempts, latency_ms (+ input, response)."""
        line: dict[str, Any] = {
            "key": self.key,
            "output": self.output,
            "usage": self.usage,
            "error": self.error,
            "attempts": self.attempts,
            "latency_ms": self.latency_ms,
        }
        if self.input is not _NOT_SET:
            line["input"] = self.input
        if self.response is not _NOT_SET:
            line["response"] = self.response
        if self.cached is not None:
            line["cached"] = self.cached
        if self.cost is not _NOT_SET:
            line["cost"] = self.cost
        if self.schema is not None:
            line["schema"] = self.schema
        return line

    @classmethod
    def from_dict(cls, line: Mapping[str, Any], index: int = 0) -> BatchResult:
        """A result back from its line (``to_dict()``), e.g. after crossing processes.

        >>> line = BatchResult(key="t-1", index=0, attempts=1).to_dict()
        >>> BatchResult.from_dict(line).to_dict() == line
        True
        """
        result = cls(
            key=line["key"],
            index=index,
            output=dict(line.get("output") or {}),
            usage=line.get("usage"),
            error=line.get("error"),
            attempts=line.get("attempts", 0),
            latency_ms=line.get("latency_ms", 0.0),
        )
        if "input" in line:
            result.input = line["input"]
        if "response" in line:
            result.response = line["response"]
        if "cached" in line:
            result.cached = line["cached"]
        if "cost" in line:
            result.cost = line["cost"]
        if "schema" in line:
            result.schema = line["schema"]
        return result

    def to_flat(
        self,
        output_names: Sequence[str],
        *,
        include_response: bool = False,
        types: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The result columns of the flat row, as `flat_columns` names them (inputs apart).

        >>> r = BatchResult(key=1, index=0, output={"n": 3}, usage={"total_tokens": 5})
        >>> flat = r.to_flat(["n"])
        >>> flat["n"], flat["total_tokens"], flat["error_status"]
        ('3', 5, None)
        """
        error = self.error or {}
        typed = types or {}
        flat: dict[str, Any] = {
            name: typed_value(self.output.get(name), typed[name].kind)
            if name in typed
            else (_flat_vector if isinstance(name, VectorName) else _flat_text)(
                self.output.get(name)
            )
            for name in output_names
        }
        flat["error_status"] = error.get("status")
        flat["error_message"] = error.get("message") if self.error is not None else None
        flat["attempts"] = self.attempts
        flat["latency_ms"] = float(self.latency_ms)
        counts = Usage.parse(self.usage) or _NO_USAGE
        flat["prompt_tokens"] = counts.input
        flat["completion_tokens"] = counts.output
        flat["total_tokens"] = counts.total
        if include_response:
            response = self.response if self.has_response else None
            flat[RESPONSE_COLUMN] = (
                None
                if response is None
                else json.dumps(response, ensure_ascii=False, separators=(",", ":"))
            )
        return flat


@dataclass(slots=True)
class BatchSummary:
    """Counts of a run, updated live while it runs.

    ``skipped`` rows were already in the output (resume); ``other_shards`` belong to other
    shards; ``requests`` counts HTTP attempts, retries included. ``cached`` rows were
    answered from the response cache; ``cost`` is the USD spent (None: no prices given);
    ``budget_spent`` says what ran out when the budget stopped the run.
    """

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    other_shards: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    cached: int = 0
    cost: float | None = None
    budget_spent: str | None = None
    # With a schema: the mode asked in, and rows by how their answer validated.
    schema_mode: str | None = None
    valid_first: int = 0
    valid_reasked: int = 0
    invalid: int = 0
    # The adaptive concurrency limit now (``concurrency="auto"``); None: a fixed one.
    concurrency_limit: int | None = field(default=None, repr=False)
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def done(self) -> int:
        """Rows finished in this run (ok + failed)."""
        return self.ok + self.failed

    def add(self, result: BatchResult) -> None:
        """Count one finished row."""
        if result.error is None:
            self.ok += 1
        else:
            self.failed += 1
        self.requests += result.attempts
        if result.cached:
            self.cached += 1
        if result.schema is not None:
            self._count_schema(result.schema)
        if self.cost is not None and isinstance(result.cost, int | float):
            # Exactly: ten $0.10 rows cost $1.00, not $0.9999999999999999.
            self.cost = float(usd(self.cost) + usd(result.cost))
        # A cached answer's usage was paid for by an earlier run: not counted again.
        counts = None if result.cached else Usage.parse(result.usage)
        if counts is not None:
            self.prompt_tokens += counts.input or 0
            self.completion_tokens += counts.output or 0
            self.total_tokens += counts.total or 0

    def _count_schema(self, schema: Mapping[str, Any]) -> None:
        self.schema_mode = schema.get("mode") or self.schema_mode
        if not schema.get("valid"):
            self.invalid += 1
        elif schema.get("answers", 1) > 1:
            self.valid_reasked += 1
        else:
            self.valid_first += 1

    def finish(self) -> None:
        """Stamp the wall time."""
        self.wall_s = time.perf_counter() - self.started

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return {
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "other_shards": self.other_shards,
            "requests": self.requests,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.total_tokens,
            },
            "wall_s": round(self.wall_s, 3),
            "interrupted": self.interrupted,
            "cached": self.cached,
            "cost": None if self.cost is None else round(self.cost, 6),
            "budget_spent": self.budget_spent,
            **self._schema_dict(),
        }

    def _schema_dict(self) -> dict[str, Any]:
        if self.schema_mode is None:
            return {}
        return {
            "schema": {
                "mode": self.schema_mode,
                "valid_first": self.valid_first,
                "valid_after_reasks": self.valid_reasked,
                "invalid": self.invalid,
            }
        }

    def __str__(self) -> str:
        rate = self.done / self.wall_s if self.wall_s > 0 else 0.0
        parts = [
            f"{self.ok} ok",
            f"{self.failed} failed",
            f"{self.skipped} skipped",
        ]
        if self.other_shards:
            parts.append(f"{self.other_shards} in other shards")
        if self.cached:
            parts.append(f"{self.cached} from the cache")
        text = ", ".join(parts) + f"; {self.total_tokens} tokens"
        if self.cost is not None:
            text += f"; ${self.cost:.4f}"
        if self.schema_mode is not None:
            text += (
                f"; schema mode {self.schema_mode}: {self.valid_first} valid first, "
                f"{self.valid_reasked} after re-asks, {self.invalid} invalid"
            )
        text += f"; {self.wall_s:.1f} s wall ({rate:.1f} rows/s)"
        if self.budget_spent:
            return text + f" - stopped: {self.budget_spent}; --resume runs the rest"
        return text + (" - interrupted, run again with --resume" if self.interrupted else "")
