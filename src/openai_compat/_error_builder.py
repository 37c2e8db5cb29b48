"""Everything that went wrong, turned into one clear, complete, secret-free error.

Two sources: an answer that is an error (any status, any body shape: OpenAI's
``{"error": {...}}``, ``{"error": "text"}``, FastAPI's ``{"detail": ...}``, an HTML page,
plain text), and a transport's `TransportFailure` (refused, DNS, TLS, timeouts, a broken
connection). `ErrorBuilder` holds what every message needs of one configuration (the host
shown, the timeout, the deadline, the proxy, the secrets to mask), so the client and the
exchange build each error once, with everything in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from ._text import excerpt
from ._transports import FailureKind, TransportFailure
from .apis import CHAT, Dialect
from .config import SourceConfig
from .errors import (
    ConfigurationError,
    ConnectError,
    EndpointError,
    OpenAICompatError,
    RequestTimeout,
    StreamError,
    TransportError,
    endpoint_error_class,
    redact,
    redact_data,
)
from .retries import parse_retry_after

__all__ = ["ErrorBuilder", "describe_body", "error_from_body"]

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_SCRIPTS = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)

# The hints of statuses that say nothing about the API; those that do (400, 404, 405) are
# worded by the dialect.
_HINTS = {
    401: "check the API key",
    403: "the key is not allowed to use this endpoint or model",
    407: "a proxy on the way wants credentials: give them in advanced.proxy "
    "(http://user:password@host:port)",
    408: "the server timed out reading the request",
    413: "the request is too large",
    422: "the endpoint could not process the request body",
    429: "rate limit or quota exceeded; slow down, or check the plan and quota of the key",
}


def _is_html(body: bytes, content_type: str) -> bool:
    head = body[:512].lstrip().lower()
    return "html" in content_type or head.startswith((b"<!doctype html", b"<html"))


def describe_body(body: bytes, content_type: str = "") -> str:
    """A short, human description of a non-JSON body (HTML title and text, or plain text)."""
    if _is_html(body, content_type):
        text = body.decode("utf-8", "replace")
        match = _TITLE.search(body)
        title = excerpt(match.group(1).decode("utf-8", "replace"), 80) if match else ""
        words = excerpt(_TAGS.sub(" ", _SCRIPTS.sub(" ", text)), 160)
        return f"an HTML page (title {title!r}): {words}" if title else f"an HTML page: {words}"
    if not body.strip():
        return "an empty body"
    return repr(excerpt(body.decode("utf-8", "replace")))


def _provider_fields(data: Any) -> dict[str, Any]:
    """message/type/code/param from any of the error shapes servers use."""
    if not isinstance(data, dict):
        return {"message": excerpt(json.dumps(data))}
    err = data.get("error")
    if isinstance(err, dict):
        return {
            "message": err.get("message") or err.get("msg") or excerpt(json.dumps(err)),
            "type": err.get("type"),
            "code": err.get("code"),
            "param": err.get("param"),
        }
    if isinstance(err, str) and err:
        return {"message": err, "type": data.get("type"), "code": data.get("code")}
    detail = data.get("detail")
    if detail is not None:
        if isinstance(detail, str):
            return {"message": detail}
        return {"message": excerpt(json.dumps(detail), 300)}
    for key in ("message", "msg", "error_message"):
        if isinstance(data.get(key), str):
            return {"message": data[key], "code": data.get("code"), "type": data.get("type")}
    return {"message": excerpt(json.dumps(data), 300)}


# Servers that stringify a missing value (LiteLLM sends ``"param": "None"``).
_ABSENT = frozenset({"", "none", "null"})

# Hints for provider error types whose status alone misleads.
_CONTEXT_HINT = (
    "the prompt is longer than the model's context window; shorten the messages, lower "
    "max_tokens, or use a model (or server setting) with a larger context"
)
_TYPE_HINTS = {
    # LiteLLM proxy without a database: any key but the master key is refused with a 400.
    "no_db_connection": "a LiteLLM proxy without a database accepts only its master key; "
    "check the API key",
    "exceed_context_size_error": _CONTEXT_HINT,  # llama.cpp's type
    "context_length_exceeded": _CONTEXT_HINT,  # OpenAI's code
}


def _as_text(value: Any) -> str | None:
    """A field as text (an integer ``code`` becomes ``"429"``), or None when absent."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return None if text.lower() in _ABSENT else text


def _masked(value: str | None, secrets: tuple[str, ...]) -> str | None:
    return None if value is None else redact(value, secrets)


