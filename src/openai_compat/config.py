"""Turn a raw configuration (dict or JSON text) into a validated, typed ``SourceConfig``.

The raw shape is the original connector's six fields::

    {"url": "...", "api_key": "...", "is_stream": false, "config": {"timeout": "30"},
     "request_format": "{...json...}", "response_format": "{...json...}"}

Validation happens once, here, at the door; the rest of the package trusts the typed
object. Every problem is a ``ConfigurationError`` naming the field and saying how to fix it.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from .advanced import AdvancedOptions, parse_bool, parse_seconds
from .errors import ConfigurationError, redact
from .resources import connection_defaults

__all__ = ["SourceConfig", "load_config", "parse_json_object"]

_DEFAULTS = connection_defaults()
_CHAT_PATH = "/v1/chat/completions"


def parse_json_object(value: Any, *, field: str) -> dict[str, Any]:
    """Return ``value`` as a JSON object: a dict as is, or JSON text holding an object.

    >>> parse_json_object('{"model": "m"}', field="request_format")
    {'model': 'm'}
    """
    if isinstance(value, dict):
        return value
    if not isinstance(value, str | bytes):
        raise ConfigurationError(
            f"must be a JSON object ({{...}}) or JSON text holding one, got {_json_kind(value)}",
            field=field,
        )
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "write a JSON object such as "
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}',
            field=field,
        ) from None
    if not isinstance(parsed, dict):
        raise ConfigurationError(
            f"must be a JSON object ({{...}}), got {_json_kind(parsed)}", field=field
        )
    return parsed


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else "a value")


class SourceConfig(BaseModel):
    """A validated connection configuration.

    >>> cfg = SourceConfig.parse({"url": "http://127.0.0.1:8080/v1/chat/completions",
    ...                           "api_key": "sk-test", "is_stream": "false"})
    >>> cfg.is_stream, cfg.timeout
    (False, 30.0)
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str = _DEFAULTS["url"]
    api_key: SecretStr = SecretStr("")
    is_stream: bool = False
    timeout: float = 30.0
    request_format: dict[str, Any] = parse_json_object(
        _DEFAULTS["request_format"], field="request_format"
    )
    response_format: dict[str, Any] = parse_json_object(
        _DEFAULTS["response_format"], field="response_format"
    )
    advanced: AdvancedOptions = AdvancedOptions()

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("is required: the full chat-completions URL, e.g. " + _DEFAULTS["url"])
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            hint = f" (did you mean https://{url}?)" if "://" not in url else ""
            raise ValueError(f'must start with http:// or https://, got "{url}"{hint}')
        if not parts.hostname:
            raise ValueError(f'has no host name: "{url}"')
        return url

    @field_validator("is_stream", mode="before")
    @classmethod
    def _check_stream(cls, value: Any) -> bool:
        return parse_bool(value, default=False)

    @field_validator("timeout", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any) -> float:
        return parse_seconds(value)

    @classmethod
    def parse(cls, raw: SourceConfig | dict[str, Any] | str | bytes) -> SourceConfig:
        """Validate a raw configuration (a dict, or JSON text holding one)."""
        if isinstance(raw, SourceConfig):
            return raw
        data = parse_json_object(raw, field="configuration")
        fields: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
        nested = data.get("config")
        if nested is not None:
            if not isinstance(nested, dict):
                raise ConfigurationError(
                    'must be an object such as {"timeout": "30"}', field="config"
                )
            if "timeout" in nested:
                fields["timeout"] = nested["timeout"]
        fields.pop("config", None)
        if "advanced" in fields:
            fields["advanced"] = parse_json_object(fields["advanced"], field="advanced")
        for name in ("request_format", "response_format"):
            if name in fields:
                fields[name] = parse_json_object(fields[name], field=name)
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            # A secret pasted into the wrong field must not come back in the error message.
            raise _first_error(exc, _raw_secrets(data)) from None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value of this configuration, for redaction."""
        key = self.api_key.get_secret_value()
        return ((key,) if key else ()) + self.advanced.secrets

    def url_problem(self) -> str | None:
        """Explain why ``url`` is probably not a chat-completions URL, or return None.

        The URL is always used as given; this only powers the hint of a failed check.
        """
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        root = f"{parts.scheme}://{parts.netloc}"
        if path.endswith("/chat/completions/chat/completions"):
            fixed = root + path[: -len("/chat/completions")]
            return f'the path repeats "/chat/completions"; use {fixed}'
        if not path:
            return f"the URL has no path; the full chat-completions URL is {root}{_CHAT_PATH}"
        if path.endswith("/v1"):
            return (
                "the URL looks like a base URL (it ends in /v1); the connector posts to the URL "
                f"as given, so use the full chat-completions URL {root}{path}/chat/completions"
            )
        return None


def _raw_secrets(data: dict[str, Any]) -> tuple[str, ...]:
    """The secret values of a raw, not yet valid configuration."""
    found = [data.get("api_key")]
    advanced = data.get("advanced")
    if isinstance(advanced, dict) and isinstance(advanced.get("secret_headers"), dict):
        found.extend(advanced["secret_headers"].values())
    return tuple(v for v in found if isinstance(v, str) and v)


def _first_error(exc: ValidationError, secrets: tuple[str, ...]) -> ConfigurationError:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "configuration"
    if field == "timeout":
        field = "config.timeout"
    message = redact(str(err["msg"]).removeprefix("Value error, "), secrets)
    # Checks across several advanced options name their field at the start of the message.
    named = re.match(r"^(advanced\.\w+): (.*)$", message, re.DOTALL)
    if named:
        field, message = named.group(1), named.group(2)
    elif err["type"] == "extra_forbidden" and field.startswith("advanced."):
        known = ", ".join(AdvancedOptions.model_fields)
        message = f"is not an advanced option; the options are: {known}"
    return ConfigurationError(message, field=field)


def load_config(raw: SourceConfig | dict[str, Any] | str | bytes) -> SourceConfig:
    """Validate a raw configuration; shorthand for ``SourceConfig.parse``."""
    return SourceConfig.parse(raw)
