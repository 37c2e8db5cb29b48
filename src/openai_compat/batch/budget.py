"""A run's budget: stop starting rows once it has spent ``max_cost`` USD or ``max_tokens``.

Only what the endpoint reported counts: the usage of answers sent in this run (a cached
answer costs nothing). Rows in flight when the budget runs out finish and are written, so
a run may end a few rows past it; a resumed run starts with a fresh budget.

Money is counted exactly, in `decimal.Decimal` (`usd`): in binary floating point ten
$0.10 rows add up to less than $1.00, and a budget of $1.00 would let an eleventh run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..apis import Usage
from ..errors import ConfigurationError

__all__ = ["COST_DIGITS", "Budget", "reported_tokens", "usd"]

# A cost is kept to this many decimal places of a dollar (a row's cost is rounded to it).
COST_DIGITS = 10


def usd(amount: float | Decimal | None) -> Decimal:
    """An amount of USD as the exact decimal it stands for (None: nothing).

    A float's shortest text is the decimal it was written as (costs have at most
    `COST_DIGITS` places), so the sum of these is the sum of the amounts as written.

    >>> sum([usd(0.1)] * 10) == usd(1.0), sum([0.1] * 10) == 1.0
    (True, False)
    """
    if amount is None:
        return Decimal(0)
    if isinstance(amount, Decimal):
        return amount
    return Decimal(repr(round(float(amount), COST_DIGITS)))


def reported_tokens(usage: Mapping[str, Any] | None) -> int | None:
    """The tokens an answer's usage reports (``total_tokens``, else prompt + completion).

    >>> reported_tokens({"prompt_tokens": 10, "completion_tokens": 3}), reported_tokens(None)
    (13, None)
    """
    counts = Usage.parse(usage)
    return None if counts is None else counts.tokens


@dataclass(slots=True)
class Budget:
    """The limits (None: none) and what was spent so far."""

    max_cost: float | None = None
    max_tokens: int | None = None
    cost: Decimal = field(default_factory=Decimal)
    tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_cost is not None:
            if isinstance(self.max_cost, bool) or not (
                isinstance(self.max_cost, int | float)
                and math.isfinite(self.max_cost)
                and self.max_cost > 0
            ):
                raise ConfigurationError(
                    f"must be a number of USD above 0, got {self.max_cost!r}", field="max_cost"
                )
            self.max_cost = float(self.max_cost)
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens < 1
        ):
            raise ConfigurationError(
                f"must be a whole number of tokens, 1 or more, got {self.max_tokens!r}",
                field="max_tokens",
            )

    @property
    def limited(self) -> bool:
        """True when there is a limit at all."""
        return self.max_cost is not None or self.max_tokens is not None

    def add(self, cost: float | None, tokens: int | None) -> None:
        """Count one answer of this run."""
        self.cost += usd(cost)
        self.tokens += tokens or 0

    @property
    def spent(self) -> str | None:
        """What ran out, in words (None while there is budget left).

        >>> b = Budget(max_tokens=100); b.add(None, 120); b.spent
        'spent 120 tokens of the --max-tokens budget of 100'
        """
        if self.max_cost is not None and self.cost >= usd(self.max_cost):
            return f"spent ${self.cost:.4f} of the --max-cost budget of ${self.max_cost:.2f}"
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            return f"spent {self.tokens} tokens of the --max-tokens budget of {self.max_tokens}"
        return None
