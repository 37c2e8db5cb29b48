"""The connector's data files (spec, meta data, catalog), loaded once."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["catalog", "connection_defaults", "load", "meta", "spec"]


@cache
def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def load(name: str) -> Any:
    """A fresh copy of the parsed JSON data file ``name`` (e.g. ``"spec.json"``)."""
    return json.loads(_read(name))


def spec() -> dict[str, Any]:
    """The connector specification (``spec.json``)."""
    data: dict[str, Any] = load("spec.json")
    return data


def meta() -> dict[str, Any]:
    """The connector meta data (``meta.json``), ``{"data": {...}}``."""
    data: dict[str, Any] = load("meta.json")
    return data


def catalog() -> dict[str, Any]:
    """The catalog returned by discover (``catalog.json``)."""
    data: dict[str, Any] = load("catalog.json")
    return data


def connection_defaults() -> dict[str, Any]:
    """The ``default`` of each top-level property of the connection specification."""
    props = spec()["connection_specification"]["properties"]
    return {name: prop["default"] for name, prop in props.items() if "default" in prop}
