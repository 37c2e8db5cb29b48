"""A run request checked whole before the run is created: a 422 lists every problem.

The input (an upload, or a database query probed for its columns), the mapping against the
input's columns, the placeholders, the outputs against the connector's response format, the
key column, the budget (prices, ``max_cost``, ``max_tokens``) and the rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...batch import DEFAULT_RATE, Rate
from ...batch.budget import Budget
from ...batch.scheduler import MAX_CONCURRENCY
from ...config import SourceConfig
from ...errors import ConfigurationError
from ...mapping import PayloadBuilder, default_outputs, get_path, output_names, parse_outputs
from ..connectors import ConnectorServices
from ..http import ApiError, FieldError
from ._inputs import DatabaseProbe, api_field, database_host, probe_database
from .executor import run_price
from .placeholders import placeholders_of
from .store import RunStore

__all__ = ["CheckedRun", "DatabaseIn", "RunIn", "probe_database_input", "validate_run"]

_DEFAULT_RATE = str(DEFAULT_RATE) if DEFAULT_RATE is not None else None


class RunIn(BaseModel):
    """A run to create for a saved connector."""

    input: dict[str, Any] = Field(
        description='{"upload_id": "..."} (an upload\'s id), or {"database": url, "query": sql}'
    )
    mapping: Any = Field(
        default=None, description="the platform's mapping list: [{name, value, value_type, type}]"
    )
    outputs: Any = Field(
        default=None,
        description='[{"name": path, "as": name, "parse": "json"}]; default: the string '
        "leaves of the response format",
    )
    key: str | None = Field(default=None, description="the column identifying a row")
    concurrency: int = Field(default=10, ge=1, le=MAX_CONCURRENCY)
    rate: str | None = Field(
        default=_DEFAULT_RATE, description='a rate limit such as "600/minute"; null: none'
    )
    prices: Any = Field(
        default=None,
        description='token prices, USD per million: "input=0.15,output=0.60[,cached_input=0.075]"'
        ' or {"input": 0.15, "output": 0.6, "cached_input": 0.075}; each result gets cost',
    )
    max_cost: float | None = Field(
        default=None, description="stop starting rows once the run spent this (USD; needs prices)"
    )
    max_tokens: int | None = Field(
        default=None, description="stop starting rows once the run used this many tokens"
    )
    placeholders: Any = Field(
        default=None,
        description='{"placeholder": "column"}: fill a {{placeholder}} of the request format '
        "from a column of another name",
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
        # The host is judged by the address policy before anything connects to it.
        host = await run_in_threadpool(database_host, clean.database)
        if host:
            shown = f"[{host}]" if ":" in host else host
            try:
                await services.check_address(f"tcp://{shown}", f"{at}database")
            except ApiError as exc:
                errors += exc.body.get("errors", [])
                return None
        found = await run_in_threadpool(probe_database, clean.database, clean.query, clean.params)
    except ConfigurationError as exc:
        field = api_field(exc).removeprefix("input.")
        errors.append(FieldError(f"{at}{field}", exc.reason))
        return None
    return found, clean


def _check_mapping(
    config: SourceConfig,
    mapping: Any,
    columns: list[str] | None,
    errors: list[FieldError],
    chosen: dict[str, str],
) -> None:
    try:
        builder = PayloadBuilder(config.request_format, mapping)
    except ConfigurationError as exc:
        errors.extend(_problems(exc, "mapping"))
        return
    if columns is None:
        return
    shown = ", ".join(map(repr, columns[:30])) or "none"
    placeholders = {c for c in builder.columns if c not in {i.value for i in builder.items}}
    for i, item in enumerate(builder.items):
        if not item.static and item.value not in columns:
            errors.append(
                FieldError(
                    f"mapping[{i}].value",
                    f"the input has no column {item.value!r} (its columns: {shown})",
                )
            )
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
    shown = ", ".join(map(repr, (columns or [])[:30])) or "none"
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
                FieldError(
                    f"placeholders.{placeholder}",
                    f"the input has no column {column!r} (its columns: {shown})",
                )
            )
    errors += problems
    return {} if problems else dict(given)


def _check_budget(body: RunIn, errors: list[FieldError]) -> None:
    if body.prices is not None:
        if not isinstance(body.prices, str | dict):
            errors.append(
                FieldError(
                    "prices",
                    'must be text such as "input=0.15,output=0.60" or an object such as '
                    '{"input": 0.15, "output": 0.60} (USD per million tokens)',
                )
            )
        else:
            try:
                run_price(body.prices)
            except ConfigurationError as exc:
                errors.append(FieldError("prices", exc.reason))
    try:
        Budget(max_cost=body.max_cost, max_tokens=body.max_tokens)
    except ConfigurationError as exc:
        errors.append(FieldError(exc.field or "max_cost", exc.reason))
    if body.max_cost is not None and body.prices is None:
        # Never silently ignored: a budget that cannot be counted would overspend.
        errors.append(
            FieldError(
                "max_cost",
                'needs prices to count the cost: add prices (e.g. "input=0.15,output=0.60", '
                "USD per million tokens), or leave max_cost out",
            )
        )


def _check_outputs(config: SourceConfig, outputs: Any, errors: list[FieldError]) -> list[str]:
    """The output names, after checking each path against the response format."""
    if outputs is None:
        return output_names(default_outputs(config.response_format))
    try:
        fields = parse_outputs(outputs)
    except ConfigurationError as exc:
        errors.extend(_problems(exc, "outputs"))
        return []
    for i, output in enumerate(fields):
        if get_path(config.response_format, output.path) is None:
            errors.append(
                FieldError(
                    f"outputs[{i}].name",
                    f"{output.source!r} is not a path of the connector's response format; "
                    "pick one of its leaves (or change the response format)",
                )
            )
    return output_names(fields)


def _problems(exc: ConfigurationError, prefix: str) -> list[FieldError]:
    if exc.problems:
        return [FieldError(p.field or prefix, p.message) for p in exc.problems]
    return [FieldError(exc.field or prefix, exc.reason)]


@dataclass(frozen=True)
class CheckedRun:
    """A run request found valid: the spec to store (no secret in clear), the names of its
    outputs, and the input's row count when it is known."""

    spec: dict[str, Any]
    output_names: list[str]
    total: int | None


