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


# Causes a message names in words, whatever the server's type and code (OpenAI's own context
# error carries neither llama.cpp's type nor a code on every server that copies its wording).
_CONTEXT_WORDS = re.compile(
    r"maximum context length|context (?:length|window|size) (?:exceeded|of \d+|is \d+)"
    r"|exceeds? (?:the )?(?:\w+'s )?(?:maximum )?context (?:length|window|size)",
    re.IGNORECASE,
)
_MODEL_WORDS = re.compile(
    r"\bmodel\b[^.]*?(?:does not exist|doesn't exist|not found|is not (?:available|served|"
    r"supported|loaded))|\b(?:unknown|invalid|unsupported) model\b",
    re.IGNORECASE,
)
_HEADER_WORDS = re.compile(
    r"\bheaders?\b[^.]*?\b(?:required|missing|not provided|not set)\b"
    r"|\bmissing\b[^.]*?\bheaders?\b",
    re.IGNORECASE,
)
_MODEL_HINT = (
    'the endpoint does not know the model named in the request; check "model" in '
    "request_format against the models the server serves (GET /v1/models)"
)
_HEADER_HINT = (
    "the endpoint wants a request header it did not get (its message names it); send it "
    "with advanced.headers (advanced.secret_headers for a key)"
)
_TYPE_HINTS["model_not_found"] = _MODEL_HINT  # OpenAI's code


def _hint_from_words(status: int, text: str) -> str | None:
    """The hint of a cause the message names in words, or None."""
    if _CONTEXT_WORDS.search(text):
        return _CONTEXT_HINT
    if 400 <= status < 500 and _MODEL_WORDS.search(text):
        return _MODEL_HINT
    # A missing Authorization header is the key's business, which 401 and 403 hint at.
    if 400 <= status < 500 and status not in (401, 403) and _HEADER_WORDS.search(text):
        return _HEADER_HINT
    return None


# How many items of a body's own detail list a message shows, and how long each may be.
_DETAIL_ITEMS = 5
_DETAIL_LENGTH = 200
_PATH_KEYS = ("path", "loc", "field", "param", "location", "property")
_TEXT_KEYS = ("message", "msg", "detail", "reason", "description", "error")


def _detail_item(item: Any, secrets: tuple[str, ...]) -> str:
    """One entry of a detail list as ``path: message`` (masked before it is cut)."""
    if isinstance(item, dict):
        path = next((item[k] for k in _PATH_KEYS if item.get(k) not in (None, "", [])), None)
        text = next((item[k] for k in _TEXT_KEYS if isinstance(item.get(k), str)), None)
        if isinstance(path, list):
            path = ".".join(str(part) for part in path)
        if text is None:
            text = json.dumps(item, default=str)
        line = f"{path}: {text}" if path is not None else text
    else:
        line = item if isinstance(item, str) else json.dumps(item, default=str)
    return excerpt(redact(line, secrets), _DETAIL_LENGTH)


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:_DETAIL_ITEMS])
    if len(items) > _DETAIL_ITEMS:
        shown += f"; and {len(items) - _DETAIL_ITEMS} more"
    return shown


def _failed_checks(hook_results: Any, secrets: tuple[str, ...]) -> list[str]:
    """The checks a guardrail gateway's ``hook_results`` says failed, with where they ran."""
    failed: list[str] = []
    if not isinstance(hook_results, dict):
        return failed
    for group, hooks in hook_results.items():
        for hook in hooks if isinstance(hooks, list) else ():
            if not isinstance(hook, dict):
                continue
            where = f"{group} {hook['id']}" if hook.get("id") else str(group)
            checks = hook.get("checks")
            for check in checks if isinstance(checks, list) else ():
                if isinstance(check, dict) and check.get("verdict") is False:
                    name = str(check.get("id") or "a check")
                    failed.append(excerpt(redact(f"{name} ({where})", secrets), _DETAIL_LENGTH))
    return failed


