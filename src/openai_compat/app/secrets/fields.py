"""The configuration's secret fields, found from the spec's ``multiwoven_secret`` markers.

Every secret (the API key, ``advanced.secret_headers``, ``advanced.proxy``, and any field
the spec marks later) is handled the same way: taken out of the stored configuration,
encrypted on its own, masked in every answer, and kept when an update leaves it out.
Paths are dotted (``advanced.proxy``).

>>> fields = SecretFields(("api_key", "advanced.proxy"))
>>> public, found = fields.split({"url": "u", "api_key": "k", "advanced": {"proxy": "p"}})
>>> public, found
({'url': 'u', 'advanced': {}}, {'api_key': 'k', 'advanced.proxy': 'p'})
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from .env_refs import env_ref_name

__all__ = ["MASK", "SecretFields", "secret_paths"]

MASK = "********"


def secret_paths(properties: Mapping[str, Any], prefix: str = "") -> tuple[str, ...]:
    """The dotted paths of every property marked ``multiwoven_secret``, nested ones too."""
    found: list[str] = []
    for key, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        path = f"{prefix}{key}"
        if prop.get("multiwoven_secret"):
            found.append(path)
        nested = prop.get("properties")
        if isinstance(nested, Mapping):
            found.extend(secret_paths(nested, f"{path}."))
    return tuple(found)


def _parent(config: dict[str, Any], path: str, *, create: bool) -> dict[str, Any] | None:
    node = config
    for key in path.split(".")[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            if not create:
                return None
            child = node[key] = {}
        node = child
    return node


def _stored_form(value: Any) -> Any:
    # A secret is stored as text: a JSON object (secret headers given as an object) is
    # kept as its JSON, which every secret field also accepts. Anything else (a number, a
    # list) is left as given, for validation to refuse: written as JSON text it would pass.
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else value


class SecretFields:
    """Split secrets out of a configuration, put them back, and mask them."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.paths = paths

    def _present(self, config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
        for path in self.paths:
            parent = _parent(config, path, create=False)
            leaf = path.rsplit(".", 1)[-1]
            if parent is not None and leaf in parent:
                yield path, parent, leaf

    def split(self, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A copy of ``config`` without its secrets, and the secrets given (path -> text).

        A secret left out, ``None`` or the mask is not "given": the stored one is kept.
        """
        public = copy.deepcopy(config)
        given: dict[str, Any] = {}
        for path, parent, leaf in self._present(public):
            value = parent.pop(leaf)
            if value is not None and value != MASK:
                # The API key is text only: an object given for it stays one, to be refused.
                given[path] = value if path == "api_key" else _stored_form(value)
        return public, given

    def merge(self, config: dict[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``config`` with ``secrets`` (path -> clear value) put in place."""
        merged = copy.deepcopy(config)
        for path, value in secrets.items():
            parent = _parent(merged, path, create=True)
            assert parent is not None
            parent[path.rsplit(".", 1)[-1]] = value
        return merged

    def masked(self, config: dict[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
        """``config`` with each set secret shown as the mask (an ``ENV[...]`` stays as is)."""
        shown = {
            path: value if env_ref_name(value) else (MASK if value else "")
            for path, value in secrets.items()
        }
        return self.merge(config, shown)
