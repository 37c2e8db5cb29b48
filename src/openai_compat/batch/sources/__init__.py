"""Where a batch run's rows come from: one table of input formats, and their files.

`formats` declares each input format once (its name, its suffixes and their ``.gz``, the
``--input-format`` words for it, whether it is streamed) and judges a file's name by it;
every engine asks it: a local run, Ray and Spark (which read with their own readers, in
the format it names), and the app (an upload's name, the file picker's list). `files`
reads a file's rows as a stream, its columns and its count, and judges a directory or glob
by the files it holds; `threaded` hands rows to the event loop from a thread. Databases
(`openai_compat.batch._sql_reader`) and OpenAI batch files
(`openai_compat.batch.openai_batch_format`, format "openai-batch", found in JSON Lines)
are the other sources.
"""

from __future__ import annotations

from .files import (
    RowSource,
    UnreadableRow,
    count_rows,
    format_of_input,
    open_rows,
    probe_columns,
)
from .formats import (
    FORMATS,
    INPUT_FORMATS,
    InputFormat,
    describe_formats,
    detect_format,
    file_picker_accept,
    format_named,
    format_of_name,
    suffix_format,
)
from .threaded import read_in_thread

__all__ = [
    "FORMATS",
    "INPUT_FORMATS",
    "InputFormat",
    "RowSource",
    "UnreadableRow",
    "count_rows",
    "describe_formats",
    "detect_format",
    "file_picker_accept",
    "format_named",
    "format_of_input",
    "format_of_name",
    "open_rows",
    "probe_columns",
    "read_in_thread",
    "suffix_format",
]
