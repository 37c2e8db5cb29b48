"""Package attributes loaded on first use (PEP 562's module ``__getattr__``).

A package lists where each of its names lives; importing the package loads none of them,
so a process that needs one light name (a Ray actor starting, a configuration check) does
not pay for the heavy modules beside it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str,
    homes: Mapping[str, str],
    namespace: dict[str, Any],
    *,
    submodules: Collection[str] = (),
) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: ``name`` from its module ``homes[name]`` (relative,
    ``".module"``), kept in ``namespace`` (the package's globals) once loaded; a name in
    ``submodules`` is that submodule.

    >>> namespace = {}
    >>> getattr_ = lazy_attributes("json", {"JSONDecoder": ".decoder"}, namespace)
    >>> getattr_("JSONDecoder").__module__, list(namespace)
    ('json.decoder', ['JSONDecoder'])
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is not None:
            value = getattr(importlib.import_module(home, package), name)
            namespace[name] = value
            return value
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
