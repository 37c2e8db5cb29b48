"""Check a connector's name and configuration against the spec, reporting every bad field.

The configuration is validated once, by ``SourceConfig.parse``, whose error lists every
problem with its field. A value written ``ENV["NAME"]`` is checked when it is used, not
when it is saved, so it is left out of that check; one naming the application's own
settings is refused at once. A stored secret reused for a request goes only to the endpoint
origin it was saved for (`moved_secrets`).
"""

from __future__ import annotations

from typing import Any

from ...config import SourceConfig
from ...errors import ConfigurationError, FieldProblem
from ..http import FieldError, surrogate_problems_of
from ..secrets import application_setting_refs, env_ref_name, moved_secret_problems
from .store import StoredConnector

__all__ = ["CONFIG_FIELDS", "moved_secrets", "validate_configuration", "validate_name"]

CONFIG_FIELDS = (
    "url",
    "api_key",
    "is_stream",
    "config",
    "request_format",
    "response_format",
    "advanced",
    "api",
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
    if 0xD800 <= code <= 0xDFFF:
        return "a lone surrogate (not a character)"
    if char in _BIDI_CONTROLS:
        return f"a bidirectional control ({_BIDI_CONTROLS[char]})"
    return None


def validate_name(name: Any) -> list[FieldError]:
    """Problems with a connector name (a non-empty string of at most 255 characters).

    Control characters (C0, DEL, C1), Unicode bidirectional controls and lone surrogates
    are refused, naming the first one and its position (counted from 1):

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


def _checkable(clean: dict[str, Any]) -> dict[str, Any]:
    """``clean`` without the values written ``ENV["NAME"]`` (also inside a group), and
    without an ``api_key`` that is not text (reported on its own)."""
    checkable: dict[str, Any] = {}
    for key, value in clean.items():
        if env_ref_name(value) is not None or (key == "api_key" and not isinstance(value, str)):
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if env_ref_name(v) is None}
        checkable[key] = value
    return checkable


def _form_order(problem: FieldProblem) -> int:
    # The form's order of fields; one field's problems stay in the order they were found.
    top = problem.field.split(".", 1)[0]
    return CONFIG_FIELDS.index(top) if top in CONFIG_FIELDS else len(CONFIG_FIELDS)


def validate_configuration(
    raw: Any, *, require_api_key: bool, prefix: str = "configuration"
) -> tuple[dict[str, Any], list[FieldError]]:
    """The configuration's known fields, and every problem found (field path and reason)."""
    if not isinstance(raw, dict):
        return {}, [FieldError(prefix, "must be a JSON object with the connector's fields")]
    errors: list[FieldError] = []
    clean = {key: raw[key] for key in CONFIG_FIELDS if key in raw}
    # Text that cannot be encoded is refused before anything reads it (the parser, the
    # cipher, the store), each value by its own field.
    unencodable = surrogate_problems_of(clean, prefix)
    if unencodable:
        return clean, unencodable
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
    try:
        # The API key is checked as a value too, so that it is redacted from every problem.
        SourceConfig.parse(_checkable(clean))
    except ConfigurationError as exc:
        errors += [
            FieldError(f"{prefix}.{p.field}", p.message)
            for p in sorted(exc.problems, key=_form_order)
        ]
    errors += [
        FieldError(f"{prefix}.{path}", message) for path, message in application_setting_refs(clean)
    ]
    return clean, errors


def moved_secrets(stored: StoredConnector, new_url: Any, kept: dict[str, str]) -> list[FieldError]:
    """The stored secrets (with a value) a request would reuse for another endpoint origin."""
    reused = [path for path, value in kept.items() if value]
    return moved_secret_problems(stored.configuration.get("url"), new_url, reused, "configuration")
