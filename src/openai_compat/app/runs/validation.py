"""A run request checked whole before the run is created: a 422 lists every problem.

The options are the run's `RunSpec` (checked there as for every engine: mapping, outputs,
key, concurrency, rate, prices and budget); here the input (an upload, or a database query
probed for its columns), the placeholders, and the columns the mapping and key name against
the input's. An output path the response format lacks is accepted, as the CLI accepts it:
that format is a sample of an answer, and a real answer may hold more.
"""

from __future__ import annotations

import asyncio
import functools
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...batch import DEFAULT_RATE
from ...batch.scheduler import MAX_CONCURRENCY
from ...batch.spec import RunSpec, missing_column, shown_columns
from ...config import SourceConfig
from ...errors import ConfigurationError
from ...mapping import PayloadBuilder
from ...structured import MODES
from ..connectors import ConnectorServices
from ..egress import DatabaseGuard
from ..http import (
    DATABASE_INPUT_SCHEMA,
    MAPPING_SCHEMA,
    OUTPUTS_SCHEMA,
    PLACEHOLDERS_SCHEMA,
    PRICES_SCHEMA,
    RATE_SCHEMA,
    RUN_INPUT_SCHEMA,
    TOKEN_RATE_SCHEMA,
    ApiError,
    FieldError,
    declared_as,
)
from ._inputs import PREVIEW_CONNECT_TIMEOUT_S, DatabaseProbe, api_field, probe_database
from .placeholders import placeholders_of
from .store import RunStore
from .stored import StoredRun

__all__ = ["CheckedRun", "DatabaseIn", "RunIn", "probe_database_input", "validate_run"]

_DEFAULT_RATE = str(DEFAULT_RATE) if DEFAULT_RATE is not None else None
# Database previews run on threads counted apart from the pool the routes that read the
# store use: previews of a database that never answers fill these, never that pool.
_PREVIEW_THREADS = 16
# A preview answers by then, whatever the database does (its connection gives up first,
# after PREVIEW_CONNECT_TIMEOUT_S; a preview waiting for a thread waits within this too).
_PREVIEW_DEADLINE_S = 2 * PREVIEW_CONNECT_TIMEOUT_S
_T = TypeVar("_T")
_preview_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter]
_preview_limiters = weakref.WeakKeyDictionary()


async def _on_preview_thread(func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)`` on a preview thread; `ConfigurationError` past the deadline."""
    loop = asyncio.get_running_loop()
    limiter = _preview_limiters.get(loop)
    if limiter is None:
        limiter = _preview_limiters[loop] = anyio.CapacityLimiter(_PREVIEW_THREADS)
    try:
        with anyio.fail_after(_PREVIEW_DEADLINE_S):
            # Abandoned at the deadline: the thread ends on its own when its connection
            # gives up (every connection of a preview has a time limit).
            return await anyio.to_thread.run_sync(
                functools.partial(func, *args), limiter=limiter, abandon_on_cancel=True
            )
    except TimeoutError:
        raise ConfigurationError(
            f"the database did not answer within {_PREVIEW_DEADLINE_S} s (or too many "
            "previews are waiting for one that does not answer); check its host and port, "
            "and try again",
            field="input",
        ) from None


# The run option is called ``schema`` at every door; pydantic's deprecated ``BaseModel.schema()``
# it shadows is not used.
warnings.filterwarnings("ignore", message='Field name "schema" in "RunIn"', category=UserWarning)


class RunIn(BaseModel):
    """A run to create for a saved connector."""

    input: dict[str, Any] = Field(json_schema_extra=declared_as(RUN_INPUT_SCHEMA))
    mapping: Any = Field(default=None, json_schema_extra=declared_as(MAPPING_SCHEMA))
    outputs: Any = Field(default=None, json_schema_extra=declared_as(OUTPUTS_SCHEMA))
    key: str | None = Field(default=None, description="the column identifying a row")
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] | Literal["auto"] = Field(
        default=10,
        description='requests in flight at once, or "auto": found from latency and errors, '
        "up to max_concurrency",
    )
    rate: str | None = Field(default=_DEFAULT_RATE, json_schema_extra=declared_as(RATE_SCHEMA))
    token_rate: str | None = Field(default=None, json_schema_extra=declared_as(TOKEN_RATE_SCHEMA))
    max_concurrency: int | None = Field(
        default=None,
        json_schema_extra=declared_as(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENCY},
                    {"type": "null"},
                ],
                "description": 'the ceiling of concurrency "auto" (default 256)',
            }
        ),
    )
    prices: Any = Field(default=None, json_schema_extra=declared_as(PRICES_SCHEMA))
    max_cost: float | None = Field(
        default=None,
        description="stop starting rows once the run spent this (USD, more than 0; needs prices)",
    )
    max_tokens: int | None = Field(
        default=None,
        description="stop starting rows once the run used this many tokens",
        json_schema_extra=declared_as(
            {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}
        ),
    )
    placeholders: Any = Field(default=None, json_schema_extra=declared_as(PLACEHOLDERS_SCHEMA))
    schema: Any = Field(
        default=None,
        json_schema_extra=declared_as(
            {
                "anyOf": [{"type": "object"}, {"type": "null"}],
                "description": 'a JSON Schema (or {"name", "schema", "strict"}) every answer '
                "must validate against; each top-level property becomes an output column",
            }
        ),
    )
    schema_mode: str | None = Field(
        default=None,
        json_schema_extra=declared_as(
            {
                "anyOf": [{"type": "string", "enum": list(MODES)}, {"type": "null"}],
                "description": "how to ask for the schema (needs schema); default auto",
            }
        ),
    )
    reasks: int | None = Field(
        default=None,
        json_schema_extra=declared_as(
            {
                "anyOf": [{"type": "integer", "minimum": 0, "maximum": 20}, {"type": "null"}],
                "description": "times an invalid answer is asked again (needs schema); default 2",
            }
        ),
    )


@dataclass
class _Input:
    """A run's input, checked: what is stored (no password), the encrypted URL if any, the
    input's columns (None when unknown) and row count."""

    public: dict[str, Any]
    encrypted_url: str | None = None
    columns: list[str] | None = None
    total: int | None = None


