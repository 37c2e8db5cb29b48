"""What a batch run produces: one `BatchResult` per row, and a `BatchSummary` of the run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchResult", "BatchSummary"]

_NOT_SET: Any = object()


@dataclass(slots=True)
class BatchResult:
    """The result of one row; ``to_dict()`` is the output line.

    ``key`` is the ``--key`` column's value (else the row's 0-based index), ``error`` is
    None or ``{"status": HTTP status or None, "message": ...}``. ``input`` / ``response``
    are only written when asked for.
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
        return line


def _tokens(usage: dict[str, Any] | None, name: str) -> int:
    if not usage:
        return 0
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(slots=True)
class BatchSummary:
    """Counts of a run, updated live while it runs.

    ``skipped`` rows were already in the output (resume); ``other_shards`` belong to other
    shards; ``requests`` counts HTTP attempts, retries included.
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
        usage = result.usage
        if usage:
            self.prompt_tokens += _tokens(usage, "prompt_tokens")
            self.completion_tokens += _tokens(usage, "completion_tokens")
            self.total_tokens += _tokens(usage, "total_tokens")

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
        text = (
            ", ".join(parts)
            + f"; {self.total_tokens} tokens; {self.wall_s:.1f} s wall ({rate:.1f} rows/s)"
        )
        return text + (" - interrupted, run again with --resume" if self.interrupted else "")
