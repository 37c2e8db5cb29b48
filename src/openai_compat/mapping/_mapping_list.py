"""The platform's mapping list: validating its items into `MappingItem` values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._json import load_json_text
from ..errors import ConfigurationError
from ._kinds import require_object
from ._paths import MAX_LIST_ITEMS, Path, parse_path

__all__ = ["MappingItem", "parse_mapping"]

_EXAMPLE = (
    '{"name": "messages.0.content", "value": "question", "value_type": "dynamic", "type": "string"}'
)


class _ListReach:
    """The list items a mapping's paths reach: each list counts its largest index once
    (``messages.0`` and ``messages.1`` reach two items), kept under `MAX_LIST_ITEMS`."""

    def __init__(self) -> None:
        self._longest: dict[Path, int] = {}
        self.items = 0

    def add(self, path: Path, field: str) -> None:
        for depth, segment in enumerate(path):
            if not isinstance(segment, int):
                continue
            prefix = path[:depth]
            before = self._longest.get(prefix, 0)
            if segment + 1 > before:
                self._longest[prefix] = segment + 1
                self.items += segment + 1 - before
        if self.items > MAX_LIST_ITEMS:
            shown = ".".join(str(s) for s in path)
            raise ConfigurationError(
                f"with {shown} the mapping's paths reach {self.items} list items in all "
                f"(a list is padded with nulls up to its largest index); at most "
                f"{MAX_LIST_ITEMS} list items in all are allowed: use smaller list indices",
                field=field,
            )


@dataclass(frozen=True, slots=True)
class MappingItem:
    """One item of the platform's mapping list."""

    name: str
    path: Path
    value: Any
    static: bool
    type: str | None


def parse_mapping(raw: Any) -> list[MappingItem]:
    """Validate the platform's mapping list (a list of objects, or JSON text holding one).

    >>> parse_mapping([{"name": "messages.0.content", "value": "q"}])[0].path
    ('messages', 0, 'content')
    """
    if raw is None:
        return []
    raw = load_json_text(raw, field="mapping")
    if isinstance(raw, Mapping):
        # {"messages.0.content": "question"} is accepted as shorthand for dynamic items.
        raw = [{"name": k, "value": v} for k, v in raw.items()]
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigurationError(
            'must be a list of {"name", "value", "value_type", "type"} objects', field="mapping"
        )
    items = []
    reach = _ListReach()
    for i, entry in enumerate(raw):
        where = f"mapping[{i}]"
        entry = require_object(entry, example=_EXAMPLE, field=where)
        name = entry.get("name")
        path = parse_path(name, field=f"{where}.name")
        reach.add(path, f"{where}.name")
        given_type = entry.get("value_type")
        value_type = given_type.strip().lower() if isinstance(given_type, str) else given_type
        if value_type is None:
            value_type = "dynamic"
        if value_type not in ("static", "dynamic"):
            raise ConfigurationError(
                f'must be "static" or "dynamic", got {value_type!r}', field=f"{where}.value_type"
            )
        value = entry.get("value")
        static = value_type == "static"
        if not static and (not isinstance(value, str) or not value):
            raise ConfigurationError(
                "must name a column of the input (value_type is dynamic)", field=f"{where}.value"
            )
        type_ = entry.get("type")
        if type_ is not None and not isinstance(type_, str):
            raise ConfigurationError(
                "must be a string such as string, number or boolean", field=f"{where}.type"
            )
        items.append(MappingItem(str(name).strip(), path, value, static, type_))
    return items