async def validate_run(
    config: SourceConfig, body: RunIn, store: RunStore, services: ConnectorServices
) -> CheckedRun:
    """Check a run request whole against the saved connector's ``config`` (the input, the
    mapping against the input's columns, the outputs against the response format, the key
    column, the budget and the rate); the 422 ``ApiError`` lists every problem."""
    errors: list[FieldError] = []
    found = await _checked_input(store, services, body.input, errors)
    columns = found.columns
    chosen = _check_placeholders(config, body.placeholders, columns, errors)
    _check_mapping(config, body.mapping, columns, errors, chosen)
    output_names = _check_outputs(config, body.outputs, errors)
    if body.key is not None and columns is not None and body.key not in columns:
        shown = ", ".join(map(repr, columns[:30])) or "none"
        message = f"the input has no column {body.key!r} (its columns: {shown})"
        errors.append(FieldError("key", message))
    if found.encrypted_url is not None and body.key is None:
        errors.append(
            FieldError(
                "key",
                "a database input needs a key column: a query's rows may come in another "
                "order when a stopped run continues",
            )
        )
    _check_budget(body, errors)
    if body.rate is not None:
        try:
            Rate.parse(body.rate)
        except ConfigurationError as exc:
            errors.append(FieldError("rate", exc.reason))
    if errors:
        raise ApiError.invalid(errors)
    spec = {
        "input": found.public,
        "mapping": body.mapping,
        "outputs": body.outputs,
        "key": body.key,
        "concurrency": body.concurrency,
        "rate": body.rate,
        "prices": body.prices,
        "max_cost": body.max_cost,
        "max_tokens": body.max_tokens,
        "placeholders": chosen or None,
    }
    if found.encrypted_url is not None:
        spec["database_url_encrypted"] = found.encrypted_url
    return CheckedRun(spec, output_names, found.total)
