"""Turn a raw configuration (dict or JSON text) into a validated, typed ``SourceConfig``.

The raw shape is the original connector's six fields::

    {"url": "...", "api_key": "...", "is_stream": false, "config": {"timeout": "30"},
     "request_format": "{...json...}", "response_format": "{...json...}"}

Validation happens once, here, at the door; the rest of the package trusts the typed
object. An invalid configuration is one ``ConfigurationError`` listing every problem found
(``problems``), each naming its field and saying how to fix it.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from . import _json
from ._characters import header_value_problem, printable, surrogate_problem, url_character_problem
from ._json import parse_json_object
from ._text import excerpt
from .advanced import (
    FIELD_PROBLEM,
    AdvancedOptions,
    field_problem,
    parse_bool,
    parse_seconds,
    port_problem,
)
from .apis import Dialect, dialect_for, dialect_named
from .errors import ConfigurationError, FieldProblem, redact
from .resources import connection_defaults

__all__ = ["SourceConfig", "load_config", "parse_json_object"]

_DEFAULTS = connection_defaults()
# Servers refuse longer request lines (nginx and Apache answer 414 beyond about 8 KB), so a
# longer URL can never work; a real chat-completions URL is a few hundred characters at most.
MAX_URL_LENGTH = 8192


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
    #: The OpenAI API the server speaks (None: the one the URL's path names).
    api: str | None = None

    @field_validator("api", mode="before")
    @classmethod
    def _check_api(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError('must be one of "chat", "embeddings", "completions", "responses"')
        return dialect_named(value.strip()).name

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("is required: the full chat-completions URL, e.g. " + _DEFAULTS["url"])
        url = value.strip()
        if len(url) > MAX_URL_LENGTH:
            raise ValueError(
                f"is {len(url)} characters long; a URL of more than {MAX_URL_LENGTH} "
                "characters is refused by servers"
            )
        problem = url_character_problem(url)
        if problem is not None:
            raise ValueError(problem)
        try:
            parts = urlsplit(url)
        except ValueError:  # an unclosed [ of an IPv6 address
            raise ValueError(f'is not a URL: "{excerpt(url)}"') from None
        if parts.username is not None or parts.password is not None:
            # Refused rather than stored: a key in the URL would be listed and echoed in
            # clear, where api_key is kept secret.
            raise ValueError(
                "has a user name or password before the host (user:...@host); the URL is "
                "not secret: put the key in api_key (advanced.auth says how it is sent)"
            )
        if parts.scheme not in ("http", "https"):
            hint = f" (did you mean https://{excerpt(url)}?)" if "://" not in url else ""
            raise ValueError(f'must start with http:// or https://, got "{excerpt(url)}"{hint}')
        if not parts.hostname:
            raise ValueError(f'has no host name: "{excerpt(url)}"')
        problem = port_problem(parts)
        if problem is not None:
            raise ValueError(problem)
        return url

    @field_validator("api_key", mode="before")
    @classmethod
    def _check_api_key(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # pydantic says it must be a string
        # A key copied with its line break (or a tab, or a Windows \r\n) is the key.
        key = value.strip()
        problem = header_value_problem(key, what="an API key")
        if problem is not None:
            raise ValueError(f"{problem} (the key itself is not shown)")
        return key

    @field_validator("is_stream", mode="before")
    @classmethod
    def _check_stream(cls, value: Any) -> bool:
        return parse_bool(value, default=False)

    @field_validator("timeout", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any) -> float:
        return parse_seconds(value)

    @model_validator(mode="after")
    def _check_key_spaces(self) -> SourceConfig:
        # With advanced.auth "header" the key is the whole header value ("Token abc" may
        # be one); otherwise a space inside a key is a copy-paste accident.
        key = self.api_key.get_secret_value()
        if " " in key and self.advanced.auth != "header":
            problem = header_value_problem(key, spaces=False, what="an API key")
            raise field_problem("api_key", f"{problem} (the key itself is not shown)")
        return self

    @classmethod
    def parse(cls, raw: SourceConfig | dict[str, Any] | str | bytes) -> SourceConfig:
        """Validate a raw configuration (a dict, or JSON text holding one)."""
        if isinstance(raw, SourceConfig):
            return raw
        data = parse_json_object(raw, field="configuration")
        fields: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
        # Problems found before pydantic come first, as when each stopped the parse.
        problems: list[FieldProblem] = []
        nested = fields.pop("config", None)
        if nested is not None:
            if not isinstance(nested, dict):
                problems.append(
                    FieldProblem("config", 'must be an object such as {"timeout": "30"}')
                )
            elif "timeout" in nested:
                fields["timeout"] = nested["timeout"]
        for name in ("advanced", "request_format", "response_format"):
            if name in fields:
                try:
                    fields[name] = parse_json_object(fields[name], field=name)
                    problem = None if name == "advanced" else surrogate_problem(fields[name])
                    if problem is not None:
                        raise ConfigurationError(problem, field=name)
                except ConfigurationError as exc:
                    problems.extend(exc.problems)
                    del fields[name]
        try:
            config = cls.model_validate(fields)
        except ValidationError as exc:
            problems.extend(_problem(err) for err in exc.errors())
        else:
            if not problems:
                return config
        # A secret pasted into the wrong field must not come back in any problem.
        raise _configuration_error(problems, _raw_secrets(fields))

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value of this configuration, for redaction."""
        key = self.api_key.get_secret_value()
        return ((key,) if key else ()) + self.advanced.secrets

    @property
    def dialect(self) -> Dialect:
        """The OpenAI API of the configuration: ``api``, else the one the URL's path names
        (`openai_compat.apis`)."""
        return dialect_for(self.url, self.api)

    def url_problem(self) -> str | None:
        """Explain why ``url`` is probably not a URL of its API, or return None.

        The URL is always used as given; this only powers the hint of a failed check.
        """
        return self.dialect.url_problem(self.url)


