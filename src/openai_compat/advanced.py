"""The optional connection settings beyond the guide's six fields (the spec's "advanced" group).

Raw shape, all keys optional::

    "advanced": {
        "headers": {"X-Team": "data"},             # or JSON text holding an object
        "secret_headers": {"X-Gateway-Key": "..."},  # masked and redacted like the API key
        "auth": "bearer" | "api-key" | "header" | "none",
        "auth_header": "X-Api-Key",                 # the header name when auth is "header"
        "ca_bundle": "/path/ca.pem" or "-----BEGIN CERTIFICATE-----...",
        "verify_tls": true,
        "proxy": "http://proxy.internal:3128",
        "max_retries": 2,
        "deadline": "600"                           # seconds for the whole request
    }

Validated once into a frozen ``AdvancedOptions``; every problem is a ``ConfigurationError``
naming ``advanced.<key>``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
import ssl
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import SplitResult, unquote, urlsplit

import certifi
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from . import _json
from ._characters import describe, header_value_problem, printable, url_character_problem
from ._text import excerpt
from .errors import ConfigurationError

__all__ = ["AdvancedOptions", "AuthMode", "parse_bool", "parse_seconds", "port_problem", "shown"]

# The pydantic error type of `field_problem`; `SourceConfig.parse` looks for it.
FIELD_PROBLEM: Final = "field_problem"

AuthMode = Literal["bearer", "api-key", "header", "none"]

# RFC 9110 token characters: what a header name may hold.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the transport owns: the body's framing and the connection itself.
_RESERVED = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
_PEM_MARK = "-----BEGIN CERTIFICATE-----"
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
# The longest wait a configuration may ask for: a day. Far beyond any real request, and it
# keeps every bound a finite number the event loop can add to its clock.
MAX_SECONDS: Final = 86_400.0


def field_problem(field: str, reason: str) -> PydanticCustomError:
    """A validation error about ``field``, a name relative to the model being validated.

    For checks across several fields (model validators), whose errors pydantic places at
    the model itself: the field travels in the error's context, not in its text.

    >>> err = field_problem("auth_header", "is required")
    >>> err.type, err.context, err.message()
    ('field_problem', {'field': 'auth_header', 'reason': 'is required'}, 'is required')
    """
    return PydanticCustomError(FIELD_PROBLEM, "{reason}", {"field": field, "reason": reason})


def parse_bool(value: Any, *, default: bool) -> bool:
    """A boolean from true/false or their text (``"false"`` is false); None gives ``default``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"must be true or false, got {shown(value)}")


def shown(value: Any, limit: int = 80) -> str:
    """A raw value as a message quotes it: its repr, cut short, printable.

    >>> shown("x" * 100, limit=10), shown(10**5000, limit=10)
    ("'xxxxxx...", 'a number of more than 10 digits')
    """
    if isinstance(value, int) and abs(value) >= 10**limit:
        # str() of an int beyond 4300 digits raises; a long number is not worth quoting.
        return f"a number of more than {limit} digits"
    return excerpt(printable(repr(value)), limit)


