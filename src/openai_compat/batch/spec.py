"""`RunSpec`: what a run sends and how, typed and checked once for every engine and door.

The local engine (`BatchRun`), Ray's and Spark's ``map_endpoint`` and their command lines
all build one before any request, so a mistake gets one message wherever it is made, and
every problem of the options is found at once (``ConfigurationError.problems``).

>>> spec = RunSpec.build({"url": "http://127.0.0.1:8080/v1/chat/completions"},
...                      key="id", concurrency=4, rate="600/minute")
>>> spec.concurrency, str(spec.rate), spec.output_names[-1]
(4, '600/minute', 'choices.0.finish_reason')
>>> spec.check_columns(["id", "text"])
>>> try:
...     RunSpec.build({"url": "http://127.0.0.1:8080/v1/chat/completions"},
...                   concurrency=0, rate="fast")
... except ConfigurationError as exc:
...     for problem in exc.problems:
...         print(f"{problem.field}: {problem.message}")
concurrency: must be 1 to 10000 (requests in flight at once), got 0
rate: must look like 600/minute, 10/second or 5000/hour (or off), got 'fast'
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..apis import EMBEDDINGS
from ..config import SourceConfig
from ..errors import ConfigurationError, FieldProblem
from ..mapping import OutputField, PayloadBuilder, output_fields, output_names
from ..structured import ColumnType, Schema, Structured, schema_field
from ._structured_cli import schema_options
from ._structured_spec import check_reasks, schema_outputs, schema_types, structured_schema
from .budget import Budget
from .cache import CACHE_MODES, ResponseCache
from .cost import Prices, parse_prices
from .keys import Shard
from .results import flat_columns
from .scheduler import DEFAULT_CONCURRENCY, DEFAULT_RATE, MAX_CONCURRENCY, Rate
from .throughput import DEFAULT_MAX_CONCURRENCY, adaptive_concurrency, token_rate

__all__ = ["SPEC_OPTIONS", "RunSpec", "missing_column", "shown_columns"]

_SHOWN_COLUMNS = 20
#: Rows per embeddings request unless ``rows_per_request`` says otherwise.
DEFAULT_EMBEDDINGS_ROWS = 64
#: OpenAI's limit of inputs in one embeddings request.
MAX_ROWS_PER_REQUEST = 2048


def missing_column(column: str, columns: Sequence[str], where: str = "the input") -> str:
    """The one message for a column ``where`` lacks, naming the columns it has.

    >>> missing_column("ID", ["id", "text"])
    "the input has no column 'ID' (its columns: 'id', 'text')"
    """
    return f"{where} has no column {column!r} (its columns: {shown_columns(columns)})"


def shown_columns(columns: Sequence[str]) -> str:
    """The first columns of an input, quoted, for a message.

    >>> shown_columns(["id", "text"]), shown_columns([])
    ("'id', 'text'", 'none')
    """
    return ", ".join(map(repr, columns[:_SHOWN_COLUMNS])) or "none"


# The run option is called ``schema`` at every door; pydantic's deprecated ``BaseModel.schema()``
# method it shadows is not used.
warnings.filterwarnings("ignore", message='Field name "schema" in "RunSpec"', category=UserWarning)


class RunSpec(BaseModel):
    """The options of a run that hold wherever it runs.

    ``mapping`` and ``outputs`` are kept as given (the engines ship them to their workers)
    and checked against ``config``; `payload_builder` and `output_fields` are what they
    mean. Engine-specific options (Ray's actors, Spark's partitions) and where rows come
    from or go are not here: each engine checks its own.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    config: SourceConfig
    mapping: Any = None
    outputs: Any = None
    key: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    rate: Rate | None = DEFAULT_RATE
    # Tokens a minute (`batch.throughput`); None: not limited here (the server's headers are
    # still heeded).
    token_rate: Rate | None = None
    # ``concurrency="auto"``: the limit adapts, up to ``max_concurrency`` (then `concurrency`).
    concurrency_auto: bool = False
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    shard: Shard | None = None
    include_input: bool = False
    include_response: bool = False
    # As given (text, an object, a `Prices`): `price_table` is what they mean.
    prices: Any = None
    max_cost: float | None = None
    max_tokens: int | None = None
    # A cache file's path or a `ResponseCache`; the mode one of `CACHE_MODES`.
    cache: Any = None
    cache_mode: str | None = None
    # Rows per embeddings request (None: `pack_size`'s default).
    rows_per_request: int | None = None
    # Structured outputs: a JSON Schema (or OpenAI's wrapper, a file, a pydantic model), how
    # to ask for it (`openai_compat.structured.MODES`) and how many re-asks.
    schema: Any = None
    schema_mode: str | None = None
    reasks: int | None = None
    # What the mapping, outputs and prices mean, kept from their check so each is built once.
    _payload_builder: PayloadBuilder | None = PrivateAttr(default=None)
    _output_fields: list[OutputField] | None = PrivateAttr(default=None)
    _prices: Prices | None = PrivateAttr(default=None)

    @classmethod
    def build(cls, config: SourceConfig | dict[str, Any] | str, **options: Any) -> RunSpec:
        """Check ``config`` and ``options``; every problem found is in the error's
        ``problems``, the first one its message. Options left out (or None, except
        ``rate``: None is no limit) get their defaults."""
        given = {
            name: value for name, value in options.items() if value is not None or name == "rate"
        }
        built: dict[str, Any] = {}
        try:
            spec = cls.model_validate({"config": config, **given}, context=built)
        except ValidationError as exc:
            raise _configuration_error(exc) from None
        spec._payload_builder = built.get("payload_builder")
        spec._output_fields = built.get("output_fields")
        spec._prices = built.get("prices")
        if spec.schema is not None and spec.outputs is None:
            spec._output_fields = schema_outputs(spec.schema_value)
        return spec

    @classmethod
    def from_arguments(
        cls, config: Any, args: argparse.Namespace, mapping: Any, outputs: Any
    ) -> RunSpec:
        """The spec of ``openai-compat batch``'s parsed ``args`` (``--rate`` left out or
        empty: no limit), with the ``--mapping`` and ``--outputs`` files' contents."""
        return cls.build(
            config,
            mapping=mapping,
            outputs=outputs,
            key=args.key,
            concurrency=args.concurrency,
            rate=args.rate or None,
            **schema_options(args),
        )

    @model_validator(mode="before")
    @classmethod
    def _auto(cls, data: Any) -> Any:
        return adaptive_concurrency(data, MAX_CONCURRENCY)

    @field_validator("token_rate", mode="before")
    @classmethod
    def _token_rate(cls, value: Any) -> Rate | None:
        return token_rate(value)

    @field_validator("max_concurrency", mode="before")
    @classmethod
    def _max_concurrency(cls, value: Any) -> int:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not whole or not 1 <= value <= MAX_CONCURRENCY:
            raise ConfigurationError(
                f"must be 1 to {MAX_CONCURRENCY} (the most requests in flight that "
                f"--concurrency auto may reach), got {value!r}",
                field="max_concurrency",
            )
        return int(value)

    @field_validator("config", mode="before")
    @classmethod
    def _config(cls, value: Any) -> SourceConfig:
        return SourceConfig.parse(value)

    @field_validator("mapping", mode="after")
    @classmethod
    def _mapping(cls, value: Any, info: ValidationInfo) -> Any:
        config = info.data.get("config")
        if config is not None:
            builder = PayloadBuilder(config.request_format, value)
            if info.context is not None:
                info.context["payload_builder"] = builder
        return value

    @field_validator("outputs", mode="after")
    @classmethod
    def _outputs(cls, value: Any, info: ValidationInfo) -> Any:
        config = info.data.get("config")
        if config is not None:
            fields = output_fields(value, config.response_format, config.dialect)
            if info.context is not None:
                info.context["output_fields"] = fields
        return value

    @field_validator("key", mode="before")
    @classmethod
    def _key(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise ConfigurationError("must name a column of the input", field="key")
        return value

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> int:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not whole or not 1 <= value <= MAX_CONCURRENCY:
            raise ConfigurationError(
                f"must be 1 to {MAX_CONCURRENCY} (requests in flight at once), got {value!r}",
                field="concurrency",
            )
        return int(value)

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Rate | None:
        if value is None or isinstance(value, Rate):
            return value
        if not isinstance(value, str):
            raise ConfigurationError(
                f'must be a rate such as "600/minute", got {value!r}', field="rate"
            )
        return Rate.parse(value)

    @field_validator("shard", mode="before")
    @classmethod
    def _shard(cls, value: Any) -> Shard:
        if isinstance(value, Shard):
            return value
        return Shard.parse(value if isinstance(value, str) else repr(value))

    @field_validator("include_input", "include_response", mode="before")
    @classmethod
    def _flag(cls, value: Any, info: ValidationInfo) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"must be true or false, got {value!r}", field=info.field_name)
        return value

    @field_validator("prices", mode="after")
    @classmethod
    def _prices_(cls, value: Any, info: ValidationInfo) -> Any:
        table = parse_prices(value)
        if info.context is not None:
            info.context["prices"] = table
        return value

    @field_validator("max_cost", mode="before")
    @classmethod
    def _max_cost(cls, value: Any, info: ValidationInfo) -> float:
        cost = Budget(max_cost=value).max_cost
        assert cost is not None
        # Never silently ignored: a budget that cannot be counted would overspend. (When
        # the prices themselves are wrong, that is their problem, reported on its own.)
        if "prices" in info.data and info.data["prices"] is None:
            raise ConfigurationError(
                "a cost budget needs prices to count the cost: give prices (e.g. "
                '"input=0.15,output=0.60", USD per million tokens), or leave max_cost out',
                field="max_cost",
            )
        return cost

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _max_tokens(cls, value: Any) -> int:
        tokens = Budget(max_tokens=value).max_tokens
        assert tokens is not None
        return tokens

    @field_validator("cache", mode="before")
    @classmethod
    def _cache(cls, value: Any) -> Any:
        if not isinstance(value, str | os.PathLike | ResponseCache):
            raise ConfigurationError(
                f"must be the path of a cache file or a ResponseCache, got {type(value).__name__}",
                field="cache",
            )
        return value

    @field_validator("cache_mode", mode="before")
    @classmethod
    def _cache_mode(cls, value: Any, info: ValidationInfo) -> str:
        if value not in CACHE_MODES:
            raise ConfigurationError(
                f"must be one of {', '.join(CACHE_MODES)}, got {value!r}", field="cache_mode"
            )
        if "cache" in info.data and info.data["cache"] is None:
            raise ConfigurationError(
                "a cache mode needs a cache file: give cache too, or leave cache_mode out",
                field="cache_mode",
            )
        return str(value)

    @field_validator("rows_per_request", mode="before")
    @classmethod
    def _rows_per_request(cls, value: Any, info: ValidationInfo) -> int:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not whole or not 1 <= value <= MAX_ROWS_PER_REQUEST:
            raise ConfigurationError(
                f"must be 1 to {MAX_ROWS_PER_REQUEST} (rows whose inputs share one embeddings "
                f"request), got {value!r}",
                field="rows_per_request",
            )
        config = info.data.get("config")
        if value > 1 and config is not None and config.dialect is not EMBEDDINGS:
            raise ConfigurationError(
                f"packs rows only into embeddings requests; the URL {config.url} is a "
                f"{config.dialect.label} URL (one row per request): leave it out, or set "
                '"api": "embeddings" in the configuration',
                field="rows_per_request",
            )
        return int(value)

    @property
    def pack_size(self) -> int:
        """Rows per request: ``rows_per_request``, else 64 for embeddings and 1 otherwise."""
        if self.rows_per_request is not None:
            return self.rows_per_request
        return DEFAULT_EMBEDDINGS_ROWS if self.config.dialect is EMBEDDINGS else 1

    @field_validator("schema", mode="after")
    @classmethod
    def _schema(cls, value: Any, info: ValidationInfo) -> Any:
        structured_schema(value)
        config = info.data.get("config")
        if config is not None:
            schema_field(config.dialect.name)
        return value

    @field_validator("schema_mode", "reasks", mode="before")
    @classmethod
    def _schema_options(cls, value: Any, info: ValidationInfo) -> Any:
        # A schema that failed its own check is reported there, not as missing here.
        has_schema = "schema" not in info.data or info.data["schema"] is not None
        return check_reasks(info.field_name or "", value, has_schema)

    @property
    def schema_value(self) -> Schema:
        """The checked schema (``schema`` must be set)."""
        return structured_schema(self.schema)

    def structured(self) -> Structured | None:
        """A run's structured outputs (its mode and counts are the run's), or None."""
        if self.schema is None:
            return None
        return Structured(
            self.schema_value,
            mode=self.schema_mode or "auto",
            reasks=2 if self.reasks is None else self.reasks,
            api=self.config.dialect.name,
        )

    @property
    def output_types(self) -> dict[str, ColumnType]:
        """The column type of each output the schema types (the others are text)."""
        if self.schema is None:
            return {}
        return schema_types(self.schema_value, self.output_fields)

    @property
    def price_table(self) -> Prices | None:
        """What ``prices`` mean (None: no prices)."""
        if self._prices is None and self.prices is not None:
            self._prices = parse_prices(self.prices)
        return self._prices

    @property
    def payload_builder(self) -> PayloadBuilder:
        """What turns a row into its payload."""
        if self._payload_builder is None:
            self._payload_builder = PayloadBuilder(self.config.request_format, self.mapping)
        return self._payload_builder

    @property
    def output_fields(self) -> list[OutputField]:
        """The fields picked out of every answer."""
        if self._output_fields is None:
            self._output_fields = output_fields(
                self.outputs, self.config.response_format, self.config.dialect
            )
        return self._output_fields

    @property
    def output_names(self) -> list[str]:
        """The names of the output fields, in order."""
        return output_names(self.output_fields)

    def check_columns(self, columns: Sequence[str], where: str = "the input") -> None:
        """Refuse a key column ``columns`` lacks (`missing_column`'s message)."""
        if self.key is not None and self.key not in columns:
            raise ConfigurationError(missing_column(self.key, columns, where), field="key")

    def check_table(self, columns: Sequence[str], *, lines: bool = False) -> None:
        """Refuse, before any request, what a table of results (Ray's, Spark's) cannot
        hold: a key column the input lacks, and, with the input columns beside the flat
        results (``include_input`` without ``lines``), a result column of the same name as
        one of them.

        >>> spec = RunSpec.build({"url": "http://127.0.0.1:8080/v1/chat/completions"},
        ...                      include_input=True)
        >>> spec.check_table(["id", "attempts"])
        Traceback (most recent call last):
        openai_compat.errors.ConfigurationError: outputs: the result column(s) 'attempts' would \
overwrite input column(s) of the same name: rename the outputs ({"name": ..., "as": ...}) or \
leave the input columns out
        """
        self.check_columns(columns)
        if not self.include_input or lines:
            return
        taken = set(columns)
        clashes = [
            name
            for name, _ in flat_columns(self.output_names, include_response=self.include_response)
            if name in taken
        ]
        if clashes:
            raise ConfigurationError(
                f"the result column(s) {', '.join(map(repr, clashes))} would overwrite input "
                'column(s) of the same name: rename the outputs ({"name": ..., "as": ...}) or '
                "leave the input columns out",
                field="outputs",
            )


#: The options a `RunSpec` holds (every field but ``config``).
SPEC_OPTIONS: tuple[str, ...] = tuple(name for name in RunSpec.model_fields if name != "config")


def _configuration_error(exc: ValidationError) -> ConfigurationError:
    """Pydantic's report as ours: each problem with its field and our words."""
    problems: list[FieldProblem] = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "options"
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigurationError):
            problems.extend(cause.problems or [FieldProblem(cause.field or field, cause.reason)])
        elif error["type"] == "extra_forbidden":
            problems.append(FieldProblem(field, "is not an option of a run"))
        else:
            problems.append(FieldProblem(field, error["msg"]))
    first = problems[0]
    return ConfigurationError(first.message, field=first.field, problems=problems)