def error_from_body(
    status: int,
    headers: Mapping[str, str],
    body: bytes | Any,
    *,
    secrets: Iterable[str] = (),
    hint: str | None = None,
    parsed: bool = False,
    attempts: int = 0,
    dialect: Dialect = CHAT,
) -> EndpointError:
    """An ``EndpointError`` for an error answer; ``body`` is raw bytes, or JSON if ``parsed``.

    The message carries the status, the provider's message/type/code, the request id,
    and a hint on what to fix (worded for ``dialect``'s API). The class is the status's
    (`errors.endpoint_error_class`).
    """
    content_type = headers.get("content-type", "")
    data: Any = body if parsed else None
    if not parsed:
        assert isinstance(body, bytes)
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError:
            data = None
        if data is None:
            fields: dict[str, Any] = {"message": describe_body(body, content_type)}
        else:
            fields = _provider_fields(data)
    else:
        fields = _provider_fields(data)
    secrets = tuple(secrets)
    # Every field is masked, not only the message: a server may echo the request (its
    # Authorization header included) into any of them.
    request_id = _masked(headers.get("x-request-id") or headers.get("request-id"), secrets)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    head = f"HTTP {status} {reason}".rstrip()
    message = redact(str(fields.get("message") or ""), secrets)
    kind, code, param = (
        _masked(_as_text(fields.get(name)), secrets) for name in ("type", "code", "param")
    )
    details = [f"{name} {value}" for name, value in (("type", kind), ("code", code)) if value]
    if param:
        details.append(f"param {param}")
    if request_id:
        details.append(f"request id {request_id}")
    # One line: providers put paragraphs in messages (LiteLLM), and logs want one line.
    shown = " ".join(message.split())
    text = f"{head} from the endpoint: {shown}" if shown else f"{head} from the endpoint"
    if details:
        text += f" ({'; '.join(details)})"
    specific = _TYPE_HINTS.get(kind or "") or _TYPE_HINTS.get(code or "")
    # A hint that names the cause replaces the generic one of the status.
    generic = dialect.status_hint(status) or _HINTS.get(status)
    hints = [h for h in (specific or generic, hint) if h]
    if status >= 500 and not hints:
        hints.append("the server failed; try again later or check the server's logs")
    if hints:
        text += ". Hint: " + "; ".join(hints)
    return endpoint_error_class(status)(
        redact(text, secrets),
        status=status,
        provider_message=message or None,
        type=kind,
        code=code,
        param=param,
        request_id=request_id,
        retry_after=parse_retry_after(headers),
        body=redact_data(data, secrets),
        attempts=attempts,
    )


