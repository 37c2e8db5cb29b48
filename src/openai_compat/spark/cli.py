"""``openai-compat batch --engine spark``: the input read, mapped and sent as a Spark job.

The driver reads the input as a DataFrame (files or globs, local or on any filesystem Spark
reads, in the format `batch.sources` names, as for every engine), leaves out the keys the
output already holds (``--resume``: an anti-join on the key), sends every partition
through `PartitionRunner` on the executors and has Spark write the results into the output
directory. Each task's file is moved into place when the task commits (the version 2
commit algorithm), so the output holds every finished task's rows even when the driver is
killed; a task still running then leaves only a hidden temporary file, removed on
``--resume``. The counts come back through an accumulator (once per successful task) for
the progress and the summary line, which are the local run's.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JError
from pyspark import AccumulatorParam
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegralType, StringType

from .._text import excerpt
from ..batch.cli_options import packing_options, schema_options
from ..batch.engines import ENGINES, EngineJobError
from ..batch.progress import Progress
from ..batch.results import BatchSummary
from ..batch.sinks.parts import PartLayout, prepare_parts
from ..batch.sources import InputFormat, format_of_input
from ..batch.spec import missing_column
from ..errors import ConfigurationError, redact
from ..observability import RunSpan, run_span
from ..retries import RetryPolicy
from ._map import cluster_slots, map_endpoint, run_attributes
from ._partition import COUNT_FIELDS
from ._session import spark_session

__all__ = ["ROWS_PER_TASK", "run_on_spark"]

# Spark's names of the data files each format writes (JSON Lines: the text writer's).
_LAYOUT = PartLayout(
    "Spark",
    {"parquet": "part-*.parquet", "jsonl": "part-*.txt"},
    # What a killed job left: the files of tasks that never committed (their rows run again).
    unfinished=("_temporary",),
    create=False,
)
_TOKEN = "_openai_compat_key"
_POLL_S = 0.5
# A task's rows by default: 100 rounds of its rows in flight (20 s at 200 ms an answer).
ROWS_PER_TASK = 100


class _Counts(AccumulatorParam):  # type: ignore[type-arg]
    """The job's counts (`COUNT_FIELDS`), added up from every successful task."""

    def zero(self, value: tuple[int, ...]) -> tuple[int, ...]:
        return (0,) * len(COUNT_FIELDS)

    def addInPlace(self, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(x + y for x, y in zip(a, b, strict=True))


def _refuse(message: str, field: str = "arguments") -> ConfigurationError:
    return ConfigurationError(message, field=field)


def _input_format(pattern: str) -> InputFormat:
    """The input's format (`format_of_input`), checked before Spark starts."""
    if "://" not in pattern and not Path(pattern).exists() and not _has_magic(pattern):
        raise _refuse(f"no file matches {pattern!r}", "input")
    return format_of_input(pattern)


def _read(spark: SparkSession, pattern: str, kind: InputFormat) -> DataFrame:
    try:
        if kind.name == "jsonl":
            return spark.read.json(pattern)
        if kind.name == "csv":
            return spark.read.csv(pattern, header=True)  # text columns, as a local run reads
        return spark.read.parquet(pattern)
    except Exception as exc:  # Spark's AnalysisException: no such path, unreadable file
        raise _refuse(f"cannot read {pattern!r}: {str(exc).splitlines()[0]}", "input") from None


def _has_magic(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _prepare_directory(path: str, fmt: str, mode: str) -> bool:
    """Make a local output directory ready for ``mode``; True when it holds results."""
    return bool(prepare_parts(path, fmt, mode, _LAYOUT))


def _leave_out_done(
    spark: SparkSession, df: DataFrame, output: str, fmt: str, key: str
) -> tuple[DataFrame, int]:
    """``df`` without the rows whose key the output holds (an anti-join); how many it holds."""
    if fmt == "parquet":
        done = spark.read.parquet(output).select(F.col(key).cast("string").alias(_TOKEN))
    else:
        done = spark.read.text(output).select(F.get_json_object("value", "$.key").alias(_TOKEN))
    done = done.where(F.col(_TOKEN).isNotNull()).distinct().cache()
    skipped = done.count()
    if not skipped:
        return df, 0
    kept = df.join(done, df[key].cast("string") == done[_TOKEN], "left_anti")
    return kept, skipped


def _check_key(df: DataFrame, key: str) -> None:
    if key not in df.columns:
        raise _refuse(missing_column(key, df.columns), "key")
    kind = df.schema[key].dataType
    if not isinstance(kind, IntegralType | StringType):
        raise _refuse(
            f"--key {key!r} is a {kind.simpleString()} column: choose a text or integer "
            "column (keys are compared as text on --resume)",
            "key",
        )


def _partitioned(df: DataFrame, args: argparse.Namespace) -> DataFrame:
    """``df`` cut into ``--partitions``; by default at least one partition per task slot,
    and at most `ROWS_PER_TASK` times ``--concurrency`` rows each.

    Fewer, bigger tasks are faster (each task boundary costs Spark about a second on a busy
    machine, and each task's last requests leave its slots idle), smaller ones lose less when
    a task is retried or the driver killed (a task's rows are written when it commits).
    """
    wanted = getattr(args, "partitions", None)
    if wanted is None:
        per_task = ROWS_PER_TASK * args.concurrency
        wanted = max(cluster_slots(df.sparkSession), math.ceil(df.count() / per_task))
        if df.rdd.getNumPartitions() == wanted:
            return df
    return df.repartition(wanted)


def run_on_spark(
    config: Any,
    args: argparse.Namespace,
    mapping: Any,
    outputs: Any,
    retry: RetryPolicy | None,
) -> BatchSummary:
    """Run ``openai-compat batch --engine spark`` with parsed ``args``; the summary."""
    job = ENGINES["spark"].cluster_job(config, args, mapping, outputs)
    fmt, mode = job.output_format, job.mode
    parsed, rate = job.spec.config, job.spec.rate
    partitions = getattr(args, "partitions", None)
    if partitions is not None and partitions < 1:
        raise _refuse(f"--partitions must be 1 or more, got {partitions}", "partitions")
    remote = "://" in args.output
    has_results = mode == "resume" if remote else _prepare_directory(args.output, fmt, mode)
    kind = _input_format(args.input)
    spark, started = spark_session(getattr(args, "spark_master", None))
    # The job's span: every task's row spans hang beneath it (one trace for the job).
    run = run_span(run_attributes(parsed, job.spec.concurrency))
    token = None if run is None else run.attach()  # current: map_endpoint passes it on
    summary: BatchSummary | None = None  # made when the job starts
    try:
        df = _read(spark, args.input, kind)
        _check_key(df, args.key)
        skipped = 0
        if has_results:
            df, skipped = _leave_out_done(spark, df, args.output, fmt, args.key)
        counts = spark.sparkContext.accumulator((0,) * len(COUNT_FIELDS), _Counts())
        out = map_endpoint(
            _partitioned(df, args),
            parsed,
            mapping=mapping,
            outputs=outputs,
            key=args.key,
            concurrency=args.concurrency,
            rate=rate,
            token_rate=getattr(args, "token_rate", None),
            max_concurrency=getattr(args, "max_concurrency", None),
            include_input=args.include_input or fmt == "parquet",
            include_response=args.include_response,
            retry=retry,
            lines=fmt == "jsonl",
            counts=counts,
            cache=getattr(args, "cache", None),
            cache_mode=getattr(args, "cache_mode", None),
            **schema_options(args),
            **packing_options(args),
        )
        writer = out.write.option("mapreduce.fileoutputcommitter.algorithm.version", "2")
        writer = writer.mode(
            "append"
            if not remote or mode == "resume"
            else "overwrite"
            if mode == "overwrite"
            else "errorifexists"
        )
        summary = BatchSummary(skipped=skipped)
        progress = "off" if args.quiet else args.progress
        meter = Progress(summary, mode=progress, interval_s=args.progress_interval)

        def write() -> None:
            if fmt == "parquet":
                writer.parquet(args.output)
            else:
                writer.text(args.output)

        try:
            asyncio.run(_drive(write, counts, meter))
        except (OSError, Py4JError, PySparkException) as exc:
            # Rows never fail the job, so this is Spark's own failure: the output, an
            # executor, the input vanishing. What it wrote is kept: --resume continues.
            raise EngineJobError(
                f"the Spark job failed: {redact(_cause(exc), parsed.secrets)}; fix that and run "
                "again with --resume (the results written so far are kept)"
            ) from None
        return summary
    finally:
        if run is not None:
            RunSpan.detach(token)
            run.end_with(summary)
        if started:
            spark.stop()


def _cause(exc: BaseException) -> str:
    """The line of a Spark or Java failure that says what went wrong, without the stack."""
    lines = [line.strip() for line in str(exc).splitlines()]
    useful = [
        line.removeprefix(": ")
        for line in lines
        if line and not line.startswith(("at ", "...", "An error occurred while calling"))
    ]
    # The deepest "Caused by" names the root (a disk, a permission); else the first line.
    causes = [line.removeprefix("Caused by: ") for line in useful if line.startswith("Caused by:")]
    text = causes[-1] if causes else (useful[0] if useful else type(exc).__name__)
    return excerpt(text, 300)


def _take_counts(values: tuple[int, ...], summary: BatchSummary) -> None:
    for name, value in zip(COUNT_FIELDS, values, strict=True):
        setattr(summary, name, value)


async def _drive(write: Any, counts: Any, meter: Progress) -> None:
    """Run the job, showing the counts of the tasks finished so far on stderr."""
    meter.start()
    job = asyncio.ensure_future(asyncio.to_thread(write))
    try:
        while not job.done():
            await asyncio.wait({job}, timeout=_POLL_S)
            _take_counts(counts.value, meter.summary)
            meter.update()
        await job
    finally:
        _take_counts(counts.value, meter.summary)
        meter.summary.finish()
        await meter.aclose()
