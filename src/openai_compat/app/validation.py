"""Check a connector's name and configuration against the spec, reporting every bad field.

``SourceConfig.parse`` stops at the first problem; the form wants them all, so each field
is validated on its own with the same rules. A value written ``ENV["NAME"]`` is checked
when it is used, not when it is saved.
"""

from __future__ import annotations

from typing import Any

from ..config import SourceConfig
from ..errors import ConfigurationError
from .env_refs import env_ref_name
from .problems import FieldError

__all__ = ["CONFIG_FIELDS", "validate_configuration", "validate_name"]

CONFIG_FIELDS = (
    "url",
    "api_key",
    "is_stream",
    "config",
    "request_format",
    "response_format",
    "advanced",
)
_REQUIRED = ("url", "request_format", "response_format")


# Bidirectional controls reorder the text around them ("Trojan Source"): a name that shows
# one thing and is another.
_BIDI_CONTROLS = {
    "\u061c": "ARABIC LETTER MARK",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING",
    "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
}


def _unwanted(char: str) -> str | None:
    """What ``char`` is when a name must not hold it: a control or a bidi control."""
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return "a control character"
    if char in _BIDI_CONTROLS:
        return f"a bidirectional control ({_BIDI_CONTROLS[char]})"
    return None


def validate_name(name: Any) -> list[FieldError]:
    """Problems with a connector name (a non-empty string of at most 255 characters).

    Control characters (C0, DEL, C1) and Unicode bidirectional controls are refused,
    naming the first one and its position (counted from 1):

    >>> validate_name("ab\u202ecd")[0]["message"]
    'must not contain a bidirectional control (RIGHT-TO-LEFT OVERRIDE), U+202E at position 3'
    """
    if not isinstance(name, str) or not name.strip():
        return [FieldError("name", "is required: a name for this connector")]
    if len(name) > 255:
        return [FieldError("name", f"is too long ({len(name)} characters, at most 255)")]
    for position, char in enumerate(name, start=1):
        kind = _unwanted(char)
        if kind is not None:
            where = f"U+{ord(char):04X} at position {position}"
            return [FieldError("name", f"must not contain {kind}, {where}")]
    return []


def _check_one(key: str, value: Any) -> str | None:
    if env_ref_name(value) is not None:
        return None
    if isinstance(value, dict):
        # The values of a group written ENV["NAME"] are checked when used.
        value = {k: v for k, v in value.items() if env_ref_name(v) is None}
    try:
        SourceConfig.parse({key: value})
    except ConfigurationError as exc:
        field = exc.field or key
        return f"{field}\0{exc.message.removeprefix(f'{field}: ')}"
    return None


def validate_configuration(
    raw: Any, *, require_api_key: bool, prefix: str = "configuration"
) -> tuple[dict[str, Any], list[FieldError]]:
    """The configuration's known fields, and every problem found (field path and reason)."""
    if not isinstance(raw, dict):
        return {}, [FieldError(prefix, "must be a JSON object with the connector's fields")]
    errors: list[FieldError] = []
    clean = {key: raw[key] for key in CONFIG_FIELDS if key in raw}
    required = (*_REQUIRED, "api_key") if require_api_key else _REQUIRED
    for key in required:
        if key not in clean or clean[key] is None:
            hint = ' (use "" for an endpoint that needs no key)' if key == "api_key" else ""
            errors.append(FieldError(f"{prefix}.{key}", f"is required{hint}"))
    if (
        "api_key" in clean
        and clean["api_key"] is not None
        and not isinstance(clean["api_key"], str)
    ):
        errors.append(FieldError(f"{prefix}.api_key", "must be a string"))
    for key, value in clean.items():
        if key == "api_key" or value is None:
            continue
        problem = _check_one(key, value)
        if problem:
            field, message = problem.split("\0", 1)
            errors.append(FieldError(f"{prefix}.{field}", message))
    return clean, errors