class ErrorBuilder:
    """Builds the errors of one configuration's requests, each complete and redacted.

    >>> from openai_compat.config import SourceConfig
    >>> errors = ErrorBuilder(SourceConfig.parse({"url": "http://127.0.0.1:9/v1/chat/completions"}))
    >>> str(errors.failure(TransportFailure(FailureKind.REFUSED, "[Errno 111]"), attempts=1))
    'connection refused by 127.0.0.1:9: is the server running there?'
    """

    __slots__ = ("_config", "_where", "secrets")

    def __init__(self, config: SourceConfig) -> None:
        self._config = config
        self._where = urlsplit(config.url).netloc or config.url
        self.secrets: tuple[str, ...] = config.secrets

    def request_id(self, headers: Mapping[str, str]) -> str | None:
        """The answer's ``x-request-id``, masked (a server may echo the request into it)."""
        return _masked(headers.get("x-request-id"), self.secrets)

    def answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        has_model: bool = True,
        attempts: int = 0,
    ) -> EndpointError:
        """The error of a non-2xx answer, with a hint on what to fix."""
        hint = None
        if status in (404, 405):
            hint = self._config.url_problem()
        elif status in (400, 422) and not has_model:
            hint = 'the request has no "model"; add one to the request body (request_format)'
        return error_from_body(
            status,
            headers,
            body,
            secrets=self.secrets,
            hint=hint,
            attempts=attempts,
            dialect=self._config.dialect,
        )

    def error_in_answer(
        self, status: int, headers: Mapping[str, str], data: Any, *, attempts: int
    ) -> EndpointError:
        """The error of a 2xx answer whose JSON object holds an ``error``."""
        return error_from_body(
            status,
            headers,
            data,
            secrets=self.secrets,
            parsed=True,
            attempts=attempts,
            dialect=self._config.dialect,
        )

    def not_json(
        self, status: int, headers: Mapping[str, str], body: bytes, *, attempts: int
    ) -> EndpointError:
        """A 2xx answer that is neither JSON nor an event stream (a login page, text)."""
        what = describe_body(body, headers.get("content-type", ""))
        dialect = self._config.dialect
        problem = dialect.url_problem(self._config.url)
        return EndpointError(
            redact(
                f"HTTP {status}: the endpoint answered with {what}, not JSON. This is "
                "usually a wrong route or a gateway/login page: check that the URL is the full "
                f"{dialect.label} URL" + (f" ({problem})" if problem else ""),
                self.secrets,
            ),
            status=status,
            request_id=self.request_id(headers),
            attempts=attempts,
        )

    def not_object(
        self, status: int, headers: Mapping[str, str], data: Any, body: bytes, *, attempts: int
    ) -> EndpointError:
        """A 2xx JSON answer that is not an object (an array, a string)."""
        return EndpointError(
            redact(
                f"HTTP {status}: the endpoint answered with a JSON "
                f"{type(data).__name__}, not an object: {describe_body(body)}",
                self.secrets,
            ),
            status=status,
            request_id=self.request_id(headers),
            attempts=attempts,
        )

    def empty_stream(self, *, attempts: int) -> StreamError:
        """A streamed answer that ended without a single chunk (a 200 with nothing in it)."""
        return StreamError(
            "the endpoint answered, but with an empty stream (no chunk)", attempts=attempts
        )

    def in_stream(self, error: StreamError, *, attempts: int) -> StreamError:
        """An error event of the stream, redacted (the provider may echo the request)."""
        return StreamError(
            redact(error.message, self.secrets),
            body=redact_data(error.body, self.secrets),
            code=_masked(error.code, self.secrets),
            attempts=attempts,
        )

    def deadline(self, during: str, *, attempts: int) -> RequestTimeout:
        """The whole request outlived ``advanced.deadline``."""
        suffix = f" {during}" if during else ""
        text = (
            f"the request to {self._where} did not finish within its deadline of "
            f"{self._config.advanced.deadline:g} s{suffix}; raise advanced.deadline for long "
            f"generations (config.timeout, {self._config.timeout:g} s, bounds each wait for data)"
        )
        return RequestTimeout(redact(text, self.secrets), attempts=attempts)

    def failure(
        self, failure: TransportFailure, during: str = "", *, attempts: int
    ) -> OpenAICompatError:
        """Our error for a transport's failure: names refusals, DNS, TLS and timeouts as such.

        ``during`` says when it happened (``"while reading the answer"``, ``"during the
        stream, after 3 chunk(s)"``); empty while connecting and waiting for the answer.
        """
        kind = failure.kind
        if kind is FailureKind.DEADLINE:
            return self.deadline(during, attempts=attempts)
        if kind is FailureKind.INVALID_URL:
            reason = redact(f"cannot be used: {failure.detail}", self.secrets)
            return ConfigurationError(reason, field="url")
        where, timeout, detail = self._where, self._config.timeout, failure.detail
        suffix = f" {during}" if during else ""
        kind_of: type[TransportError] = RequestTimeout
        if kind is FailureKind.CONNECT_TIMEOUT:
            text = f"could not connect to {where} within {timeout:g} s (connect timeout)"
        elif kind is FailureKind.READ_TIMEOUT:
            what = "the next chunk" if during else "an answer"
            text = (
                f"timed out after {timeout:g} s waiting for {what} from {where}{suffix}; "
                "raise config.timeout for slow models"
            )
        elif kind in (FailureKind.WRITE_TIMEOUT, FailureKind.POOL_TIMEOUT):
            text = f"timed out after {timeout:g} s talking to {where}{suffix}"
        elif kind is FailureKind.PEER_CLOSED:
            kind_of, text = TransportError, f"{where} closed the connection{suffix}: {detail}"
        elif kind is FailureKind.NETWORK:
            kind_of, text = TransportError, f"network error talking to {where}{suffix}: {detail}"
        else:
            kind_of, text = ConnectError, self._connect_text(kind, detail)
        return kind_of(redact(text, self.secrets), attempts=attempts)

    def _connect_text(self, kind: FailureKind, detail: str) -> str:
        where = self._where
        if kind is FailureKind.REFUSED:
            text = f"connection refused by {where}: is the server running there?"
        elif kind is FailureKind.NAME_RESOLUTION:
            text = f"cannot resolve the host name of {where} (DNS failure): {detail}"
        elif kind is FailureKind.TLS:
            text = (
                f"TLS handshake with {where} failed: {detail}. If the server uses a self-signed "
                "certificate, give its CA bundle"
            )
        else:
            text = f"cannot connect to {where}: {detail}"
        proxy = self._config.advanced.proxy_url
        if proxy is not None:
            text += f" (through the proxy {proxy}: check advanced.proxy)"
        return text
