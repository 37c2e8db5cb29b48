"""A directory of part files, the output of a cluster engine's run, made ready per mode.

Ray's driver and Spark's tasks write a run's results as part files into one directory,
each run adding its own. Before a run the directory is made ready the same way for both:
a file where the directory should be is refused, and so are results of the other format;
``new`` refuses a directory that holds results, ``overwrite`` removes them, ``resume``
keeps them (the engine then leaves their keys out). What a killed run left unfinished is
removed first: its rows are not in the output, so they run again.

>>> import tempfile, pathlib
>>> layout = PartLayout("Ray", {"jsonl": "part-*.jsonl", "parquet": "part-*.parquet"})
>>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
>>> prepare_parts(out, "jsonl", "new", layout)
[]
>>> _ = (out / "part-1.jsonl").write_text("{}")
>>> prepare_parts(out, "jsonl", "new", layout)
Traceback (most recent call last):
openai_compat.errors.ConfigurationError: output: ... already holds results: --resume \
finishes that run, --overwrite starts again
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigurationError

__all__ = ["PartLayout", "prepare_parts"]


@dataclass(frozen=True)
class PartLayout:
    """How an engine names its parts: ``patterns`` maps a format to the glob of a finished
    part; ``unfinished`` are the globs of what a killed run leaves (files or directories);
    ``create``: the directory is made here (Ray's driver writes into it), or left to the
    engine's own writer (Spark's, which reports what stops it from the job)."""

    engine: str
    patterns: Mapping[str, str]
    unfinished: tuple[str, ...] = ()
    create: bool = True


def prepare_parts(
    path: str | os.PathLike[str], fmt: str, mode: str, layout: PartLayout
) -> list[Path]:
    """Make the directory ``path`` ready for a run in ``mode`` writing ``fmt`` parts
    (created when missing, if the layout says so); the finished parts it holds from earlier
    runs (none after ``overwrite``)."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ConfigurationError(
            f"{os.fspath(path)} is a file: a {layout.engine} run writes a directory of part files",
            field="output",
        )
    if layout.create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create {os.fspath(path)}: {exc.strerror or exc}", field="output"
            ) from None
    elif not directory.is_dir():
        return []
    for pattern in layout.unfinished:
        for stale in directory.glob(pattern):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
    for other, pattern in layout.patterns.items():
        if other != fmt and any(p.is_file() for p in directory.glob(pattern)):
            raise ConfigurationError(
                f"{os.fspath(path)} holds {other} results: use the same --output-format, or "
                "another --output",
                field="output",
            )
    parts = sorted(p for p in directory.glob(layout.patterns[fmt]) if p.is_file())
    if mode == "new" and parts:
        raise ConfigurationError(
            f"{os.fspath(path)} already holds results: --resume finishes that run, "
            "--overwrite starts again",
            field="output",
        )
    if mode == "overwrite":
        for part in parts:
            part.unlink()
        return []
    return parts