def _raw_secrets(fields: dict[str, Any]) -> tuple[str, ...]:
    """The secret values of a raw, not yet valid configuration (its JSON text parsed)."""
    found = [fields.get("api_key")]
    advanced = fields.get("advanced")
    headers = advanced.get("secret_headers") if isinstance(advanced, dict) else None
    if isinstance(headers, str):
        with contextlib.suppress(ValueError):  # ConfigurationError (too deep) is one
            headers = _json.loads(headers, field="advanced.secret_headers")
    if isinstance(headers, dict):
        found.extend(headers.values())
    # Each as given and as it is used (stripped): a message may quote either.
    texts = [v for v in found if isinstance(v, str)]
    return tuple(dict.fromkeys(v for text in texts for v in (text, text.strip()) if v))


def _problem(err: ErrorDetails) -> FieldProblem:
    """One pydantic error as a problem: its location as a dotted field path, and the reason."""
    path = [str(part) for part in err["loc"]]
    if path[:1] == ["timeout"]:
        path[0:1] = ["config", "timeout"]  # The raw shape nests it: {"config": {"timeout": ...}}
    ctx = err.get("ctx") or {}
    if err["type"] == FIELD_PROBLEM:
        # A check across fields names its field relative to the model it validates.
        path.append(str(ctx["field"]))
        reason = str(ctx["reason"])
    elif err["type"] == "value_error":
        reason = str(ctx["error"])  # The validator's own message, without pydantic's prefix.
    elif err["type"] == "extra_forbidden" and path[:1] == ["advanced"]:
        reason = (
            f"is not an advanced option; the options are: {', '.join(AdvancedOptions.model_fields)}"
        )
    else:
        reason = err["msg"]
    return FieldProblem(".".join(path) or "configuration", reason)


def _configuration_error(
    problems: list[FieldProblem], secrets: tuple[str, ...]
) -> ConfigurationError:
    """Every problem, redacted and printable; the first is the error's ``field`` and ``reason``.

    A field path may hold a key of the raw configuration: cut short, any lone surrogate
    escaped, so that every message can be printed and sent as JSON.
    """
    shown = [
        FieldProblem(
            printable(excerpt(redact(p.field, secrets), 120)), printable(redact(p.message, secrets))
        )
        for p in problems
    ]
    return ConfigurationError(shown[0].message, field=shown[0].field, problems=shown)


def load_config(raw: SourceConfig | dict[str, Any] | str | bytes) -> SourceConfig:
    """Validate a raw configuration; shorthand for ``SourceConfig.parse``."""
    return SourceConfig.parse(raw)
