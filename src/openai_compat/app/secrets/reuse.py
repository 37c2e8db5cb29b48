"""Stored secrets go only to the endpoint they were saved for.

A request that leaves a stored secret out (an update, or a check with ``connector_id``)
reuses the stored value. If it also moves the endpoint to another origin (scheme, host or
port), reusing it would hand the saved API key, secret headers or proxy to a host the
user never gave them to: each such secret must be given again.

>>> problems = moved_secret_problems(
...     "https://a.example/v1", "https://b.example/v1", ["api_key"], "configuration")
>>> problems[0]["field"]
'configuration.api_key'
>>> problems[0]["message"][:71]
'the endpoint host changed from https://a.example to https://b.example; '
>>> moved_secret_problems("https://a.example/v1", "https://A.example:443/v2", ["api_key"], "c")
[]
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from ..http import FieldError
from .env_refs import env_ref_name

__all__ = ["moved_secret_problems", "origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# What the message asks for again, by secret path; other secret fields are named by path.
_WHAT = {
    "api_key": "the API key",
    "advanced.secret_headers": "the secret headers",
    "advanced.proxy": "the proxy",
}


def origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of ``url``, the default port filled in; None if it has none.

    >>> origin("HTTPS://Model.Example/v1/chat")
    ('https', 'model.example', 443)
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not scheme or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme)


def _shown(found: tuple[str, str, int | None]) -> str:
    scheme, host, port = found
    host = f"[{host}]" if ":" in host else host
    default = _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def moved_secret_problems(
    stored_url: object, new_url: object, reused: Iterable[str], prefix: str
) -> list[FieldError]:
    """One problem per secret of ``reused`` (dotted paths) when the endpoint's origin moved.

    URLs are compared as written (an ``ENV["NAME"]`` reference by its name): a reference
    replaced by another one, or by a URL, is a move too. A URL without an origin is left to
    validation, which reports it.
    """
    if stored_url == new_url:
        return []
    if env_ref_name(stored_url) is not None or env_ref_name(new_url) is not None:
        moved, shown_before, shown_after = True, str(stored_url), str(new_url)
    else:
        if not isinstance(stored_url, str) or not isinstance(new_url, str):
            return []
        before, after = origin(stored_url), origin(new_url)
        if before is None or after is None:
            return []
        moved, shown_before, shown_after = before != after, _shown(before), _shown(after)
    if not moved:
        return []
    return [
        FieldError(
            f"{prefix}.{path}",
            f"the endpoint host changed from {shown_before} to {shown_after}; give "
            f"{_WHAT.get(path, path)} again (stored secrets are sent only to the host they "
            "were saved for)",
        )
        for path in sorted(reused)
    ]
