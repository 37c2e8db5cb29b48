"""What a value is, in the words of the mapping's messages ("a list", "a number"...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError

__all__ = ["kind_of", "require_object"]


def kind_of(value: Any) -> str:
    """How a message names the kind of ``value``.

    >>> kind_of(None), kind_of(True), kind_of(2.5), kind_of([1]), kind_of({})
    ('null', 'a boolean', 'a number', 'a list', 'an object')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def require_object(entry: Any, *, example: str, field: str) -> Mapping[str, Any]:
    """``entry`` (an item of a configured list) when it is an object, else the error saying so.

    >>> require_object({"name": "id"}, example='{"name": "id"}', field="o")
    {'name': 'id'}
    >>> require_object(["id"], example='{"name": "id"}', field="o")
    Traceback (most recent call last):
    ...
    openai_compat.errors.ConfigurationError: o: must be an object such as {"name": "id"}, got a list
    """
    if not isinstance(entry, Mapping):
        raise ConfigurationError(
            f"must be an object such as {example}, got {kind_of(entry)}", field=field
        )
    return entry
