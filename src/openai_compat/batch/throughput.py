"""The throughput options of a run: ``token_rate`` and ``concurrency="auto"``, checked once.

``token_rate`` is tokens per period as ``rate`` is requests (``"200000/minute"``; ``"off"``
or None: no token limit of the run's own; zero is a mistake, not "off"). ``concurrency``
``"auto"`` lets the governor's adaptive limit find it, up to ``max_concurrency`` (default
`DEFAULT_MAX_CONCURRENCY`). `governor_for` makes a run's `Governor` from its spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .governor import AdaptiveLimit, Governor
from .scheduler import Rate, Scheduler

if TYPE_CHECKING:
    from .spec import RunSpec

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "adaptive_concurrency",
    "governor_for",
    "parse_concurrency",
    "token_rate",
]

DEFAULT_MAX_CONCURRENCY = 256
"""The most requests in flight ``concurrency="auto"`` may reach unless told."""

_OFF = ("off", "none", "unlimited")


def token_rate(value: Any) -> Rate | None:
    """``value`` as a token rate: None or ``"off"`` -> None.

    >>> str(token_rate("200000/minute")), token_rate("off")
    ('200000/minute', None)
    >>> try:
    ...     token_rate("0/minute")
    ... except ConfigurationError as exc:
    ...     print(exc.field, exc.reason)
    token_rate must be more than 0 tokens (or off), got '0/minute'
    """
    if value is None or isinstance(value, Rate):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            f'must be a token rate such as "200000/minute", got {value!r}', field="token_rate"
        )
    if value.strip().lower() in _OFF:
        return None
    try:
        rate = Rate.parse(value)
    except ConfigurationError:
        raise ConfigurationError(
            f"must look like 200000/minute, 5000/second or off, got {value!r}",
            field="token_rate",
        ) from None
    if rate is None:
        raise ConfigurationError(
            f"must be more than 0 tokens (or off), got {value!r}", field="token_rate"
        )
    return rate


def parse_concurrency(text: str) -> int | str:
    """``--concurrency``'s value: a whole number, or ``"auto"``.

    >>> parse_concurrency("12"), parse_concurrency("Auto")
    (12, 'auto')
    """
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    return int(value)  # argparse words a ValueError as "invalid value" for the option


def adaptive_concurrency(data: Any, most: int) -> Any:
    """A spec's options with ``concurrency="auto"`` read: ``concurrency_auto`` set, and
    ``concurrency`` (the workers) the ``max_concurrency`` ceiling when that one is valid."""
    if not isinstance(data, dict) or not (
        isinstance(data.get("concurrency"), str) and data["concurrency"].strip().lower() == "auto"
    ):
        return data
    data = {**data, "concurrency_auto": True}
    del data["concurrency"]
    ceiling = data.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    if isinstance(ceiling, int) and not isinstance(ceiling, bool) and 1 <= ceiling <= most:
        data["concurrency"] = ceiling
    return data


def governor_for(spec: RunSpec, scheduler: Scheduler) -> Governor | None:
    """The run's governor; None when nothing governs it (no rate of any kind, a fixed
    concurrency): a run with ``rate="off"`` keeps its fast path."""
    adaptive = AdaptiveLimit(spec.concurrency) if spec.concurrency_auto else None
    if spec.rate is None and spec.token_rate is None and adaptive is None:
        return None
    return Governor(scheduler, token_rate=spec.token_rate, adaptive=adaptive)
