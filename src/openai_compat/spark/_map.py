"""`map_endpoint`: a Spark DataFrame through the endpoint, checked before any request.

The rate limit: Spark has no shared actor to hold one token bucket, so each task gets an
equal share: ``rate`` divided by the number of tasks that run at once (the cluster's task
slots, at most the number of partitions). The shares add up to ``rate`` however the tasks
are placed, and a 429 (with ``Retry-After``) pauses the task that met it.
"""

from __future__ import annotations

import os
import warnings
from typing import Any
from urllib.parse import urlsplit

from pyspark.sql import DataFrame, SparkSession

from .._sync import run_sync
from ..batch.cache import ResponseCache
from ..batch.mode_probe import decided_mode
from ..batch.scheduler import DEFAULT_CONCURRENCY, DEFAULT_RATE, Rate
from ..batch.spec import RunSpec
from ..batch.structured_rows import structured_options
from ..config import SourceConfig
from ..errors import ConfigurationError
from ..observability import worker_telemetry
from ..retries import RetryPolicy
from ._partition import PartitionRunner
from ._schema import arrow_schema, lines_schema, result_schema

__all__ = ["cluster_slots", "map_endpoint", "run_attributes", "task_share", "task_slots"]


def cluster_slots(spark: SparkSession) -> int:
    """How many tasks the cluster runs at once: its cores over ``spark.task.cpus``."""
    context = spark.sparkContext
    cpus = int(context.getConf().get("spark.task.cpus", "1") or 1)
    return max(1, context.defaultParallelism // max(1, cpus))


def task_slots(df: DataFrame) -> int:
    """How many tasks of ``df``'s job run at once: the task slots, at most its partitions."""
    return max(1, min(cluster_slots(df.sparkSession), df.rdd.getNumPartitions()))


def task_share(rate: Rate | None, tasks: int) -> Rate | None:
    """Each task's share of ``rate`` when ``tasks`` run at once.

    >>> str(task_share(Rate(600, 60.0), 4))
    '150/minute'
    """
    return None if rate is None else Rate(rate.requests / tasks, rate.period_s)


def run_attributes(config: SourceConfig, concurrency: int) -> dict[str, Any]:
    """The attributes of a Spark job's run span."""
    return {
        "openai_compat.batch.engine": "spark",
        "openai_compat.batch.concurrency": concurrency,
        "server.address": urlsplit(config.url).hostname or "",
    }


def map_endpoint(
    df: DataFrame,
    config: SourceConfig | dict[str, Any] | str,
    *,
    mapping: Any = None,
    outputs: Any = None,
    key: str | None = None,
    concurrency: int | str = DEFAULT_CONCURRENCY,
    rate: Rate | str | None = str(DEFAULT_RATE),
    include_input: bool = True,
    include_response: bool = False,
    token_rate: Rate | str | None = None,
    max_concurrency: int | None = None,
    partitions: int | None = None,
    tasks_at_once: int | None = None,
    retry: RetryPolicy | None = None,
    cache: str | os.PathLike[str] | ResponseCache | None = None,
    cache_mode: str | None = None,
    lines: bool = False,
    counts: Any = None,
    schema: Any = None,
    schema_mode: str | None = None,
    reasks: int | None = None,
    rows_per_request: int | None = None,
) -> DataFrame:
    """``df`` with every row sent through the endpoint: the flat result rows, lazily.

    The result: the input columns (only ``key`` with ``include_input=False``), the outputs
    by name (text), then ``error_status``, ``error_message`` (null when the row succeeded),
    ``attempts``, ``latency_ms``, ``prompt_tokens``, ``completion_tokens``, ``total_tokens``
    (and ``http_response`` with ``include_response=True``): one fixed schema. A failed row
    is a row with its error, never a failed job.

    ``concurrency`` is rows in flight per task (one HTTP connection pool each). ``rate``
    (e.g. ``"600/minute"``; None = no limit) holds for the whole job: each task gets
    ``rate / tasks_at_once`` (default: the cluster's task slots, at most the partitions).
    ``token_rate`` (e.g. ``"200000/minute"``) is shared the same way; each task also heeds
    the server's ``x-ratelimit-*`` headers and ``Retry-After`` on its own (tasks share no
    state). ``concurrency="auto"`` adapts each task's rows in flight, up to
    ``max_concurrency`` (default 256).
    ``partitions`` repartitions ``df`` first (more partitions: smaller retries, finer
    progress). ``cache`` is the response cache (a SQLite file's path every executor reaches,
    or a `ResponseCache`; ``cache_mode`` as for local runs): a retried task reads the answers
    its failed attempt got back from it instead of paying for them again.
    ``lines`` gives one ``line`` column of the local run's result lines instead.
    ``schema`` (with ``schema_mode`` and ``reasks``) asks for structured outputs: each
    top-level property is an output column, typed as in a local run's Parquet output.
    ``rows_per_request`` packs an embeddings URL's rows into requests (default 64, within
    each task). With ``OTEL_*`` variables set here, the tasks export their row and request
    spans with the same settings, beneath the current span (else a run span made here):
    see `worker_telemetry`.

    The configuration, mapping, outputs and rate are checked here, and the result columns
    against the input's, so a mistake fails before any request.

    >>> import inspect; "rate" in inspect.signature(map_endpoint).parameters
    True
    """
    spec = RunSpec.build(
        config,
        mapping=mapping,
        outputs=outputs,
        key=key,
        concurrency=concurrency,
        rate=rate,
        include_input=include_input,
        include_response=include_response,
        cache=cache,
        cache_mode=cache_mode,
        schema=schema,
        schema_mode=schema_mode,
        reasks=reasks,
        token_rate=token_rate,
        max_concurrency=max_concurrency,
        rows_per_request=rows_per_request,
    )
    parsed, parsed_rate, names = spec.config, spec.rate, spec.output_names
    types = spec.output_types
    if partitions is not None and partitions < 1:
        raise ConfigurationError(f"must be 1 or more, got {partitions}", field="partitions")
    if tasks_at_once is not None and tasks_at_once < 1:
        raise ConfigurationError(f"must be 1 or more, got {tasks_at_once}", field="tasks_at_once")
    spec.check_table(list(df.columns), lines=lines)
    cache = _opened_cache(spec)
    if partitions is not None:
        df = df.repartition(partitions)
    kept = [f for f in df.schema.fields if include_input or f.name == key]
    schema = (
        lines_schema()
        if lines
        else result_schema(kept, names, include_response=include_response, types=types)
    )
    tasks = tasks_at_once or task_slots(df)
    share = task_share(parsed_rate, tasks)
    runner = PartitionRunner(
        parsed,
        schema=arrow_schema(schema),
        output_names=names,
        mapping=mapping,
        outputs=outputs,
        key=key,
        keep_columns=[] if lines else [f.name for f in kept],
        concurrency=concurrency,
        rate=share,
        include_input=include_input,
        include_response=include_response,
        retry=retry,
        lines=lines,
        counts=counts,
        cache=cache,
        cache_mode=cache_mode,
        structured=_structured(spec, df, retry),
        types=types,
        token_rate=task_share(spec.token_rate, tasks),
        max_concurrency=spec.max_concurrency if spec.concurrency_auto else None,
        rows_per_request=spec.rows_per_request,
        # The driver's OTEL_* settings and run span, for the tasks (None: no telemetry).
        telemetry=worker_telemetry(run_attributes(parsed, spec.concurrency)),
    )
    with warnings.catch_warnings():
        # pyspark asks for pandas < 3 on every mapInArrow, which does not use pandas.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        return df.mapInArrow(runner, schema)


def _opened_cache(spec: RunSpec) -> str | ResponseCache | None:
    """The run's cache as the tasks get it: opened here once (a bad path fails before any
    request), a path made absolute (the executors' working directory is not the driver's)."""
    cache, mode = spec.cache, spec.cache_mode
    if cache is None:
        return None
    if isinstance(cache, ResponseCache):
        ResponseCache(cache.path, mode or cache.mode).open().close()
        return ResponseCache(os.path.abspath(cache.path), cache.mode, timeout_s=cache.timeout_s)
    path: str = os.path.abspath(cache)
    ResponseCache(path, mode or "read-write").open().close()
    return path


def _structured(spec: RunSpec, df: DataFrame, retry: RetryPolicy | None) -> dict[str, Any]:
    """The tasks' structured options, with ``auto``'s mode found once here on the driver
    with the first row (`decided_mode`), so that the partitions do not each probe."""
    options = structured_options(spec)
    if options and spec.schema_mode in (None, "auto"):
        first = df.limit(1).collect()
        if first:
            mode = run_sync(decided_mode(spec, first[0].asDict(recursive=True), retry))
            if mode is not None:
                options["schema_mode"] = mode
    return options
