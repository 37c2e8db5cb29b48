"""The input formats, each declared once: what every engine and the app ask.

A format is known by its name, the ``--input-format`` words for it, the suffixes of its
files (``.gz`` after any of them for a format read through gzip) and whether it is streamed.
A name is judged the same way wherever it is read (a local run, Ray, Spark, an upload): a
``.json`` file is one JSON document, not streamed input, so it is refused, and a suffix no
format has is refused too, never guessed.

>>> detect_format("tickets.ndjson.gz")
'jsonl'
>>> detect_format("tickets.txt", "JSONLines")
'jsonl'
>>> [entry["suffixes"] for entry in describe_formats() if entry["name"] == "csv"]
[['.csv', '.csv.gz']]
>>> file_picker_accept()
'.jsonl,.ndjson,.jsonlines,.csv,.parquet,.pq,.gz'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigurationError

__all__ = [
    "FORMATS",
    "INPUT_FORMATS",
    "InputFormat",
    "describe_formats",
    "detect_format",
    "file_picker_accept",
    "format_named",
    "format_of_name",
    "suffix_format",
]

_GZIP = ".gz"


@dataclass(frozen=True)
class InputFormat:
    """One input format: its name, how files of it are named, how it is read."""

    name: str
    # The suffixes of its files, lower case; the first is the one a message suggests.
    suffixes: tuple[str, ...]
    label: str  # how a message names it
    description: str
    # Other words ``--input-format`` takes for it.
    aliases: tuple[str, ...] = ()
    # Read row by row (Parquet by record batch); one that is not is refused, with `refusal`.
    streamed: bool = True
    # A ``.gz`` file of it is decompressed as it is read (Parquet compresses inside).
    gzip: bool = True
    # It can be read from stdin (``-``); Parquet needs its footer, at the end.
    stdin: bool = True
    # Found by looking into the files of another format (their first line), not by name.
    found_in: str | None = None
    # Why a format that is not streamed is refused, and the format to use instead.
    refusal: str = ""
    instead: str = ""

    @property
    def file_suffixes(self) -> tuple[str, ...]:
        """Every suffix its files may have: each of `suffixes`, and its ``.gz``."""
        if not self.gzip:
            return self.suffixes
        return tuple(s for suffix in self.suffixes for s in (suffix, suffix + _GZIP))


# The formats in the order messages name them. "openai-batch": the lines of an OpenAI batch
# file, JSON Lines whose first line has custom_id and body (`openai_batch_format`).
INPUT_FORMATS: tuple[InputFormat, ...] = (
    InputFormat(
        "jsonl",
        (".jsonl", ".ndjson", ".jsonlines"),
        "JSON Lines",
        "one JSON object per line",
        aliases=("ndjson", "jsonlines"),
    ),
    InputFormat("csv", (".csv",), "CSV", "a header row, then the rows"),
    InputFormat(
        "parquet",
        (".parquet", ".pq"),
        "Parquet",
        "read by record batch",
        gzip=False,
        stdin=False,
    ),
    InputFormat(
        "openai-batch",
        (),
        "OpenAI batch file",
        "JSON Lines of custom_id, method, url and body, as OpenAI's Batch API takes",
        found_in="jsonl",
    ),
    InputFormat(
        "json",
        (".json",),
        "JSON",
        "one JSON document",
        streamed=False,
        refusal="is read as one JSON document, but batch input is streamed; write one JSON "
        "object per line and name it .jsonl",
        instead="jsonl",
    ),
)

# The names ``--input-format`` takes (and the aliases of `format_named`).
FORMATS = tuple(f.name for f in INPUT_FORMATS if f.streamed)

_BY_NAME = {f.name: f for f in INPUT_FORMATS if f.streamed}
_BY_WORD = {**_BY_NAME, **{alias: f for f in _BY_NAME.values() for alias in f.aliases}}
_BY_SUFFIX = {suffix: f for f in INPUT_FORMATS for suffix in f.suffixes}


def format_named(given: str) -> InputFormat:
    """The format ``--input-format`` names (any case, or an alias such as ``ndjson``)."""
    found = _BY_WORD.get(given.lower())
    if found is None:
        raise ConfigurationError(
            f"unknown input format {given!r}; use one of {', '.join(FORMATS)}", field="input"
        )
    return found


def _suffix(name: str) -> str:
    return os.path.splitext(name.lower().removesuffix(_GZIP))[1]


def suffix_format(name: str) -> InputFormat | None:
    """The format whose suffix ends ``name`` (a ``.gz`` after it aside), streamed or not
    (``.json``); None for a suffix no format has, or none."""
    return _BY_SUFFIX.get(_suffix(name))


def _suggested() -> str:
    named = [f.suffixes[0] for f in INPUT_FORMATS if f.streamed and f.suffixes]
    return ", ".join(named[:-1]) + f" or {named[-1]}"


def format_of_name(path: str, *, input_format_option: bool = True) -> InputFormat:
    """The format a file's name says (a ``.gz`` after it aside); a name that says none, or
    one that is not streamed (``.json``), is refused.

    ``input_format_option``: whether the refusal may point at ``--input-format`` (the local
    engine has it; Ray and Spark judge by name alone).
    """
    suffix = _suffix(path)
    found = suffix_format(path)
    if found is not None and found.streamed:
        return found
    if found is not None:
        hint = f" (or pass --input-format {found.instead})" if input_format_option else ""
        raise ConfigurationError(f"{path}: a {suffix} file {found.refusal}{hint}", field="input")
    hint = ", or pass --input-format" if input_format_option else ""
    raise ConfigurationError(
        f"{path}: cannot tell the format from the name; use {_suggested()}{hint}",
        field="input",
    )


def detect_format(path: str, given: str | None = None) -> str:
    """The input format: ``given``, else from the file name; ``-`` (stdin) is JSON Lines."""
    if given:
        return format_named(given).name
    if path == "-":
        return "jsonl"
    return format_of_name(path).name


def describe_formats() -> list[dict[str, Any]]:
    """The formats an input may have, as JSON for a client (the web page's file picker).

    ``suffixes``: every name ending a file of it may have (``[]``: found by looking into
    the file, ``found_in`` names the format it looks like); ``stdin``: whether the command
    line reads it from ``-``.
    """
    return [
        {
            "name": f.name,
            "label": f.label,
            "description": f.description,
            "suffixes": list(f.file_suffixes),
            "aliases": list(f.aliases),
            "streamed": f.streamed,
            "gzip": f.gzip,
            "stdin": f.stdin,
            "found_in": f.found_in,
        }
        for f in INPUT_FORMATS
        if f.streamed
    ]


def file_picker_accept() -> str:
    """The ``accept`` attribute of a file picker offering every readable format.

    A browser matches a file by its last suffix only, so a gzipped file is offered by
    ``.gz`` (its inner suffix is checked when it is read).
    """
    offered = [s for f in INPUT_FORMATS if f.streamed for s in f.suffixes]
    if any(f.streamed and f.gzip and f.suffixes for f in INPUT_FORMATS):
        offered.append(_GZIP)
    return ",".join(offered)
