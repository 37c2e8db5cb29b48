"""A run's budget: stop starting rows once it has spent ``max_cost`` USD or ``max_tokens``.

Only what the endpoint reported counts: the usage of answers sent in this run (a cached
answer costs nothing). Rows in flight when the budget runs out finish and are written, so
a run may end a few rows past it; a resumed run starts with a fresh budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..apis import Usage
from ..errors import ConfigurationError

__all__ = ["Budget", "reported_tokens"]


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
    cost: float = 0.0
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
        self.cost += cost or 0.0
        self.tokens += tokens or 0

    @property
    def spent(self) -> str | None:
        """What ran out, in words (None while there is budget left).

        >>> b = Budget(max_tokens=100); b.add(None, 120); b.spent
        'spent 120 tokens of the --max-tokens budget of 100'
        """
        if self.max_cost is not None and self.cost >= self.max_cost:
            return f"spent ${self.cost:.4f} of the --max-cost budget of ${self.max_cost:.2f}"
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            return f"spent {self.tokens} tokens of the --max-tokens budget of {self.max_tokens}"
        return None
