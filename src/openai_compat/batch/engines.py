"""The engines a batch run can use, what each can honour, and how each is started.

One table (`ENGINES`) says what every engine takes; ``openai-compat batch --engine NAME``
refuses, from it alone, an option the engine cannot honour, with one message per option
kind. The cluster engines are named by module (``openai_compat.ray.cli:run_on_ray``) and
imported only when chosen: this package sits below them, and their heavy libraries (Ray,
pyspark) load only for a run that uses them.

>>> ENGINES["spark"].cost_options
('--cache',)
>>> ENGINES["ray"].output_formats
('parquet', 'jsonl')
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, OpenAICompatError
from .spec import RunSpec

__all__ = ["COST_OPTIONS", "ENGINES", "ClusterJob", "Engine", "EngineJobError"]

# The options that need the local engine's accounting, in the order messages name them.
COST_OPTIONS = ("--cache", "--price(s)", "--max-cost", "--max-tokens", "--error-file")
# The local-only options a cluster engine refuses, each with its argparse name.
_LOCAL_FLAGS = (
    ("--shard", "shard"),
    ("--retry-failed", "retry_failed"),
    ("--input-format", "input_format"),
)


# The formats an output's name says (the local engine's `writers.detect_output_format` too).
_NAMED_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class EngineJobError(OpenAICompatError):
    """The engine's job failed (Spark's: its output, an executor); the message names why."""


@dataclass(frozen=True)
class ClusterJob:
    """A cluster engine's run as its command line asked for it, checked before any cluster
    starts: the format of its part files, the run's spec, and what to do with a directory
    holding results already (``new``, ``overwrite`` or ``resume``)."""

    output_format: str
    spec: RunSpec
    mode: str


@dataclass(frozen=True)
class Engine:
    """What one engine can honour, and where its runner lives.

    ``cost_options`` are the `COST_OPTIONS` it takes; ``output_formats`` None means any
    format of a local run (chosen by the output's name).
    """

    name: str
    runner: str | None = None  # "module:function"; None for the local engine
    needs: str = ""  # the library a missing install is named by
    extra: str = ""  # the pip extra that installs it
    cost_options: tuple[str, ...] = COST_OPTIONS
    databases: bool = True
    stdin: bool = True
    local_flags: bool = True
    needs_key: bool = False
    output_formats: tuple[str, ...] | None = None

    def check(
        self,
        args: argparse.Namespace,
        *,
        cost: Mapping[str, Any] | None = None,
        database: bool = False,
    ) -> None:
        """Refuse what this engine cannot do with ``args`` (a `ConfigurationError`).

        ``cost`` holds the cost options given (cache, prices, budget), ``database`` whether
        the input or output is a database.
        """
        cost = cost or {}
        flag = f"--engine {self.name}"
        if database and not self.databases:
            raise ConfigurationError(
                f"databases are read and written by local runs; {flag} takes files", field="engine"
            )
        refused = [o for o in COST_OPTIONS if o not in self.cost_options]
        given = set(cost) - ({"cache", "cache_mode"} if "--cache" in self.cost_options else set())
        if refused and (given or (args.error_file and "--error-file" in refused)):
            taken = f" ({flag} takes {', '.join(self.cost_options)})" if self.cost_options else ""
            listed = (
                ", ".join(refused[:-1]) + f" and {refused[-1]}" if len(refused) > 1 else refused[0]
            )
            raise ConfigurationError(
                f"{listed} run with --engine local for now{taken}", field="engine"
            )
        if self.needs_key and args.key is None:
            raise ConfigurationError(
                f"{flag} needs --key: rows are matched by key on --resume", field="key"
            )
        if not self.local_flags:
            for option, name in _LOCAL_FLAGS:
                if getattr(args, name, None):
                    raise ConfigurationError(
                        f"{option} is for local runs; {flag} does not take it", field="arguments"
                    )
        if not self.stdin and "-" in (args.input, args.output):
            raise ConfigurationError(
                f"{flag} reads files and writes a directory, not stdin/stdout", field="arguments"
            )
        if self.output_formats is not None:
            self.output_format(args)

    def output_format(self, args: argparse.Namespace) -> str:
        """The format of an engine that writes a directory of part files: ``--output-format``,
        else the one the output's name says (``.jsonl``, ``.parquet``), else its first."""
        if self.output_formats is None:
            raise ValueError(f"the {self.name} engine picks its format by the output's name")
        how = ""
        if args.output_format:
            fmt = str(args.output_format).lower()
        else:
            # A name that says a format gets it, as on the local engine; a plain directory
            # name gets the engine's first.
            suffix = os.path.splitext(str(args.output).rstrip("/"))[1].lower()
            fmt = _NAMED_FORMATS.get(suffix, self.output_formats[0])
            how = f" (by the name {args.output}; name the output after a format it writes)"
        if fmt not in self.output_formats:
            raise ConfigurationError(
                f"--engine {self.name} writes {' or '.join(self.output_formats)}, not {fmt}{how}",
                field="output",
            )
        return fmt

    def cluster_job(
        self, config: Any, args: argparse.Namespace, mapping: Any, outputs: Any
    ) -> ClusterJob:
        """The run ``args`` ask of this cluster engine, every mistake refused up front:
        what it cannot honour, then the options (`RunSpec.from_arguments`)."""
        self.check(args)
        fmt = self.output_format(args)
        spec = RunSpec.from_arguments(config, args, mapping, outputs)
        mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
        return ClusterJob(fmt, spec, mode)

    def runner_function(self) -> Callable[..., Any]:
        """The engine's runner, imported now; a missing install is a `ConfigurationError`."""
        if self.runner is None:
            raise ValueError(f"the {self.name} engine runs in this process: it has no runner")
        module, _, function = self.runner.partition(":")
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(
                f"--engine {self.name} needs {self.needs}: "
                f"pip install 'openai-compat[{self.extra}]' ({exc})",
                field="engine",
            ) from None
        found: Callable[..., Any] = getattr(loaded, function)
        return found


def _cluster(name: str, runner: str, needs: str, cost_options: tuple[str, ...]) -> Engine:
    # A cluster engine reads files or globs and writes a directory of part files, matched
    # by key on --resume.
    return Engine(
        name,
        runner,
        needs,
        extra=name,
        cost_options=cost_options,
        databases=False,
        stdin=False,
        local_flags=False,
        needs_key=True,
        output_formats=("parquet", "jsonl"),
    )


ENGINES: dict[str, Engine] = {
    "local": Engine("local"),
    "ray": _cluster("ray", "openai_compat.ray.cli:run_on_ray", "Ray", ()),
    "spark": _cluster("spark", "openai_compat.spark.cli:run_on_spark", "pyspark", ("--cache",)),
}
