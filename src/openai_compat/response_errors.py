"""Turn what went wrong on the wire into one clear, key-free error.

Two sources: an answer that is an error (any status, any body shape: OpenAI's
``{"error": {...}}``, ``{"error": "text"}``, FastAPI's ``{"detail": ...}``, an HTML page,
plain text) and an httpx exception (refused, DNS, TLS, timeouts, broken connection).
"""

from __future__ import annotations

import errno
import json
import re
import ssl
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import (
    ConfigurationError,
    ConnectError,
    EndpointError,
    TimeoutError,
    TransportError,
    redact_data,
)
from .errors import redact as _redact
from .retries import parse_retry_after

__all__ = ["describe_body", "error_from_body", "error_from_exception", "excerpt"]

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_SCRIPTS = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)

_HINTS = {
    400: "the endpoint rejected the request body; compare it with the OpenAI chat-completions spec",
    401: "check the API key",
    403: "the key is not allowed to use this endpoint or model",
    404: "check that the URL is the full chat-completions URL and that the model exists",
    405: "the URL does not accept POST; it is probably not a chat-completions URL",
    407: "a proxy on the way wants credentials: give them in advanced.proxy "
    "(http://user:password@host:port)",
    408: "the server timed out reading the request",
    413: "the request is too large",
    422: "the endpoint could not process the request body",
    429: "rate limit or quota exceeded; slow down, or check the plan and quota of the key",
}


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def error_from_body(
    status: int,
    headers: Mapping[str, str],
    body: bytes | Any,
    *,
    secrets: Iterable[str] = (),
    hint: str | None = None,
    parsed: bool = False,
) -> EndpointError:
    """An ``EndpointError`` for an error answer; ``body`` is raw bytes, or JSON if ``parsed``.

    The message carries the status, the provider's message/type/code, the request id,
    and a hint on what to fix.
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
    request_id = headers.get("x-request-id") or headers.get("request-id")
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    head = f"HTTP {status} {reason}".rstrip()
    message = str(fields.get("message") or "")
    kind, code, param = (_as_text(fields.get(k)) for k in ("type", "code", "param"))
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
    hints = [h for h in (specific or _HINTS.get(status), hint) if h]
    if status >= 500 and not hints:
        hints.append("the server failed; try again later or check the server's logs")
    if hints:
        text += ". Hint: " + "; ".join(hints)
    secrets = tuple(secrets)
    return EndpointError(
        _redact(text, secrets),
        status=status,
        provider_message=_redact(message, secrets) if message else None,
        type=kind,
        code=code,
        param=param,
        request_id=request_id,
        retry_after=parse_retry_after(headers),
        body=redact_data(data, secrets),
    )


def _where(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, innermost last (anyio hides the refusal there)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def error_from_exception(
    exc: httpx.HTTPError, *, url: str, timeout: float, secrets: Iterable[str] = (), during: str = ""
) -> Exception:
    """Our error for an httpx exception: names refusals, DNS, TLS and timeouts as such."""
    where = _where(url)
    detail = str(exc) or type(exc).__name__
    suffix = f" {during}" if during else ""
    err: Exception
    if isinstance(exc, httpx.ConnectTimeout):
        err = TimeoutError(f"could not connect to {where} within {timeout:g} s (connect timeout)")
    elif isinstance(exc, httpx.ReadTimeout):
        what = "the next chunk" if during else "an answer"
        err = TimeoutError(
            f"timed out after {timeout:g} s waiting for {what} from {where}{suffix}; "
            "raise config.timeout for slow models"
        )
    elif isinstance(exc, httpx.TimeoutException):
        err = TimeoutError(f"timed out after {timeout:g} s talking to {where}{suffix}")
    elif isinstance(exc, httpx.ConnectError):
        causes = _causes(exc)
        lowered = detail.lower()
        # Only a refusal by the peer (anyio and aiohttp hide it in the causes); an address
        # policy that "refuses" a host keeps its own message.
        refused = "connection refused" in lowered or any(
            isinstance(cause, ConnectionRefusedError)
            or getattr(cause, "errno", None) == errno.ECONNREFUSED
            for cause in causes
        )
        tls = any(isinstance(cause, ssl.SSLError) for cause in causes)
        if refused:
            err = ConnectError(f"connection refused by {where}: is the server running there?")
        elif any(
            s in lowered
            for s in (
                "name or service not known",
                "nodename nor servname",
                "getaddrinfo",
                "name resolution",
                "no address",
            )
        ):
            err = ConnectError(f"cannot resolve the host name of {where} (DNS failure): {detail}")
        elif tls or "certificate" in lowered or "[ssl" in lowered or "tls" in lowered:
            err = ConnectError(
                f"TLS handshake with {where} failed: {detail}. If the server uses a self-signed "
                "certificate, give its CA bundle"
            )
        else:
            err = ConnectError(f"cannot connect to {where}: {detail}")
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        err = ConfigurationError(f"cannot be used: {detail}", field="url")
    elif isinstance(exc, httpx.RemoteProtocolError):
        err = TransportError(f"{where} closed the connection{suffix}: {detail}")
    else:
        err = TransportError(f"network error talking to {where}{suffix}: {detail}")
    if isinstance(err, TransportError | ConfigurationError):
        err.message = _redact(err.message, secrets)
        err.args = (err.message,)
    return err
