"""What the response cache, prices and a budget add to a run, in one place for the engine.

`RowAccounting` is made from a run's `RunSpec` (``cache``, ``cache_mode``, ``prices``,
``max_cost``, ``max_tokens``, checked there) only when one of them is set: a run without
them pays nothing for this. It looks a request up in the cache, stores a successful
answer, prices an answer, gives every result line the same added keys (``cached``,
``cost``), and counts what the run spent against its budget.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .budget import Budget, reported_tokens
from .cache import CachedAnswer, ResponseCache
from .cost import Prices
from .results import BatchResult, BatchSummary
from .spec import RunSpec

__all__ = ["RowAccounting", "make_cache"]

_WRITE_BATCH = 64


def make_cache(cache: str | os.PathLike[str] | ResponseCache, mode: str | None) -> ResponseCache:
    """A run's ``cache`` option (checked by its `RunSpec`) as an open cache."""
    if isinstance(cache, ResponseCache):
        if mode is not None and mode != cache.mode:
            cache = ResponseCache(cache.path, mode, timeout_s=cache.timeout_s)
        opened: ResponseCache = cache.open()
        return opened
    # A run stores its answers 64 at a time (or after a second): one transaction each.
    return ResponseCache(cache, mode or "read-write", write_batch=_WRITE_BATCH).open()


class RowAccounting:
    """The cache, the prices and the budget of one run (any of them may be None)."""

    def __init__(
        self,
        url: str,
        summary: BatchSummary,
        notice: Callable[[str], None],
        *,
        cache: ResponseCache | None,
        prices: Prices | None,
        budget: Budget,
    ) -> None:
        self.url = url
        self.summary = summary
        self.cache = cache
        self.prices = prices
        self.budget = budget
        self._notice = notice
        self._told: set[str] = set()
        # Why some answers have no cost or tokens counted, once each (the application says
        # so in the run: its budget could not count them).
        self.uncounted: list[str] = []
        if prices is not None:
            summary.cost = 0.0

    @classmethod
    def from_spec(
        cls, spec: RunSpec, summary: BatchSummary, notice: Callable[[str], None]
    ) -> RowAccounting | None:
        """The accounting of a run, or None when it asks for no cache, prices or budget."""
        prices = spec.price_table
        budget = Budget(spec.max_cost, spec.max_tokens)
        if spec.cache is None and prices is None and not budget.limited:
            return None
        cache = None if spec.cache is None else make_cache(spec.cache, spec.cache_mode)
        return cls(spec.config.url, summary, notice, cache=cache, prices=prices, budget=budget)

    def _tell_once(self, topic: str, message: str) -> None:
        if topic not in self._told:
            self._told.add(topic)
            if topic in ("price", "usage"):
                self.uncounted.append(message)
            self._notice(message)

    # -- the cache --------------------------------------------------------------------------
    @property
    def cache_reads(self) -> bool:
        """True when requests are looked up before they are sent."""
        return self.cache is not None and self.cache.reads

    def lookup(self, bodies: Sequence[Mapping[str, Any]]) -> list[CachedAnswer | None]:
        """The stored answers to ``bodies``, in order (None: none, or the file failed)."""
        assert self.cache is not None
        try:
            return self.cache.get_many(self.url, bodies)
        except (sqlite3.Error, ValueError) as exc:
            self._tell_once("read", f"the cache file {self.cache.path} cannot be read ({exc})")
            return [None] * len(bodies)

    def store(self, body: Mapping[str, Any], response: Mapping[str, Any], request_id: Any) -> None:
        """Keep a successful answer (a failed write costs only the cache entry)."""
        if self.cache is None or not self.cache.writes:
            return
        try:
            self.cache.put(self.url, body, response, request_id=request_id)
        except (sqlite3.Error, ValueError) as exc:
            self._tell_once("write", f"an answer could not be stored in {self.cache.path} ({exc})")

    def close(self) -> None:
        """Store the answers kept back and close the cache file."""
        if self.cache is None:
            return
        try:
            self.cache.close()
        except (sqlite3.Error, ValueError) as exc:
            self._tell_once("write", f"answers could not be stored in {self.cache.path} ({exc})")

    # -- results ----------------------------------------------------------------------------
    def price(self, result: BatchResult, response: Mapping[str, Any], payload: Any) -> None:
        """Set ``result.cost`` for an answer sent in this run."""
        if self.prices is None:
            return
        result.cost = self.prices.cost(response, payload if isinstance(payload, Mapping) else {})
        if result.cost is None:
            model = response.get("model") or (payload or {}).get("model")
            self._tell_once(
                "price",
                f"no cost for answers of model {model!r}: no price for it, or the endpoint "
                "reported no token usage (for streamed answers: stream_options.include_usage)",
            )

    def complete(self, result: BatchResult) -> None:
        """Give ``result`` the keys every line of this run has (``cached``, ``cost``)."""
        if self.cache is not None and result.cached is None:
            result.cached = False
        if self.prices is not None and not result.has_cost:
            result.cost = 0.0

    def count(self, result: BatchResult) -> str | None:
        """Count a finished row against the budget; what ran out, once it has."""
        if result.cached:
            return None
        tokens = reported_tokens(result.usage)
        if tokens is None and result.attempts and result.error is None and self.budget.limited:
            self._tell_once(
                "usage",
                "the endpoint reported no token usage for an answer, so the budget cannot count "
                "it (for streamed answers, ask for it: stream_options.include_usage)",
            )
        self.budget.add(result.cost if result.has_cost else None, tokens)
        return self.budget.spent if self.budget.limited else None
