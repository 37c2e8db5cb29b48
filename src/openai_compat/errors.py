"""The errors this package raises: a small hierarchy whose instances carry data.

```
OpenAICompatError
├── ConfigurationError        the configuration or payload is unusable (nothing was sent)
│   ├── RowMappingError       one batch row cannot be mapped to a payload (openai_compat.mapping)
│   └── UsageError            a command line cannot be acted on (exit 2)
├── EndpointError             the endpoint answered, but with an error (any status, or in a 200)
│   ├── BadRequestError           400
│   ├── AuthenticationError       401
│   ├── PermissionDeniedError     403
│   ├── NotFoundError             404
│   ├── ConflictError             409
│   ├── UnprocessableEntityError  422
│   ├── RateLimitError            429
│   └── InternalServerError       500 and above
├── TransportError            no usable answer: connect, DNS, TLS, timeout, broken stream
│   ├── ConnectError
│   └── RequestTimeout        (``TimeoutError`` is kept as an alias; it shadows the builtin)
├── StreamError               the stream carried an error event or could not be decoded
└── OutputError               an output field could not be read from an answer
```

Every message is rendered once, when the error is built, and never contains a secret: the
client passes its secrets to ``redact`` before an error is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "EndpointError",
    "FieldProblem",
    "InternalServerError",
    "NotFoundError",
    "OpenAICompatError",
    "OutputError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeout",
    "StreamError",
    "TransportError",
    "UnprocessableEntityError",
    "UsageError",
    "endpoint_error_class",
    "redact",
    "redact_data",
]

_MASK = "***"

# Secrets shorter than this are masked only where they stand as a whole token. A short
# string turns up by chance inside ordinary words and numbers, and masking each of those
# would both garble the message and spell the secret out (every masked spot is a copy of
# it). Eight characters is the usual floor for a token or password; real API keys are far
# longer (OpenAI's exceed 40), and a string of eight or more rarely occurs by chance.
MIN_SECRET_LENGTH = 8


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret in ``text`` with ``***``.

    A secret of ``MIN_SECRET_LENGTH`` characters or more is replaced wherever it occurs. A
    shorter one is replaced only where it stands as a whole token (no letter, digit or
    underscore right before or after it); elsewhere the text is left alone. The mask is the
    same whatever the secret, so it never tells a secret's length.

    >>> redact("bad key sk-123456789", ["sk-123456789"])
    'bad key ***'
    >>> redact("key x rejected; fix the proxy", ["x"])
    'key *** rejected; fix the proxy'
    """
    present: set[str] | None = None
    for secret in secrets:
        if secret and secret in text:
            if present is None:
                present = set()
            present.add(secret)
    if present is None:  # the usual case, on every request's request id: no set, no regex
        return text
    found = sorted(present, key=len, reverse=True)
    # One pass, longest first: a secret that contains another is masked whole, and a mask
    # already written is never searched again.
    pattern = "|".join(
        re.escape(s) if len(s) >= MIN_SECRET_LENGTH else rf"(?<!\w){re.escape(s)}(?!\w)"
        for s in found
    )
    return re.sub(pattern, _MASK, text)


def redact_data(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of JSON-like ``value`` with every secret masked inside its strings.

    Error bodies are kept on errors for callers to inspect; a server that echoes the key
    back must not smuggle it out through them. Strings are masked as ``redact`` does.
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
    message: str = ""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class FieldProblem(NamedTuple):
    """One problem of a configuration: where (a dotted field path) and what is wrong."""

    field: str
    message: str


class ConfigurationError(OpenAICompatError, ValueError):
    """The configuration (or a payload) is invalid; nothing was sent.

    ``field`` names the offending key and ``reason`` says what is wrong with it (the message
    is ``"field: reason"``). ``problems`` lists every problem found, each with its field, for
    callers that show them all (the application's 422 ``errors`` list); it holds at least the
    one problem of ``field`` and ``reason``.

    >>> err = ConfigurationError("must start with http:// or https://", field="url")
    >>> str(err), err.problems[0].field
    ('url: must start with http:// or https://', 'url')
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: Sequence[FieldProblem] = (),
    ) -> None:
        self.field = field
        self.reason = message
        self.problems: tuple[FieldProblem, ...] = tuple(problems) or (
            (FieldProblem(field, message),) if field else ()
        )
        super().__init__(f"{field}: {message}" if field else message)


class UsageError(ConfigurationError):
    """A command line cannot be acted on: a missing file, clashing options (exit code 2)."""


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
        attempts: int = 0,
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.status = status
        self.provider_message = provider_message
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body


class BadRequestError(EndpointError):
    """HTTP 400: the endpoint refused the request body."""


class AuthenticationError(EndpointError):
    """HTTP 401: the API key is missing, wrong or expired."""


class PermissionDeniedError(EndpointError):
    """HTTP 403: the key may not use this endpoint or model."""


class NotFoundError(EndpointError):
    """HTTP 404: no such route, or no such model."""


class ConflictError(EndpointError):
    """HTTP 409: the request conflicts with the server's state."""


class UnprocessableEntityError(EndpointError):
    """HTTP 422: the body is well-formed but the endpoint cannot process it."""


class RateLimitError(EndpointError):
    """HTTP 429: a rate limit or quota was exceeded (``retry_after`` may say how long to wait)."""


class InternalServerError(EndpointError):
    """HTTP 500 and above: the server (or a gateway before it) failed."""


_BY_STATUS: dict[int, type[EndpointError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def endpoint_error_class(status: int | None) -> type[EndpointError]:
    """The class of the error an answer of ``status`` raises (`EndpointError` for the rest).

    >>> endpoint_error_class(429).__name__, endpoint_error_class(503).__name__
    ('RateLimitError', 'InternalServerError')
    >>> endpoint_error_class(418) is EndpointError
    True
    """
    if status is None:
        return EndpointError
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, EndpointError)


class TransportError(OpenAICompatError):
    """No usable answer came back: the host could not be reached, or the exchange broke."""


class ConnectError(TransportError):
    """The connection could not be made (refused, DNS failure, TLS failure)."""


class RequestTimeout(TransportError):
    """The endpoint did not answer (or send the next chunk) within the configured timeout,
    or the request did not finish within its deadline."""


# The earlier name, kept for callers; it shadows the builtin, so it is not in ``__all__`` of
# this module or of the package (``import *`` must not hide ``builtins.TimeoutError``).
TimeoutError = RequestTimeout


class StreamError(OpenAICompatError):
    """The stream carried an error event, or its bytes could not be decoded."""

    def __init__(
        self, message: str, *, body: Any = None, code: str | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.body = body
        self.code = code


class OutputError(OpenAICompatError):
    """An output field could not be read from an answer (``parse: json`` on text that is not)."""
