"""Configuration values written ``ENV["NAME"]`` are read from the environment when used.

As on the original platform, a value may name an environment variable instead of holding
the value itself (``"api_key": "ENV[\\"OPENAI_API_KEY\\"]"``): the stored configuration
keeps the reference, and the value is looked up each time the configuration is used.

The application's own settings are never a connector's value: a configuration is sent to
its endpoint (the API key as a bearer token), so ``ENV["OPENAI_COMPAT_SECRET_KEY"]`` would
hand the key that decrypts every stored secret to whoever chose the endpoint. Every
``OPENAI_COMPAT_*`` variable and ``DATABASE_URL`` are refused, when saved and when used.

>>> import os; os.environ["DOC_KEY"] = "sk-doc"
>>> resolve_env_refs({"api_key": 'ENV["DOC_KEY"]', "is_stream": False})
{'api_key': 'sk-doc', 'is_stream': False}
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ...errors import ConfigurationError

__all__ = [
    "application_setting_refs",
    "env_ref_name",
    "has_env_refs",
    "is_application_setting",
    "resolve_env_refs",
]

_REF = re.compile(r"""^\s*ENV\[\s*(["'])([A-Za-z_][A-Za-z0-9_]*)\1\s*\]\s*$""")
_SETTINGS_PREFIX = "OPENAI_COMPAT_"
_SETTINGS = frozenset({"DATABASE_URL"})


def is_application_setting(name: str) -> bool:
    """True for a variable the application reads for itself (never a connector's value).

    >>> is_application_setting("OPENAI_COMPAT_SECRET_KEY"), is_application_setting("OPENAI_API_KEY")
    (True, False)
    """
    return name.upper().startswith(_SETTINGS_PREFIX) or name.upper() in _SETTINGS


def _setting_message(name: str) -> str:
    return (
        f'ENV["{name}"] names one of the application\'s own settings, which a connector '
        "never reads; put the value in a variable of its own (e.g. OPENAI_API_KEY) and name "
        "that, or enter the value itself"
    )


def application_setting_refs(value: Any) -> list[tuple[str, str]]:
    """(field path, message) for each ``ENV["NAME"]`` in ``value`` naming an application setting.

    >>> application_setting_refs({"api_key": 'ENV["DATABASE_URL"]', "url": 'ENV["URL"]'})[0][0]
    'api_key'
    """
    return [
        (path, _setting_message(name))
        for path, name in _refs(value)
        if is_application_setting(name)
    ]


def _refs(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, variable name) of every ``ENV["NAME"]`` in ``value``, nested ones too."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _refs(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _refs(item, f"{path}.{i}")
    else:
        name = env_ref_name(value)
        if name is not None:
            yield path, name


def env_ref_name(value: Any) -> str | None:
    """The variable name if ``value`` is an ``ENV["NAME"]`` reference, else None."""
    if not isinstance(value, str):
        return None
    match = _REF.match(value)
    return match.group(2) if match else None


def has_env_refs(value: Any) -> bool:
    """True if ``value`` (or any value nested in it) is an ``ENV["NAME"]`` reference."""
    return next(_refs(value), None) is not None


def resolve_env_refs(
    value: Any, *, path: str = "", environ: Mapping[str, str] | None = None
) -> Any:
    """A copy of ``value`` with every ``ENV["NAME"]`` string replaced by the variable's value.

    A variable that is not set is a ``ConfigurationError`` naming the field and the variable.
    """
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {
            key: resolve_env_refs(item, path=f"{path}.{key}" if path else str(key), environ=env)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            resolve_env_refs(item, path=f"{path}.{i}", environ=env) for i, item in enumerate(value)
        ]
    name = env_ref_name(value)
    if name is None:
        return value
    if is_application_setting(name):
        raise ConfigurationError(_setting_message(name), field=path or None)
    if name not in env:
        raise ConfigurationError(
            f'refers to the environment variable {name} (ENV["{name}"]), which is not set in '
            "the application's environment; set it and restart, or enter the value itself",
            field=path or None,
        )
    return env[name]
