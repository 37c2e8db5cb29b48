"""The errors this package raises: a small hierarchy whose instances carry data.

```
OpenAICompatError
├── ConfigurationError        the configuration or payload is unusable (nothing was sent)
├── EndpointError             the endpoint answered, but with an error (any status, or in a 200)
├── TransportError            no usable answer: connect, DNS, TLS, timeout, broken stream
│   ├── ConnectError
│   └── TimeoutError
└── StreamError               the stream carried an error event or could not be decoded
```

Every message is rendered once, in ``str(error)``, and never contains the API key:
the transport passes its secrets to ``redact`` before an error is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ConfigurationError",
    "ConnectError",
    "EndpointError",
    "OpenAICompatError",
    "StreamError",
    "TimeoutError",
    "TransportError",
    "redact",
    "redact_data",
]

_MASK = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` with ``***``.

    >>> redact("bad key sk-123", ["sk-123"])
    'bad key ***'
    """
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, _MASK)
    return text


def redact_data(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of JSON-like ``value`` with every secret masked inside its strings.

    Error bodies are kept on errors for callers to inspect; a server that echoes the key
    back must not smuggle it out through them.
    """
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact(str(k), secrets): redact_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v, secrets) for v in value]
    return value


class OpenAICompatError(Exception):
    """Base class of every error raised by openai_compat.

    ``attempts`` is how many requests were made before giving up (0 when none was sent).
    """

    attempts: int = 0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(OpenAICompatError, ValueError):
    """The configuration (or a payload) is invalid; ``field`` names the offending key."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class EndpointError(OpenAICompatError):
    """The endpoint answered with an error: a non-2xx status, or an error body inside a 200.

    Attributes hold what the provider said, so callers can branch on them without
    parsing the message: ``status``, ``provider_message``, ``type``, ``code``, ``param``,
    ``request_id`` and ``retry_after`` (seconds the server asked us to wait, if any).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_message: str | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.provider_message = provider_message
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body


class TransportError(OpenAICompatError):
    """No usable answer came back: the host could not be reached, or the exchange broke."""


class ConnectError(TransportError):
    """The connection could not be made (refused, DNS failure, TLS failure)."""


class TimeoutError(TransportError):  # mirrors httpx.TimeoutException; shadows the builtin
    """The endpoint did not answer (or send the next chunk) within the configured timeout."""


class StreamError(OpenAICompatError):
    """The stream carried an error event, or its bytes could not be decoded."""

    def __init__(self, message: str, *, body: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.body = body
        self.code = code
