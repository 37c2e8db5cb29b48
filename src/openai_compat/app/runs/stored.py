"""A run as it is stored: its options as given (JSON), read back as the run's `RunSpec`.

The options are kept as the request wrote them (a ``rate`` of "10/s" is shown as "10/s",
``prices`` as text or an object) and checked by building the run's `RunSpec` from them
before the run is created; the executor builds it again, with the connector's
configuration, when it runs. Besides the spec's options a run keeps where its rows come
from (``input``: an upload, or a query and the database URL, encrypted), which column fills
each placeholder, and what it had spent when it was last resumed (its budget counts from
there).

>>> stored = StoredRun(input={"upload_id": "u1"}, key="id", rate="10/s", prices="input=1,output=2")
>>> spec = stored.run_spec({"url": "http://127.0.0.1:8080/v1/chat/completions"})
>>> spec.key, str(spec.rate), spec.prices
('id', '10/second', 'input=1,output=2')
>>> StoredRun.model_validate(stored.to_json()) == stored
True
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict

from ...batch.scheduler import DEFAULT_CONCURRENCY
from ...batch.spec import RunSpec
from ...config import SourceConfig

__all__ = ["BudgetFrom", "StoredRun"]

# The options of the run's `RunSpec` a run request may give.
_SPEC_OPTIONS = (
    "mapping",
    "outputs",
    "key",
    "concurrency",
    "rate",
    "token_rate",
    "max_concurrency",
    "prices",
    "max_cost",
    "max_tokens",
    "schema",
    "schema_mode",
    "reasks",
)


class BudgetFrom(BaseModel):
    """What a run had spent when it was resumed: its budget counts from here."""

    model_config = ConfigDict(frozen=True)

    cost: float = 0.0
    tokens: int = 0


# ``schema`` as at every door; pydantic's deprecated ``BaseModel.schema()`` is not used.
warnings.filterwarnings(
    "ignore", message='Field name "schema" in "StoredRun"', category=UserWarning
)


class StoredRun(BaseModel):
    """The stored request of a run (the ``spec`` column)."""

    # A row written by an older version may hold names this one no longer reads.
    model_config = ConfigDict(frozen=True, extra="ignore")

    input: dict[str, Any]
    mapping: Any = None
    outputs: Any = None
    key: str | None = None
    concurrency: int | str = DEFAULT_CONCURRENCY
    rate: str | None = None
    token_rate: str | None = None
    max_concurrency: int | None = None
    prices: Any = None
    max_cost: float | None = None
    max_tokens: int | None = None
    placeholders: dict[str, str] | None = None
    database_url_encrypted: str | None = None
    budget_from: BudgetFrom | None = None
    schema: Any = None
    schema_mode: str | None = None
    reasks: int | None = None
    # "openai-batch": the run is a batch of the Batches API, its results stored as OpenAI's
    # output lines; None: the CLI's result lines.
    result_lines: str | None = None

    def run_spec(self, config: SourceConfig | dict[str, Any], **changes: Any) -> RunSpec:
        """The run's `RunSpec` against the connector's ``config``, with ``changes`` to its
        options (what is left of a budget); ConfigurationError when they no longer fit it."""
        options = {name: getattr(self, name) for name in _SPEC_OPTIONS}
        if self.result_lines is not None:
            # OpenAI's output line carries the whole answer (its response.body).
            options["include_response"] = True
        return RunSpec.build(config, **{**options, **changes})

    def to_json(self) -> dict[str, Any]:
        """The JSON to store (the app-only fields only when set)."""
        data = self.model_dump(mode="json")
        for name in ("database_url_encrypted", "budget_from", "result_lines"):
            if data[name] is None:
                del data[name]
        return data
