"""`map_endpoint`: a Ray Dataset through the endpoint, checked before any request."""

from __future__ import annotations

import inspect
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import ray.data

from ..batch.scheduler import DEFAULT_CONCURRENCY, DEFAULT_RATE, Rate
from ..batch.spec import RunSpec
from ..batch.structured_rows import structured_options
from ..config import SourceConfig
from ..errors import ConfigurationError
from ..observability import worker_telemetry
from ..retries import RetryPolicy
from ._coordinator import kept_coordinator
from ._udf import EndpointUDF

__all__ = [
    "DEFAULT_ACTORS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NUM_CPUS",
    "map_endpoint",
    "run_attributes",
]

DEFAULT_ACTORS = 2
DEFAULT_BATCH_SIZE = 256
# The actors wait on the network, so they reserve no CPU: any fraction of one would leave a
# 1-CPU node less than the whole CPU each of Ray Data's read and repartition tasks needs, and
# the job would wait forever with nothing sent.
DEFAULT_NUM_CPUS = 0.0


def check_resources(resources: Mapping[str, float] | None) -> dict[str, float]:
    """``resources`` as Ray takes them, or a `ConfigurationError` saying what is wrong.

    >>> check_resources({"sender": 1})
    {'sender': 1.0}
    """
    found: dict[str, float] = {}
    for name, amount in (resources or {}).items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(
                f"a resource name must be a non-empty string, got {name!r}", field="resources"
            )
        if name in ("CPU", "GPU", "memory"):
            raise ConfigurationError(
                f"{name} is not a custom resource: use num_cpus (--num-cpus) for CPUs",
                field="resources",
            )
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise ConfigurationError(
                f"{name}: the amount must be a number, got {amount!r}", field="resources"
            )
        if not math.isfinite(amount) or amount <= 0:
            raise ConfigurationError(
                f"{name}: the amount must be above 0, got {amount!r}", field="resources"
            )
        found[name] = float(amount)
    return found


def _one_batch_per_block(ds: ray.data.Dataset, batch_size: int) -> ray.data.Dataset:
    """``ds`` in blocks of ``batch_size`` rows, cut and joined as they stream by.

    A big block would go to one actor whole (the others idle), its results out only at its
    end. Small blocks are joined too (``strict``): without it Ray runs one repartition task
    per input block, and 200 blocks of 10 rows (``from_items``) cost 200 tasks, which fed
    the actors slower than they sent (2,000 rows: 23.6 s, with it 13.0 s).
    """
    if "strict" in inspect.signature(ds.repartition).parameters:
        return ds.repartition(target_num_rows_per_block=batch_size, strict=True)
    return ds.repartition(target_num_rows_per_block=batch_size)  # Ray before ``strict``


def run_attributes(config: SourceConfig, concurrency: int) -> dict[str, Any]:
    """The attributes of a Ray job's run span."""
    return {
        "openai_compat.batch.engine": "ray",
        "openai_compat.batch.concurrency": concurrency,
        "server.address": urlsplit(config.url).hostname or "",
    }


def map_endpoint(
    ds: ray.data.Dataset,
    config: SourceConfig | dict[str, Any] | str,
    *,
    mapping: Any = None,
    outputs: Any = None,
    key: str | None = None,
    actors: int = DEFAULT_ACTORS,
    concurrency: int | str = DEFAULT_CONCURRENCY,
    rate: Rate | str | None = str(DEFAULT_RATE),
    include_input: bool = True,
    include_response: bool = False,
    token_rate: Rate | str | None = None,
    max_concurrency: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_cpus: float = DEFAULT_NUM_CPUS,
    retry: RetryPolicy | None = None,
    coordinator: Any = None,
    lines: bool = False,
    columns: Sequence[str] | None = None,
    schema: Any = None,
    schema_mode: str | None = None,
    reasks: int | None = None,
    rows_per_request: int | None = None,
    resources: Mapping[str, float] | None = None,
) -> ray.data.Dataset:
    """``ds`` with every row sent through the endpoint: the flat result rows, lazily.

    The configuration, mapping, outputs and rate are checked here, and the result columns
    against the input's columns, so a mistake fails before any request. ``rate`` holds
    for the whole job (all actors together); ``concurrency`` is per actor. With ``key``,
    keys are unique across the whole dataset: a row whose key is missing, or another row's,
    is a failed row (no request), as in a local run. ``columns``: the input's column names
    when the caller knows them (the command line reads them from the first file); without
    them they come from ``ds.schema()``, which for JSON or CSV files, or after a map, runs a
    task to read a block (seconds on a new cluster, before the actors start). The other
    keywords are `EndpointUDF`'s. ``schema`` (with ``schema_mode``, ``reasks``) asks for
    structured outputs, each top-level property a typed column as in a local Parquet output.
    ``token_rate`` holds for the whole job too (the coordinator holds its bucket; each actor
    also heeds the server's ``x-ratelimit-*`` headers); a ``Retry-After`` pauses every actor
    through the coordinator. ``concurrency="auto"`` adapts each actor's rows in flight, up
    to ``max_concurrency`` (default 256). ``rows_per_request`` packs an embeddings URL's rows
    into requests (default 64, within each batch). ``resources``: custom Ray resources each
    actor needs, so the actors run only on the nodes that offer them (a worker group's
    label on KubeRay, say), ``{"sender": 1}`` on nodes of one ``sender`` each puts one actor
    on each. With ``OTEL_*`` variables set here, the actors export their row and request
    spans with the same settings, beneath the current span (else a run span made here): see
    `worker_telemetry`.

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
        schema=schema,
        schema_mode=schema_mode,
        reasks=reasks,
        token_rate=token_rate,
        max_concurrency=max_concurrency,
        rows_per_request=rows_per_request,
    )
    if actors < 1:
        raise ConfigurationError(f"must be 1 or more, got {actors}", field="actors")
    resources = check_resources(resources)
    if columns is None:
        found = ds.schema()
        columns = list(found.names) if found is not None else []
    spec.check_table(columns, lines=lines)
    parsed, parsed_rate = spec.config, spec.rate
    if coordinator is None:
        coordinator = kept_coordinator(parsed_rate, parsed.url, spec.token_rate)
    ds = _one_batch_per_block(ds, batch_size)
    return ds.map_batches(
        EndpointUDF,
        fn_constructor_kwargs={
            "config": parsed,
            "mapping": mapping,
            "outputs": outputs,
            "key": key,
            "concurrency": concurrency,
            "rate": parsed_rate,
            "include_input": include_input,
            "include_response": include_response,
            "retry": retry,
            "coordinator": coordinator,
            "run_id": uuid.uuid4().hex,  # the keys of this run, kept apart from other runs'
            "lines": lines,
            **structured_options(spec),
            "token_rate": spec.token_rate,
            "max_concurrency": spec.max_concurrency if spec.concurrency_auto else None,
            "rows_per_request": spec.rows_per_request,
            # The driver's OTEL_* settings and run span, for the actors (None: no telemetry).
            "telemetry": worker_telemetry(run_attributes(parsed, spec.concurrency)),
        },
        batch_format="pyarrow",
        batch_size=batch_size,
        # Two batches per actor at most (one running, one waiting): an actor that starts
        # first must not take every batch while the others are still starting.
        compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=2),
        # Placed by Ray Data's scheduling strategy (SPREAD unless the job's DataContext says
        # otherwise): over the nodes, so a lost node takes only its share of the rows in flight.
        num_cpus=num_cpus,
        resources=resources or None,
    )
