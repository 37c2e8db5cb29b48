"""What a row cost: token prices (USD per million tokens), one for all models or per model.

``--price input=0.15,output=0.60[,cached_input=0.075]`` gives one `Price`; ``--prices FILE``
a JSON object of model name to price (each an object of the same names, or that text). The
cost of an answer is computed from the usage the endpoint reported: prompt tokens (those it
reports as cached, ``usage.prompt_tokens_details.cached_tokens``, at ``cached_input`` when
given) and completion tokens.

A price is at most `MAX_RATE` USD per million tokens (a dollar a token: far above any
model's) and a token count at most `MAX_TOKENS`: a cost is always a finite number, counted
exactly (in `decimal.Decimal`, then rounded to ``COST_DIGITS`` places of a dollar).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..apis import Usage
from ..errors import ConfigurationError
from .budget import COST_DIGITS

__all__ = ["MAX_RATE", "MAX_TOKENS", "Price", "Prices", "parse_prices"]

# The largest price, in USD per million tokens, and the largest token count an answer's
# usage may report to be priced (a larger one is not a real count: it is not priced).
MAX_RATE = 1_000_000
MAX_TOKENS = 10**15
_ONE_MILLION = Decimal(1_000_000)
_QUANTUM = Decimal(1).scaleb(-COST_DIGITS)

_NAMES = ("input", "output", "cached_input")
_ITEM = re.compile(r"\s*([a-z_]+)\s*=\s*([^,]+?)\s*")
_EXAMPLE = "input=0.15,output=0.60[,cached_input=0.075] (USD per million tokens)"
_SHAPES = (
    'must be text such as "input=0.15,output=0.60", an object such as '
    '{"input": 0.15, "output": 0.60}, or an object of model name to such prices, e.g. '
    '{"gpt-4o-mini": {"input": 0.15, "output": 0.60}} (USD per million tokens)'
)


def _count(value: int | None) -> int | None:
    return value if value is not None and 0 <= value <= MAX_TOKENS else None


def _exact(rate: float) -> Decimal:
    return Decimal(repr(rate))


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(f"{name} must be a number, got {value!r}", field="prices")
    try:
        rate = float(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a number, got {value!r}", field="prices"
        ) from None
    if not math.isfinite(rate) or rate < 0:
        raise ConfigurationError(
            f"{name} must be 0 or more (USD per million tokens), got {value!r}", field="prices"
        )
    if rate > MAX_RATE:
        raise ConfigurationError(
            f"{name} must be at most {MAX_RATE} USD per million tokens (a dollar a token), "
            f"got {value!r}",
            field="prices",
        )
    return rate


@dataclass(frozen=True, slots=True)
class Price:
    """Prices in USD per million tokens; ``cached_input`` None: cached tokens cost ``input``."""

    input: float
    output: float
    cached_input: float | None = None

    @classmethod
    def parse(cls, text: str) -> Price:
        """``"input=0.15,output=0.60[,cached_input=0.075]"`` as a `Price`.

        >>> Price.parse("input=0.15,output=0.60")
        Price(input=0.15, output=0.6, cached_input=None)
        """
        values: dict[str, Any] = {}
        for item in str(text).split(","):
            match = _ITEM.fullmatch(item)
            if match is None:
                raise ConfigurationError(
                    f"cannot read {item.strip()!r}; write {_EXAMPLE}", field="prices"
                )
            values[match.group(1)] = match.group(2)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Price:
        """A `Price` from ``{"input": ..., "output": ..., "cached_input": ...}``."""
        unknown = sorted(set(values) - set(_NAMES))
        if unknown:
            raise ConfigurationError(
                f"unknown price {', '.join(unknown)}; write {_EXAMPLE}", field="prices"
            )
        missing = [name for name in ("input", "output") if name not in values]
        if missing:
            raise ConfigurationError(
                f"no {' and no '.join(missing)} price; write {_EXAMPLE}", field="prices"
            )
        cached = values.get("cached_input")
        return cls(
            _rate(values["input"], "input"),
            _rate(values["output"], "output"),
            None if cached is None else _rate(cached, "cached_input"),
        )

    def cost(self, usage: Mapping[str, Any] | None) -> float | None:
        """The cost in USD of an answer's ``usage``; None when it reports no token counts.

        >>> Price(0.15, 0.60, 0.075).cost({"prompt_tokens": 1000, "completion_tokens": 100,
        ...     "prompt_tokens_details": {"cached_tokens": 400}})
        0.00018
        """
        counts = Usage.parse(usage)
        if counts is None:
            return None
        prompt = _count(counts.input)
        completion = _count(counts.output)
        if prompt is None and completion is None:
            return None
        if (counts.input is not None and prompt is None) or (
            counts.output is not None and completion is None
        ):
            return None  # a count past MAX_TOKENS: not priced, rather than priced wrong
        prompt = prompt or 0
        cached = min(_count(counts.cached) or 0, prompt)
        rate = _exact(self.input)
        cached_rate = rate if self.cached_input is None else _exact(self.cached_input)
        micro = (
            (prompt - cached) * rate
            + cached * cached_rate
            + (completion or 0) * _exact(self.output)
        )
        return float((micro / _ONE_MILLION).quantize(_QUANTUM))


class Prices:
    """One `Price` for every model (``default``), or a price per model name.

    A model is found by the answer's ``model``, then the request's, then the longest name
    the answer's model starts with (``gpt-4o-mini`` prices ``gpt-4o-mini-2024-07-18``), then
    ``"*"`` in the file, if given.
    """

    def __init__(self, default: Price | None = None, by_model: Mapping[str, Price] | None = None):
        self.default = default
        self.by_model = dict(by_model or {})
        if "*" in self.by_model and self.default is None:
            self.default = self.by_model.pop("*")
        self._longest_first = sorted(self.by_model, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"Prices(default={self.default!r}, models={sorted(self.by_model)!r})"

    @classmethod
    def from_mapping(cls, table: Any) -> Prices:
        """Prices from ``{"model": {"input": ..., "output": ...} or "input=...,output=..."}``."""
        if not isinstance(table, Mapping) or not table:
            raise ConfigurationError(_SHAPES, field="prices")
        by_model: dict[str, Price] = {}
        for model, value in table.items():
            try:
                if isinstance(value, str):
                    by_model[str(model)] = Price.parse(value)
                elif isinstance(value, Mapping):
                    by_model[str(model)] = Price.from_mapping(value)
                else:
                    raise ConfigurationError(
                        f'must be an object such as {{"input": 0.15, "output": 0.60}}, '
                        f"got {value!r}",
                        field="prices",
                    )
            except ConfigurationError as exc:
                raise ConfigurationError(f"model {model!r}: {exc.reason}", field="prices") from None
        return cls(None, by_model)

    def price_of(self, *models: Any) -> Price | None:
        """The price of the first of ``models`` (names, or None) that has one."""
        names = [m for m in models if isinstance(m, str) and m]
        for name in names:
            if name in self.by_model:
                return self.by_model[name]
        for name in names:
            for known in self._longest_first:
                if name.startswith(known):
                    return self.by_model[known]
        return self.default

    def cost(self, response: Mapping[str, Any], payload: Mapping[str, Any]) -> float | None:
        """What ``response`` cost (None: no price for its model, or no usage reported)."""
        price = self.price_of(response.get("model"), payload.get("model"))
        if price is None:
            return None
        usage = response.get("usage")
        return price.cost(usage if isinstance(usage, Mapping) else None)


def parse_prices(prices: Any) -> Prices | None:
    """The ``prices`` option as `Prices`: a `Prices`, a `Price`, price text, the same
    names as an object (one price for every model), an object of model name to prices,
    or None.

    >>> parse_prices("input=1,output=2").price_of("any-model")
    Price(input=1.0, output=2.0, cached_input=None)
    >>> parse_prices({"input": 1, "output": 2}).price_of("any-model")
    Price(input=1.0, output=2.0, cached_input=None)
    >>> parse_prices({"gpt-4o": "input=1,output=2"}).price_of("gpt-4o-2024-08-06")
    Price(input=1.0, output=2.0, cached_input=None)
    """
    if prices is None or isinstance(prices, Prices):
        return prices
    if isinstance(prices, Price):
        return Prices(prices)
    if isinstance(prices, str):
        return Prices(Price.parse(prices))
    if isinstance(prices, Mapping) and prices and set(prices) <= set(_NAMES):
        return Prices(Price.from_mapping(prices))
    if not isinstance(prices, Mapping):
        raise ConfigurationError(_SHAPES, field="prices")
    return Prices.from_mapping(prices)
