"""Payloads from rows: the request format's ``{{column}}`` templates, then the mapping list."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .._json import check_depth
from .._strict_json import encode_strict
from ..errors import ConfigurationError
from ._casts import as_text, cast_value
from ._mapping_list import parse_mapping
from ._paths import MISSING, harvest, set_path

__all__ = ["PayloadBuilder", "RowMappingError"]

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class RowMappingError(ConfigurationError):
    """One row cannot be turned into a payload (a missing column, a value that cannot be cast).

    The row is recorded as failed and no request is sent for it.
    """

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


def _missing_column(column: str, row: Mapping[str, Any], what: str) -> RowMappingError:
    columns = ", ".join(list(map(str, row))[:20]) or "none"
    return RowMappingError(
        f"{what}: the row has no column {column!r} (its columns: {columns})", column=column
    )


class _Template:
    """A string of the request format holding ``{{column}}`` placeholders."""

    __slots__ = ("_pairs", "columns", "parts", "where")

    def __init__(self, text: str, where: str) -> None:
        self.where = where
        self.parts: list[str] = _PLACEHOLDER.split(text)
        # split() alternates literal text and captured column names.
        self.columns = self.parts[1::2]
        for column in self.columns:
            if not column:
                raise ConfigurationError(
                    f"has an empty placeholder {{{{}}}} at {where}; write {{{{column}}}}",
                    field="request_format",
                )
        # Each column with the literal text after it (the first literal starts the text).
        self._pairs = list(zip(self.columns, self.parts[2::2], strict=True))

    def fill(self, row: Mapping[str, Any]) -> str:
        out = [self.parts[0]]
        for column, literal in self._pairs:
            value = harvest(row, column)
            if value is MISSING:
                raise _missing_column(column, row, f"placeholder {{{{{column}}}}} at {self.where}")
            out.append(value if type(value) is str else as_text(value))
            out.append(literal)
        return "".join(out)


def _compile(node: Any, where: str) -> Any:
    if isinstance(node, dict):
        return {k: _compile(v, f"{where}.{k}" if where else k) for k, v in node.items()}
    if isinstance(node, list):
        return [_compile(v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(node)]
    if isinstance(node, str) and "{{" in node and _PLACEHOLDER.search(node):
        return _Template(node, where)
    return node


_Maker = Callable[[Mapping[str, Any]], Any]


def _maker(node: Any) -> _Maker | None:
    """What makes a row's copy of the compiled ``node``: containers fresh, templates
    filled, other values as they are (None: ``node`` is such a value).

    Made once per request format, so that a row's payload is a few copies of prepared
    containers (in C) with the filled values set in their places, not a walk of the
    format testing each value's type.
    """
    if isinstance(node, _Template):
        return node.fill
    if isinstance(node, dict):
        base: dict[Any, Any] = {}
        dict_fills: list[tuple[Any, _Maker]] = []
        for key, value in node.items():
            make = _maker(value)
            base[key] = value if make is None else None  # the key's place, in order
            if make is not None:
                dict_fills.append((key, make))
        return partial(_fresh_dict, base, dict_fills)
    if isinstance(node, list):
        items: list[Any] = []
        list_fills: list[tuple[int, _Maker]] = []
        for i, value in enumerate(node):
            make = _maker(value)
            items.append(value if make is None else None)
            if make is not None:
                list_fills.append((i, make))
        return partial(_fresh_list, items, list_fills)
    return None


def _fresh_dict(
    base: dict[Any, Any], fills: list[tuple[Any, _Maker]], row: Mapping[str, Any]
) -> dict[Any, Any]:
    out = base.copy()
    for key, make in fills:
        out[key] = make(row)  # an existing key: it keeps its place
    return out


def _fresh_list(
    base: list[Any], fills: list[tuple[int, _Maker]], row: Mapping[str, Any]
) -> list[Any]:
    out = base.copy()
    for i, make in fills:
        out[i] = make(row)
    return out


class PayloadBuilder:
    """Builds the payload of each row: request format, ``{{column}}`` templates, mapping list.

    The mapping's paths are checked against the request format once, here: a path that
    runs into a string (``model.name``) is a ``ConfigurationError`` before any row is read.

    >>> builder = PayloadBuilder({"model": "m", "messages": [{"role": "user", "content":
    ...     "Summarise: {{body}}"}]}, [{"name": "max_tokens", "value": "n", "type": "number"}])
    >>> payload = builder.build({"body": "a ticket", "n": "64"})
    >>> payload["messages"][0]["content"], payload["max_tokens"]
    ('Summarise: a ticket', 64)
    """

    def __init__(self, request_format: Mapping[str, Any], mapping: Any = None) -> None:
        check_depth(request_format, field="request_format")
        self._compiled = _compile(dict(request_format), "")
        make = _maker(self._compiled)
        assert make is not None  # a dict
        self._make: _Maker = make
        self.items = parse_mapping(mapping)
        self.columns: list[str] = []
        self._collect_columns(self._compiled)
        for item in self.items:
            if not item.static and item.value not in self.columns:
                self.columns.append(item.value)
        self._check_paths()

    def _collect_columns(self, node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                self._collect_columns(v)
        elif isinstance(node, list):
            for v in node:
                self._collect_columns(v)
        elif isinstance(node, _Template):
            self.columns += [c for c in node.columns if c not in self.columns]

    @property
    def depends_on_row(self) -> bool:
        """False when every row would get the same payload (no template, no dynamic item)."""
        return bool(self.columns)

    def _check_paths(self) -> None:
        probe: dict[str, Any] = self._make(_Anything())
        for i, item in enumerate(self.items):
            try:
                set_path(probe, item.path, None if item.static else "")
            except ConfigurationError as exc:
                message = exc.message.removeprefix("mapping: ")
                raise ConfigurationError(message, field=f"mapping[{i}].name") from None

    def build(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The payload for ``row``; raises ``RowMappingError`` when the row cannot be mapped.

        The payload is checked to be sendable as strict JSON (no NaN or infinity, no lone
        surrogate, at most ``MAX_DEPTH`` levels deep): a row that breaks it fails alone.
        """
        return self._build_encoded(row)[0]

    def build_body(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], bytes | None]:
        """`build`'s payload and the request body it encodes to (as the client encodes a
        payload), so that a batch run encodes each row once; the body is None when a
        subclass's own ``build`` made the payload (it is then encoded when sent).

        >>> builder = PayloadBuilder({"model": "m", "n": "{{n}}"})
        >>> builder.build_body({"n": 1})
        ({'model': 'm', 'n': '1'}, b'{"model": "m", "n": "1"}')
        """
        if type(self).build is not PayloadBuilder.build:
            return self.build(row), None
        return self._build_encoded(row)

    def _build_encoded(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        try:
            payload = self._build(row)
        except RecursionError:
            raise RowMappingError(
                "a value of the row is nested too deeply to be written as text"
            ) from None
        except ValueError as exc:
            if isinstance(exc, ConfigurationError):
                raise
            # Text of a value that Python will not write (an integer of 5,000 digits).
            raise RowMappingError(f"a value of the row cannot be written as text: {exc}") from None
        try:
            body = encode_strict(payload)
        except ValueError as exc:
            raise RowMappingError(f"the payload cannot be sent as JSON: {exc}") from None
        return payload, body

    def _build(self, row: Mapping[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = self._make(row)
        for i, item in enumerate(self.items):
            if item.static:
                raw = item.value
            else:
                raw = harvest(row, item.value)
                if raw is MISSING:
                    raise _missing_column(item.value, row, f"mapping[{i}] ({item.name})")
            try:
                value = cast_value(raw, item.type)
            except ValueError as exc:
                source = "its static value" if item.static else f"column {item.value!r}"
                raise RowMappingError(
                    f"mapping[{i}] ({item.name}): cannot cast {source} to {item.type}: {exc}",
                    column=None if item.static else item.value,
                ) from None
            try:
                set_path(payload, item.path, value)
            except ConfigurationError as exc:
                # Possible only when a placeholder filled a container's place with text.
                raise RowMappingError(f"mapping[{i}]: {exc.message}") from None
        return payload


class _Anything(dict[str, Any]):
    """A row that has every column (for checking the mapping's paths once)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return ""
