"""The throughput governor: requests and tokens a minute, the server's own ``x-ratelimit-*``
headers and ``Retry-After``, and a concurrency that finds itself.

- `Governor`: what a run asks before each request and tells after (`_governor`).
- `GovernedTransport`: every attempt through the governor (`_transport`).
- `AdaptiveLimit`: the gradient concurrency limiter (`_adaptive`).
- `Bucket`, `ServerView`: the token bucket, the server's account (`_bucket`, `_server_view`).
- `estimate_tokens`, `RateLimitHeaders`, `parse_duration`: the rules they follow.
"""

from ._adaptive import AdaptiveLimit
from ._bucket import Bucket, TokenSource
from ._estimate import DEFAULT_OUTPUT_TOKENS, estimate_tokens
from ._governor import OVERLOAD_STATUSES, Governor, Ticket
from ._headers import RateLimitHeaders, parse_duration
from ._server_view import ServerView
from ._transport import GovernedTransport

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
    "parse_duration",
]
