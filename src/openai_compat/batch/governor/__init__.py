"""The throughput governor: requests and tokens a minute, the server's own ``x-ratelimit-*``
headers and ``Retry-After``, and a concurrency that finds itself.

- `Governor`: what a run asks before each request and tells after (`_governor`).
- `GovernedTransport`: every attempt through the governor (`_transport`); `governed_factory`
  the same for the clients a TLS or proxy configuration gets of its own.
- `AdaptiveLimit`: the gradient concurrency limiter (`_adaptive`).
- `Bucket`, `ServerView`: the token bucket, the server's account (`_bucket`, `_server_view`).
- `estimate_tokens`, `RateLimitHeaders`, `parse_duration`: the rules they follow.
"""

from typing import TYPE_CHECKING

from ..._lazy import lazy_attributes
from ._adaptive import AdaptiveLimit
from ._bucket import Bucket, TokenSource
from ._estimate import DEFAULT_OUTPUT_TOKENS, estimate_tokens
from ._governor import OVERLOAD_STATUSES, Governor, Ticket
from ._headers import RateLimitHeaders, parse_duration
from ._server_view import ServerView

if TYPE_CHECKING:
    from ._transport import GovernedTransport, governed_factory

# The transport wrapper brings the HTTP transports (httpx) with it: loaded on first use, so
# that a Ray actor holding a governor starts without them (they load beside its start).
__getattr__ = lazy_attributes(
    __name__,
    {"GovernedTransport": "._transport", "governed_factory": "._transport"},
    globals(),
)

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "OVERLOAD_STATUSES",
    "AdaptiveLimit",
    "Bucket",
    "GovernedTransport",
    "Governor",
    "RateLimitHeaders",
    "ServerView",
    "Ticket",
    "TokenSource",
    "estimate_tokens",
    "governed_factory",
    "parse_duration",
]
