"""Results into a database table: upserted in small transactions, the table the checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

from .._sql_writer import TableOutput, TableWriter
from ..results import BatchResult
from ._base import Prepared

__all__ = ["TableResults"]


class TableResults:
    """A `ResultSink` over a results table (created or checked by `prepare`)."""

    def __init__(
        self, target: TableOutput, output_names: Sequence[str], *, include_response: bool = False
    ) -> None:
        self.target = target
        self._names = list(output_names)
        self._include_response = include_response
        self._writer: TableWriter | None = None

    def prepare(self, mode: str) -> Prepared:
        checkpoint = self.target.prepare(mode)
        self._writer = TableWriter(
            self.target, self._names, include_response=self._include_response
        )
        return Prepared(checkpoint.done, checkpoint.removed_failed)

    async def write(self, results: Sequence[BatchResult]) -> None:
        writer = self._writer
        assert writer is not None, "prepare() first"
        for result in results:
            await writer.write(result)

    async def aclose(self) -> None:
        if self._writer is not None:
            await self._writer.aclose()  # closes the table's connections too
        else:
            self.target.close()
