"""``Usage``: the token counts an answer reports, read once for every consumer.

Servers name the counts two ways: chat completions, completions and embeddings say
``prompt_tokens`` / ``completion_tokens`` (cached ones under ``prompt_tokens_details``,
reasoning under ``completion_tokens_details``); the Responses API says ``input_tokens`` /
``output_tokens`` (with ``input_tokens_details`` / ``output_tokens_details``). Both spellings
are read here, so cost, budgets, summaries, metrics and every engine count the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]


def _count(value: Any) -> int | None:
    # A count is an integer; JSON's true/false are not (Python's bool is an int). The exact
    # type is asked first: a usage is read for every result of a run.
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


def _is_mapping(value: Any) -> bool:
    # A dict is asked first: an ABC's isinstance costs a lookup that every row would pay.
    return type(value) is dict or isinstance(value, Mapping)


def _first(usage: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = _count(usage.get(name))
        if value is not None:
            return value
    return None


def _detail(usage: Mapping[str, Any], name: str, *groups: str) -> int | None:
    for group in groups:
        details = usage.get(group)
        if details is not None and _is_mapping(details):
            value = _count(details.get(name))
            if value is not None:
                return value
    return None


@dataclass(frozen=True, slots=True)
class Usage:
    """The token counts of one answer, as reported (None: the server did not say).

    ``input`` and ``output`` are the prompt and completion tokens, ``cached`` the input
    tokens served from the provider's prompt cache (part of ``input``), ``reasoning`` the
    output tokens spent reasoning (part of ``output``), ``total`` the reported total.

    >>> Usage.parse({"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
    ...              "prompt_tokens_details": {"cached_tokens": 4}})
    Usage(input=10, output=3, cached=4, reasoning=None, total=13)
    >>> Usage.parse({"input_tokens": 7, "output_tokens": 2}).tokens
    9
    >>> Usage.parse(None) is None
    True
    """

    input: int | None = None
    output: int | None = None
    cached: int | None = None
    reasoning: int | None = None
    total: int | None = None

    @classmethod
    def parse(cls, usage: Any) -> Usage | None:
        """The counts of an answer's ``usage`` object; None when it is missing or empty."""
        if not usage or not _is_mapping(usage):
            return None
        return cls(
            input=_first(usage, "prompt_tokens", "input_tokens"),
            output=_first(usage, "completion_tokens", "output_tokens"),
            cached=_detail(usage, "cached_tokens", "prompt_tokens_details", "input_tokens_details"),
            reasoning=_detail(
                usage, "reasoning_tokens", "completion_tokens_details", "output_tokens_details"
            ),
            total=_count(usage.get("total_tokens")),
        )

    @property
    def tokens(self) -> int | None:
        """Every token the answer counted: ``total``, else input + output; None if neither."""
        if self.total is not None:
            return self.total
        if self.input is None and self.output is None:
            return None
        return (self.input or 0) + (self.output or 0)
