"""``openai-compat batch --engine ray``: the dataset read, mapped and sent on a Ray cluster.

The driver reads the input as a Ray Dataset (files or globs, local or on object storage,
in the format `batch.sources` names, as for every engine), leaves out the keys the output
already holds (``--resume``), maps every block through `EndpointUDF` on the actors, and
writes the result blocks as they arrive into part files of the output directory
(`_output`), counting them for the progress and the summary line, which are the local
run's.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import glob
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pa_fs
import ray.data

from ..batch.cli_options import packing_options, schema_options
from ..batch.engines import ENGINES
from ..batch.progress import Progress
from ..batch.results import BatchSummary
from ..batch.sources import InputFormat, count_rows, format_of_input, open_rows, probe_columns
from ..errors import ConfigurationError
from ..observability import RunSpan, run_span
from ..retries import RetryPolicy
from ._cluster import connect
from ._map import map_endpoint, run_attributes
from ._output import PartWriter, prepare_directory

__all__ = ["run_on_ray"]


def _refuse(message: str, field: str = "arguments") -> ConfigurationError:
    return ConfigurationError(message, field=field)


def _input_paths(pattern: str) -> list[str]:
    if "://" in pattern:
        return [pattern]  # object storage: Ray's readers take the path (a glob: `_read`)
    found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not found:
        raise _refuse(f"no file matches {pattern!r}", "input")
    return found


def _remote_matches(pattern: str) -> list[str]:
    """The files a glob on object storage matches, listed from the directory before its
    first wildcard (one name at a time: ``*`` does not cross a ``/``)."""
    magic = min(i for i, c in enumerate(pattern) if c in "*?[")
    base = pattern[:magic].rsplit("/", 1)[0]
    deeper = "/" in pattern[magic:]
    try:
        filesystem, root = pa_fs.FileSystem.from_uri(base)
        listed = filesystem.get_file_info(pa_fs.FileSelector(root, recursive=deeper))
    except Exception as exc:  # no such bucket, no credentials, an unknown scheme
        raise _refuse(f"cannot list {base!r}: {exc}", "input") from None
    # The URI's scheme and host, before the path the filesystem names its files by.
    prefix = base[: len(base) - len(root.rstrip("/"))]
    wanted = pattern[len(prefix) :].split("/")
    found = sorted(
        prefix + info.path
        for info in listed
        if info.type == pa_fs.FileType.File and _matches(info.path.split("/"), wanted)
    )
    if not found:
        raise _refuse(f"no file matches {pattern!r}", "input")
    return found


def _matches(parts: list[str], wanted: list[str]) -> bool:
    return len(parts) == len(wanted) and all(
        fnmatch.fnmatchcase(part, name) for part, name in zip(parts, wanted, strict=True)
    )


def _read(paths: list[str], kind: InputFormat) -> ray.data.Dataset:
    # Ray's readers take no glob: one on object storage is listed here.
    paths = [
        found
        for path in paths
        for found in (_remote_matches(path) if "://" in path and glob.has_magic(path) else [path])
    ]
    # Only the files of the format (Ray's own default lists leave out .ndjson, .pq, .csv.gz).
    extensions = [suffix.lstrip(".") for suffix in kind.file_suffixes]
    if kind.name == "jsonl":
        return ray.data.read_json(paths, lines=True, file_extensions=extensions)
    if kind.name == "csv":
        return ray.data.read_csv(paths, file_extensions=extensions)
    return ray.data.read_parquet(paths, file_extensions=extensions)


def _columns(paths: list[str], kind: InputFormat) -> list[str] | None:
    """The column names of the first input file, read here from its start (the schema of
    a Parquet file, the header of a CSV file, the first block of JSON Lines), instead of
    by a Ray task before the run (`map_endpoint`'s ``columns``); None on object storage."""
    path = paths[0]
    if "://" in path:
        return None
    try:
        return probe_columns(path, kind.name)
    except Exception:  # Ray's reader says what is wrong with the file (or a directory's): let it
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
    job = ENGINES["ray"].cluster_job(config, args, mapping, outputs)
    fmt, mode = job.output_format, job.mode
    parsed, rate = job.spec.config, job.spec.rate
    paths = _input_paths(args.input)
    kind = format_of_input(args.input)
    done = prepare_directory(args.output, fmt, mode, args.key)
    shut_down = connect(args.ray_address)
    # The job's span: every actor's row spans hang beneath it (one trace for the job).
    run = run_span(run_attributes(parsed, job.spec.concurrency))
    token = None if run is None else run.attach()  # current: map_endpoint passes it on
    summary: BatchSummary | None = None  # made when the job starts
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = _read(paths, kind)
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
            token_rate=getattr(args, "token_rate", None),
            max_concurrency=getattr(args, "max_concurrency", None),
            include_input=args.include_input or fmt == "parquet",
            include_response=args.include_response,
            batch_size=args.batch_size,
            num_cpus=args.num_cpus,
            resources=getattr(args, "ray_resources", None),
            retry=retry,
            lines=fmt == "jsonl",
            columns=_columns(paths, kind),
            **schema_options(args),
            **packing_options(args),
        )
        summary = BatchSummary(skipped=len(done))
        writer = PartWriter(args.output, fmt, args.key, summary)
        progress = "off" if args.quiet else args.progress
        meter = Progress(summary, mode=progress, interval_s=args.progress_interval)
        asyncio.run(_drain(out, writer, meter, paths))
        return summary
    finally:
        if run is not None:
            RunSpan.detach(token)
            run.end_with(summary)
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
