"""Results into a file: JSON Lines, CSV, or OpenAI's batch output (with its error file)."""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import ConfigurationError
from .. import openai_batch_format
from ..checkpoint import Checkpoint, prepare_output
from ..results import BatchResult
from ..writers import JsonlWriter, ResultWriter, csv_columns, open_writer
from ._base import Prepared

__all__ = ["FileResults"]


class FileResults:
    """A `ResultSink` over an output file (``-`` = stdout) in format ``fmt``."""

    def __init__(
        self,
        path: str,
        fmt: str,
        output_names: Sequence[str],
        *,
        include_input: bool = False,
        include_response: bool = False,
        include_cached: bool = False,
        include_cost: bool = False,
        error_path: str | None = None,
    ) -> None:
        if error_path is not None and fmt != openai_batch_format.FORMAT:
            raise ConfigurationError(
                "--error-file goes with --output-format openai-batch (other formats write "
                "failed rows inline)",
                field="error_file",
            )
        self.path = path
        self.fmt = fmt
        self.error_path = error_path
        self._names = list(output_names)
        self._columns = {
            "include_input": include_input,
            "include_response": include_response,
            "include_cached": include_cached,
            "include_cost": include_cost,
        }
        self._checkpoint: Checkpoint | None = None
        self._writer: ResultWriter | None = None

    def prepare(self, mode: str) -> Prepared:
        if self.fmt == openai_batch_format.FORMAT:
            checkpoint = openai_batch_format.prepare_output(self.path, mode, self.error_path)
            writer: ResultWriter = openai_batch_format.OpenAIBatchWriter(self.path, self.error_path)
        else:
            columns = csv_columns(self._names, **self._columns)
            checkpoint = prepare_output(self.path, self.fmt, mode, csv_columns=columns)
            writer = open_writer(self.path, self.fmt, self._names, **self._columns)
        self._checkpoint, self._writer = checkpoint, writer
        return Prepared(checkpoint.done, checkpoint.removed_failed, checkpoint.torn_bytes)

    async def write(self, results: Sequence[BatchResult]) -> None:
        writer = self._writer
        assert writer is not None, "prepare() first"
        # The results ready at once go to the OS in one write (JSON Lines): one system
        # call for all, and still each line whole before it is reported.
        if isinstance(writer, JsonlWriter):
            writer.write_many(results)
        else:
            for result in results:
                writer.write(result)

    async def aclose(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            if self._checkpoint is not None:
                self._checkpoint.close()
