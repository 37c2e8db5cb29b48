"""The sink protocol, and what preparing one found."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..results import BatchResult

__all__ = ["Prepared", "ResultSink"]


@dataclass(frozen=True)
class Prepared:
    """What a sink holds from an earlier run: the keys to leave out, and what was mended."""

    done: Collection[str]
    removed_failed: int = 0  # failed rows taken out to run again (``retry-failed``)
    torn_bytes: int = 0  # an unfinished last line cut off


class ResultSink(Protocol):
    """An output of a run, which is also its checkpoint."""

    def prepare(self, mode: str) -> Prepared:
        """Make the output ready for ``mode`` (checkpoint.MODES); what it already holds."""
        ...

    async def write(self, results: Sequence[BatchResult]) -> None:
        """Keep ``results`` (ready together); each is whole in the output when this returns."""
        ...

    async def aclose(self) -> None:
        """Finish the output (and release what `prepare` opened); safe after a failure."""
        ...