def _body_details(data: Any, secrets: tuple[str, ...]) -> list[str]:
    """The detail lists a body holds beside its message, each as ``[name: items]``.

    Gateways put the cause there (``errors`` of a config check, ``hook_results`` of a
    guardrail), and the message alone ("Invalid config passed") says nothing to act on.
    """
    if not isinstance(data, dict):
        return []
    found: list[str] = []
    err = data.get("error")
    for holder in (data, err if isinstance(err, dict) else {}):
        for name in ("errors", "details"):
            items = holder.get(name)
            if isinstance(items, list) and items:
                found.append(f"[{name}: {_listed([_detail_item(i, secrets) for i in items])}]")
    checks = _failed_checks(data.get("hook_results"), secrets)
    if checks:
        found.append(f"[hook_results: failed {_listed(checks)}]")
    return found


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
    cause: str | None = None,
    parsed: bool = False,
    attempts: int = 0,
    dialect: Dialect = CHAT,
) -> EndpointError:
    """An ``EndpointError`` for an error answer; ``body`` is raw bytes, or JSON if ``parsed``.

    The message carries the status, the provider's message/type/code, the body's own
    detail lists, the request id, and a hint on what to fix (worded for ``dialect``'s API):
    ``cause``, or the cause the body names, replaces the status's generic hint; ``hint`` is
    added to it. The class is the status's (`errors.endpoint_error_class`).
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
    shown = " ".join([*message.split(), *_body_details(data, secrets)])
    text = f"{head} from the endpoint: {shown}" if shown else f"{head} from the endpoint"
    if details:
        text += f" ({'; '.join(details)})"
    specific = (
        cause
        or _TYPE_HINTS.get(kind or "")
        or _TYPE_HINTS.get(code or "")
        or _hint_from_words(status, shown)
    )
    # A hint that names the cause replaces the generic one of the status.
    generic = dialect.status_hint(status) or _HINTS.get(status)
    hints = [h for h in (specific or generic, hint) if h]
    if status >= 500 and not hints:
        hints.append("the server failed; try again later or check the server's logs")
    if hints:
        text += (" " if text.endswith((".", "!", "?")) else ". ") + "Hint: " + "; ".join(hints)
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


# ``WWW-Authenticate`` schemes of servers that want the key as is, in a header of their own.
_KEY_SCHEMES = frozenset({"apikey", "api-key", "api_key", "x-api-key"})
_HEADER_PARAM = re.compile(r"\b(?:header|header_name|name)\s*=\s*\"?([!#$%&'*+.^_`|~\w-]+)")


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
            cause=self._auth_hint(headers) if status == 401 else None,
            attempts=attempts,
            dialect=self._config.dialect,
        )

    def _auth_hint(self, headers: Mapping[str, str]) -> str | None:
        """What a 401's ``WWW-Authenticate`` says about where the key goes, or None."""
        challenge = headers.get("www-authenticate", "").strip()
        scheme = challenge.split(maxsplit=1)[0].rstrip(",") if challenge else ""
        if scheme.lower() not in _KEY_SCHEMES:
            return None
        advanced = self._config.advanced
        if advanced.auth == "header":
            return (
                f'check the API key, and that "{advanced.auth_header}" (advanced.auth_header) '
                "is the header the server reads its key from"
            )
        named = _HEADER_PARAM.search(challenge)
        header = f'"{named.group(1)}"' if named else '"X-API-Key", if its docs say so'
        sent = {
            "bearer": 'not as "Authorization: Bearer"',
            "api-key": 'not in "api-key"',
        }.get(advanced.auth, 'and none is sent (advanced.auth is "none")')
        return (
            f"the server wants its key in a header (WWW-Authenticate: {scheme}), {sent}; set "
            f'advanced.auth to "header" and advanced.auth_header to the header it reads '
            f"({header})"
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