async def _checked_input(
    store: RunStore, services: ConnectorServices, given: dict[str, Any], errors: list[FieldError]
) -> _Input:
    if "upload_id" in given:
        extra = sorted(set(given) - {"upload_id"})
        if extra:
            errors.append(FieldError("input", f"takes upload_id alone; remove {extra}"))
        upload_id = given["upload_id"]
        if not isinstance(upload_id, str) or not upload_id:
            errors.append(FieldError("input.upload_id", "must be the id of an upload"))
            return _Input(given)
        row = await run_in_threadpool(store.upload, upload_id)
        if row is None:
            errors.append(
                FieldError("input.upload_id", f"there is no upload {upload_id!r}: upload it first")
            )
            return _Input(given)
        return _Input({"upload_id": upload_id}, None, list(row.columns), row.rows_estimate)
    if "database" in given or "query" in given:
        extra = sorted(set(given) - {"database", "query", "params"})
        if extra:
            errors.append(FieldError("input", f"takes database, query and params; remove {extra}"))
        probe = await probe_database_input(
            services, DatabaseIn.model_validate(given), errors, "input"
        )
        if probe is None:
            return _Input({})
        found, clean = probe
        public = {"database": found.shown, "query": clean.query, "params": clean.params}
        encrypted = services.cipher.encrypt(clean.database)
        return _Input(public, encrypted, found.columns, found.rows_estimate)
    errors.append(
        FieldError("input", 'must be {"upload_id": "..."} or {"database": url, "query": sql}')
    )
    return _Input(given)


class DatabaseIn(BaseModel):
    """A database query as a run's input (or to preview)."""

    # Typed loosely so that the route words each problem; the document says the rules.
    model_config = ConfigDict(json_schema_extra=declared_as(DATABASE_INPUT_SCHEMA))

    database: Any = Field(
        default=None, description="a SQLAlchemy URL: postgresql://user:password@host/db"
    )
    query: Any = Field(default=None, description="a SELECT statement; :name parameters from params")
    params: Any = Field(default=None, description="the query's :name parameters")


@dataclass
class _CleanDatabase:
    database: str
    query: str
    params: dict[str, Any] | None


async def probe_database_input(
    services: ConnectorServices, given: DatabaseIn, errors: list[FieldError], prefix: str
) -> tuple[DatabaseProbe, _CleanDatabase] | None:
    """Check a database input (connect, first rows, count); None with ``errors`` if wrong."""
    at = f"{prefix}." if prefix else ""
    problems = []
    if not isinstance(given.database, str) or not given.database.strip():
        problems.append(FieldError(f"{at}database", "must be a database URL (text)"))
    if not isinstance(given.query, str) or not given.query.strip():
        problems.append(FieldError(f"{at}query", "must be a SELECT statement (text)"))
    if given.params is not None and not isinstance(given.params, dict):
        problems.append(FieldError(f"{at}params", "must be an object of :name -> value"))
    if problems:
        errors += problems
        return None
    clean = _CleanDatabase(given.database.strip(), given.query, given.params)
    try:
        # Every host is judged by the address policy before anything connects to it, and
        # again at each connection.
        found = await _on_preview_thread(
            probe_database,
            clean.database,
            clean.query,
            clean.params,
            DatabaseGuard(services.policy),
        )
    except ConfigurationError as exc:
        field = api_field(exc).removeprefix("input.")
        errors.append(FieldError(f"{at}{field}", exc.reason))
        return None
    return found, clean


