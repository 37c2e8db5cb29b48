"""``openai-compat batch --engine ray``: the dataset read, mapped and sent on a Ray cluster.

The driver reads the input as a Ray Dataset (files or globs, local or on object storage),
leaves out the keys the output already holds (``--resume``), maps every block through
`EndpointUDF` on the actors, and writes the result blocks as they arrive into part files of
the output directory (`_output`), counting them for the progress and the summary line, which
are the local run's.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import ray.data

from ..batch.engines import ENGINES
from ..batch.progress import Progress
from ..batch.readers import count_rows, open_rows
from ..batch.results import BatchSummary
from ..batch.spec import RunSpec
from ..errors import ConfigurationError
from ..retries import RetryPolicy
from ._cluster import connect
from ._map import map_endpoint
from ._output import PartWriter, prepare_directory

__all__ = ["run_on_ray"]

_READERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def _refuse(message: str, field: str = "arguments") -> ConfigurationError:
    return ConfigurationError(message, field=field)


def _check_arguments(args: argparse.Namespace) -> str:
    """The output format; every option the Ray engine cannot honour refused up front."""
    engine = ENGINES["ray"]
    engine.check(args)
    return engine.output_format(args)


def _input_paths(pattern: str) -> list[str]:
    if "://" in pattern:
        return [pattern]  # object storage: Ray's readers take the path (a directory, a file)
    found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not found:
        raise _refuse(f"no file matches {pattern!r}", "input")
    return found


def _read(paths: list[str]) -> ray.data.Dataset:
    suffix = next((s for s in _READERS if paths[0].lower().endswith(s)), ".parquet")
    kind = _READERS[suffix]
    if kind == "json":
        return ray.data.read_json(paths, lines=True)
    if kind == "csv":
        return ray.data.read_csv(paths)
    return ray.data.read_parquet(paths)


def _columns(paths: list[str]) -> list[str] | None:
    """The column names of the first input file, read here from its start (the schema of
    a Parquet file, the header of a CSV file, the first block of JSON Lines), instead of
    by a Ray task before the run (`map_endpoint`'s ``columns``); None on object storage."""
    path = paths[0]
    if "://" in path:
        return None
    kind = _READERS[next((s for s in _READERS if path.lower().endswith(s)), ".parquet")]
    try:
        if kind == "parquet":
            return list(pq.read_schema(path).names)
        opener = pa_csv.open_csv if kind == "csv" else pa_json.open_json
        with opener(path) as reader:
            return list(reader.schema.names)
    except Exception:  # Ray's reader says what is wrong with the file: let it
        return None


def _leave_out(table: pa.Table, key: str, done: pa.Array) -> pa.Table:
    tokens = pc.cast(table.column(key), pa.large_string())
    written = pc.fill_null(pc.is_in(tokens, value_set=done), False)
    return table.filter(pc.invert(written))


def run_on_ray(
    config: Any,
    args: argparse.Namespace,
    mapping: Any,
    outputs: Any,
    retry: RetryPolicy | None,
) -> BatchSummary:
    """Run ``openai-compat batch --engine ray`` with parsed ``args``; the summary."""
    fmt = _check_arguments(args)
    # Every mistake of the configuration and options before any request.
    spec = RunSpec.build(
        config,
        mapping=mapping,
        outputs=outputs,
        key=args.key,
        concurrency=args.concurrency,
        rate=args.rate or None,
    )
    parsed, rate = spec.config, spec.rate
    paths = _input_paths(args.input)
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    done = prepare_directory(args.output, fmt, mode, args.key)
    shut_down = connect(args.ray_address)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = _read(paths)
        if done:
            ds = ds.map_batches(
                _leave_out,  # type: ignore[arg-type]
                fn_kwargs={"key": args.key, "done": pa.array(sorted(done), pa.large_string())},
                batch_format="pyarrow",
            )
        out = map_endpoint(
            ds,
            parsed,
            mapping=mapping,
            outputs=outputs,
            key=args.key,
            actors=args.actors,
            concurrency=args.concurrency,
            rate=rate,
            include_input=args.include_input or fmt == "parquet",
            include_response=args.include_response,
            batch_size=args.batch_size,
            num_cpus=args.num_cpus,
            retry=retry,
            lines=fmt == "jsonl",
            columns=_columns(paths),
        )
        summary = BatchSummary(skipped=len(done))
        writer = PartWriter(args.output, fmt, args.key, summary)
        progress = "off" if args.quiet else args.progress
        meter = Progress(summary, mode=progress, interval_s=args.progress_interval)
        asyncio.run(_drain(out, writer, meter, paths))
        return summary
    finally:
        if shut_down:
            ray.shutdown()


def _count(paths: list[str]) -> int | None:
    """The input's rows (the local run's estimate, for the ETA); None on object storage."""
    if any("://" in path for path in paths):
        return None
    total = 0
    for path in paths:
        try:
            found = count_rows(open_rows(path))
        except Exception:  # an estimate only: never let it break a run
            return None
        if found is None:
            return None
        total += found
    return total


async def _drain(
    out: ray.data.Dataset, writer: PartWriter, meter: Progress, paths: list[str]
) -> None:
    """Write the result blocks as Ray hands them over, with the progress on stderr."""
    blocks = iter(out.iter_batches(batch_format="pyarrow", batch_size=None))
    counter = asyncio.ensure_future(asyncio.to_thread(_count, paths))
    counter.add_done_callback(lambda f: None if f.cancelled() else meter.set_total(f.result()))
    meter.start()
    try:
        while (block := await asyncio.to_thread(next, blocks, None)) is not None:
            writer.write(block)
            meter.update()
    finally:
        counter.cancel()
        writer.close()
        writer.summary.finish()
        if writer.duplicates:
            meter.note(f"batch: {writer.duplicates} rows came twice (a retried task); kept once")
        await meter.aclose()