def parse_seconds(value: Any) -> float:
    """A positive, finite number of seconds, at most a day, from a number or numeric text.

    >>> parse_seconds("30"), parse_seconds(0.5)
    (30.0, 0.5)
    """
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds, not a boolean")
    raw = value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError('is empty; give a number of seconds such as "30"')
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f'must be a number of seconds such as "30", got "{excerpt(printable(text), 80)}"'
            ) from None
    if not isinstance(value, int | float):
        raise ValueError(f"must be a number of seconds, got {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond any float
        seconds = math.inf if value > 0 else -math.inf
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"must be a positive number of seconds, got {shown(raw)}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"must be at most {MAX_SECONDS:.0f} seconds (one day), got {shown(raw)}")
    return seconds


def _header_map(value: Any, *, what: str) -> dict[str, str]:
    """A dict of header name -> value from a dict or JSON text; names and values checked.

    Values are stripped of surrounding white space (a value pasted with its line break);
    a value that still cannot be sent is refused by naming the character, never quoted.
    """
    import json

    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = _json.loads(value, field="headers")
        except json.JSONDecodeError as exc:
            raise ValueError(
                f'is not valid JSON ({exc.msg}); write an object such as {{"X-Team": "data"}}'
            ) from None
        except ConfigurationError as exc:
            raise ValueError(exc.reason) from None
    if not isinstance(value, dict):
        raise ValueError(f'must be a JSON object of {what}, such as {{"X-Team": "data"}}')
    headers: dict[str, str] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(
                f"has an invalid header name {shown(name)} (letters, digits and -_ only)"
            )
        if name.lower() in _RESERVED:
            raise ValueError(f'cannot set "{name}": the connector sets it itself')
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise ValueError(f'header "{name}" must have a text value')
        try:
            text = str(raw).strip()
        except ValueError:  # an int of more than 4300 digits has no str()
            raise ValueError(f'header "{name}" has a number too long to send') from None
        problem = header_value_problem(text)
        if problem is not None:
            raise ValueError(f'header "{name}" {problem}')
        headers[name] = text
    return headers


class AdvancedOptions(BaseModel):
    """Validated advanced connection options (all optional; the defaults change nothing).

    >>> AdvancedOptions.model_validate({"auth": "api-key"}).key_header("k")
    ('api-key', 'k')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    headers: dict[str, str] = {}
    secret_headers: dict[str, SecretStr] = {}
    auth: AuthMode = "bearer"
    auth_header: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    proxy: SecretStr | None = None
    max_retries: int | None = None
    deadline: float | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _check_headers(cls, value: Any) -> dict[str, str]:
        return _header_map(value, what="header names and values")

    @field_validator("secret_headers", mode="before")
    @classmethod
    def _check_secret_headers(cls, value: Any) -> dict[str, str]:
        return _header_map(value, what="header names and secret values")

    @field_validator("auth", mode="before")
    @classmethod
    def _check_auth(cls, value: Any) -> str:
        if value is None or value == "":
            return "bearer"
        text = str(value).strip().lower()
        if text not in ("bearer", "api-key", "header", "none"):
            raise ValueError(
                f'must be "bearer" (Authorization: Bearer <key>), "api-key" (Azure), "header" '
                "(the key as is in the header named by advanced.auth_header) or "
                f'"none", got {value!r}'
            )
        return text

    @field_validator("auth_header", "ca_bundle", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("verify_tls", mode="before")
    @classmethod
    def _check_verify(cls, value: Any) -> bool:
        return parse_bool(value, default=True)

    @field_validator("proxy", mode="before")
    @classmethod
    def _check_proxy(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            raise ValueError("must be a proxy URL such as http://proxy.internal:3128")
        text = text.strip()
        problem = url_character_problem(text)
        if problem is not None:
            raise ValueError(problem)
        try:
            parts = urlsplit(text)
        except ValueError:  # e.g. an unclosed [ of an IPv6 address
            raise ValueError("is not a URL; write it as http://proxy.internal:3128") from None
        if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
            shown = _without_password(text)
            raise ValueError(
                f"must be a proxy URL such as http://proxy.internal:3128 "
                f"(http, https or socks5), got {shown!r}"
            )
        bad_port = port_problem(parts)
        if bad_port is not None:
            raise ValueError(bad_port)
        if parts.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
            raise ValueError("is a SOCKS proxy, which needs: pip install 'httpx[socks]'")
        return text

    @field_validator("max_retries", mode="before")
    @classmethod
    def _check_retries(cls, value: Any) -> int | None:
        if value is None or value == "":
            return None
        text = value.strip() if isinstance(value, str) else None
        if text is not None and text.isascii() and text.isdigit() and len(text) <= 3:
            value = int(text)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
            raise ValueError(f"must be a whole number from 0 to 20, got {shown(value)}")
        return value

    @field_validator("deadline", mode="before")
    @classmethod
    def _check_deadline(cls, value: Any) -> float | None:
        if value is None or value == "":
            return None
        return parse_seconds(value)

    @model_validator(mode="after")
    def _check_combination(self) -> AdvancedOptions:
        if self.auth == "header":
            if not self.auth_header:
                raise field_problem(
                    "auth_header",
                    'is required when advanced.auth is "header" '
                    "(the name of the header that carries the key, e.g. X-Api-Key)",
                )
            if not _TOKEN.fullmatch(self.auth_header):
                raise field_problem(
                    "auth_header", f"{shown(self.auth_header)} is not a header name"
                )
            if self.auth_header.lower() in _RESERVED:
                raise field_problem(
                    "auth_header",
                    f'cannot be "{self.auth_header}": the connector sets that header itself; '
                    "name the header your server reads the key from, e.g. X-Api-Key",
                )
        key_name = self.key_header_name
        if key_name is not None:
            for name in [*self.headers, *self.secret_headers]:
                if name.lower() == key_name.lower():
                    raise field_problem(
                        "headers",
                        f'"{name}" is the header that carries the API key; '
                        'set advanced.auth to "none" to send your own',
                    )
        lowered = [n.lower() for n in self.headers]
        for name in self.secret_headers:
            if name.lower() in lowered:
                raise field_problem(
                    "secret_headers", f'"{name}" is also in advanced.headers; keep one'
                )
        if self.ca_bundle is not None:
            try:
                _context(self.ca_bundle)  # Fails here, at the door, not on the first request.
            except ConfigurationError as exc:
                raise field_problem("ca_bundle", exc.reason) from None
        return self

    @property
    def key_header_name(self) -> str | None:
        """The header that carries the API key, or None when the key is not sent."""
        return {"bearer": "Authorization", "api-key": "api-key", "none": None}.get(
            self.auth, self.auth_header
        )

    def key_header(self, key: str) -> tuple[str, str] | None:
        """The (name, value) header that carries ``key``; None when no key is sent."""
        name = self.key_header_name
        if not key or name is None:
            return None
        return (name, f"Bearer {key}") if self.auth == "bearer" else (name, key)

    def request_headers(self) -> dict[str, str]:
        """The extra headers to send, secret values included."""
        headers = dict(self.headers)
        headers.update({k: v.get_secret_value() for k, v in self.secret_headers.items()})
        return headers

    @property
    def secrets(self) -> tuple[str, ...]:
        """Secret values to redact: secret header values and a proxy password."""
        values = [v.get_secret_value() for v in self.secret_headers.values()]
        if self.proxy is not None:
            password = urlsplit(self.proxy.get_secret_value()).password
            if password:
                values += [password, unquote(password)]
        return tuple(dict.fromkeys(v for v in values if v))

    @property
    def needs_own_client(self) -> bool:
        """True when the options are client-level in httpx (TLS, proxy)."""
        return self.ca_bundle is not None or not self.verify_tls or self.proxy is not None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx's ``verify=`` gets: False, a context trusting the CA bundle too, or
        True (httpx's default, which honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``)."""
        if not self.verify_tls:
            return False
        return True if self.ca_bundle is None else _context(self.ca_bundle)

    @property
    def proxy_url(self) -> str | None:
        """The proxy URL in clear (it may hold a password), or None."""
        return None if self.proxy is None else self.proxy.get_secret_value()


def port_problem(parts: SplitResult) -> str | None:
    """Why the port of a split URL cannot be connected to, or None (no port, or 1-65535).

    >>> port_problem(urlsplit("http://h:99999/v1"))
    'has an invalid port (99999); a port is a number from 1 to 65535'
    """
    try:
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        port = 0
    if port == 0:
        written = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        shown_port = excerpt(printable(written), 20)
        return f"has an invalid port ({shown_port}); a port is a number from 1 to 65535"
    return None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@functools.lru_cache(maxsize=16)
def _context(bundle: str) -> ssl.SSLContext:
    """The public CAs (certifi, as httpx) plus ``bundle``: a PEM file, a directory, or PEM text."""
    context = ssl.create_default_context(cafile=certifi.where())
    try:
        _load_bundle(context, bundle)
    except ConfigurationError:
        raise
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"could not load the certificates ({exc.reason or exc}); "
            "it must hold PEM certificates (-----BEGIN CERTIFICATE-----...)",
            field="advanced.ca_bundle",
        ) from None
    except (OSError, RuntimeError, ValueError) as exc:
        # OSError: too long a path, no permission; RuntimeError: "~user" of no such user;
        # ValueError: a character no path may hold.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable path"
        raise ConfigurationError(
            f"cannot read {shown(bundle)}: {why}; give the path of a readable PEM file "
            "or the PEM text itself (-----BEGIN CERTIFICATE-----...)",
            field="advanced.ca_bundle",
        ) from None
    return context


def _load_bundle(context: ssl.SSLContext, bundle: str) -> None:
    if _PEM_MARK in bundle:
        if not bundle.isascii():
            index, char = next((i, c) for i, c in enumerate(bundle) if not c.isascii())
            raise ConfigurationError(
                f"the PEM text has {describe(char)} at position {index + 1}; "
                "PEM certificates are plain ASCII",
                field="advanced.ca_bundle",
            )
        context.load_verify_locations(cadata=bundle)
        return
    path = Path(bundle).expanduser()
    if path.is_dir():
        context.load_verify_locations(capath=str(path))
    elif path.is_file():
        context.load_verify_locations(cafile=str(path))
    else:
        raise ConfigurationError(
            f"no file at {shown(str(path))}; give the path of a PEM file "
            "or the PEM text itself (-----BEGIN CERTIFICATE-----...)",
            field="advanced.ca_bundle",
        )