def _check_mapping_columns(
    builder: PayloadBuilder, columns: list[str], errors: list[FieldError], chosen: dict[str, str]
) -> None:
    """Every column the mapping reads, and every placeholder's, is one of the input's."""
    placeholders = {c for c in builder.columns if c not in {i.value for i in builder.items}}
    for i, item in enumerate(builder.items):
        if not item.static and item.value not in columns:
            errors.append(FieldError(f"mapping[{i}].value", missing_column(item.value, columns)))
    shown = shown_columns(columns)
    for placeholder in sorted(placeholders):
        column = chosen.get(placeholder, placeholder)
        if column not in columns:
            errors.append(
                FieldError(
                    "mapping",
                    f"the request format's placeholder {{{{{placeholder}}}}} names no column of "
                    f"the input (its columns: {shown}); map it, choose its column in "
                    "placeholders, or rename the column",
                )
            )


def _check_placeholders(
    config: SourceConfig, given: Any, columns: list[str] | None, errors: list[FieldError]
) -> dict[str, str]:
    """The placeholder -> column choice, each checked (the placeholder is the request
    format's, the column the input's); ``{}`` when none or wrong."""
    if given is None:
        return {}
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in given.items()
    ):
        errors.append(
            FieldError(
                "placeholders",
                'must be an object of placeholder -> column name, e.g. {"ticket": "text"}',
            )
        )
        return {}
    known = placeholders_of(config.request_format)
    problems = []
    for placeholder, column in given.items():
        if placeholder not in known:
            found = ", ".join(f"{{{{{p}}}}}" for p in known) or "none"
            problems.append(
                FieldError(
                    f"placeholders.{placeholder}",
                    f"the request format has no placeholder {{{{{placeholder}}}}} (its "
                    f"placeholders: {found})",
                )
            )
        elif columns is not None and column not in columns:
            problems.append(
                FieldError(f"placeholders.{placeholder}", missing_column(column, columns))
            )
    errors += problems
    return {} if problems else dict(given)


def _shape(config: SourceConfig, mapping: Any, outputs: Any) -> RunSpec | None:
    """A spec of the mapping and outputs alone (None: they are wrong themselves)."""
    try:
        return RunSpec.build(config, mapping=mapping, outputs=outputs)
    except ConfigurationError:
        return None  # reported with the spec's problems


# The problems of a request are listed in the order of the request's parts.
_ORDER = (
    "input",
    "placeholders",
    "mapping",
    "outputs",
    "key",
    "prices",
    "max_cost",
    "max_tokens",
    "schema",
    "schema_mode",
    "reasks",
)


def _in_order(error: FieldError) -> int:
    name = error["field"].split(".", 1)[0].split("[", 1)[0]
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


@dataclass(frozen=True)
class CheckedRun:
    """A run request found valid: what to store (no secret in clear), the names of its
    outputs, and the input's row count when it is known."""

    stored: StoredRun
    output_names: list[str]
    total: int | None


async def validate_run(
    config: SourceConfig, body: RunIn, store: RunStore, services: ConnectorServices
) -> CheckedRun:
    """Check a run request whole against the saved connector's ``config``: its options as
    the run's `RunSpec` (mapping, outputs, key, concurrency, rate, prices and budget), then
    against the input (the columns the mapping, the placeholders and the key name); the 422
    ``ApiError`` lists every problem."""
    errors: list[FieldError] = []
    found = await _checked_input(store, services, body.input, errors)
    columns = found.columns
    chosen = _check_placeholders(config, body.placeholders, columns, errors)
    schema = body.schema
    if schema is not None and not isinstance(schema, dict):
        # A text would be read as a file's path: the application reads no file for a request.
        errors.append(
            FieldError(
                "schema",
                'must be a JSON Schema object (or {"name", "schema", "strict"}), not '
                f"{type(schema).__name__}: the application reads no schema file",
            )
        )
        schema = None
    stored = StoredRun(
        input=found.public,
        mapping=body.mapping,
        outputs=body.outputs,
        key=body.key,
        concurrency=body.concurrency,
        rate=body.rate,
        token_rate=body.token_rate,
        max_concurrency=body.max_concurrency,
        prices=body.prices,
        max_cost=body.max_cost,
        max_tokens=body.max_tokens,
        placeholders=chosen or None,
        database_url_encrypted=found.encrypted_url,
        schema=schema,
        schema_mode=body.schema_mode if schema is not None else None,
        reasks=body.reasks if schema is not None else None,
    )
    spec: RunSpec | None = None
    try:
        spec = stored.run_spec(config)
    except ConfigurationError as exc:
        errors.extend(FieldError(p.field or "options", p.message) for p in exc.problems)
    # What the mapping means, even when another option is wrong: its problems against the
    # input are reported with the others.
    if columns is not None:
        shape = spec if spec is not None else _shape(config, body.mapping, body.outputs)
        if shape is not None:
            _check_mapping_columns(shape.payload_builder, columns, errors, chosen)
    if body.key is not None and columns is not None and body.key not in columns:
        errors.append(FieldError("key", missing_column(body.key, columns)))
    if found.encrypted_url is not None and body.key is None:
        errors.append(
            FieldError(
                "key",
                "a database input needs a key column: a query's rows may come in another "
                "order when a stopped run continues",
            )
        )
    if errors or spec is None:
        raise ApiError.invalid(sorted(errors, key=_in_order))
    return CheckedRun(stored, spec.output_names, found.total)
