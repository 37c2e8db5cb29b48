"""Rows to payloads and answers to fields: the platform's mapping rules.

**In.** The payload for a row starts from a copy of the configured ``request_format``; then

1. ``{{column}}`` placeholders inside its string values are filled with the row's values
   (``"Summarise this ticket: {{body}}"``);
2. the platform's mapping list is applied in order, each item
   ``{"name": "messages.0.content", "value": "question", "value_type": "dynamic",
   "type": "string"}``:

   - ``name`` is a dotted path; an all-digit segment is a list index; missing containers are
     created (a list when the next segment is numeric, else an object); a list shorter than
     the index is padded with ``null``;
   - ``value_type: "static"`` uses ``value`` itself; otherwise ``value`` names a column of
     the row (a "harvested" value);
   - ``type`` casts: ``string`` -> text (a null value -> ``""``), ``number`` -> an integer
     when the value is one, else a decimal, ``boolean`` -> true only for ``"true"`` / true;
     any other type passes the value through;
   - later items with the same name overwrite earlier ones.

   Two casts differ from the original connector on purpose: it turned ``"3.7"`` into ``3``
   (we keep ``3.7``) and a real boolean ``true`` into ``false`` (we keep ``true``). A column
   that is absent from the row altogether, or a value that cannot be cast, fails that row
   with a `RowMappingError` naming the column, instead of sending ``""`` or ``0``.

**Out.** Output fields are dotted paths into the answer, ``[{"name":
"choices.0.message.content", "as": "summary"}]``. Without a list, every leaf of the
``response_format`` sample that holds a string is an output. A path through ``delta`` is
read from ``message`` when the answer has no ``delta`` (an assembled stream, or a JSON
answer), so a sample written as a stream chunk works for both. ``"parse": "json"`` parses a
value that is JSON text (a model asked to answer in JSON; a Markdown code fence around it
is removed), and ``"fields"`` picks values out of the parsed object.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "MappingItem",
    "OutputError",
    "OutputField",
    "PayloadBuilder",
    "RowMappingError",
    "as_text",
    "cast_value",
    "default_outputs",
    "extract_outputs",
    "get_path",
    "parse_mapping",
    "parse_outputs",
    "parse_path",
    "set_path",
]

Segment = str | int
Path = tuple[Segment, ...]

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_MISSING = object()


class RowMappingError(ConfigurationError):
    """One row cannot be turned into a payload (a missing column, a value that cannot be cast).

    The row is recorded as failed and no request is sent for it.
    """

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class OutputError(Exception):
    """An output field could not be read from an answer (e.g. ``parse: json`` on non-JSON)."""


# -- paths ---------------------------------------------------------------------------------


def parse_path(name: Any, *, field: str = "name") -> Path:
    """Split a dotted path; all-digit segments become list indices.

    >>> parse_path("messages.0.content")
    ('messages', 0, 'content')
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError("must be a dotted path such as messages.0.content", field=field)
    segments = name.strip().split(".")
    if any(not s for s in segments):
        raise ConfigurationError(
            f'"{name}" has an empty segment; write a dotted path such as messages.0.content',
            field=field,
        )
    return tuple(int(s) if s.isdigit() else s for s in segments)


def _text_of(path: Path) -> str:
    return ".".join(str(s) for s in path)


def _kind(value: Any) -> str:
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


def set_path(root: dict[str, Any], path: Path, value: Any) -> None:
    """Set ``value`` at ``path`` inside ``root``, creating the missing containers.

    A missing (or null) container becomes a list when the next segment is numeric, else an
    object; a list shorter than an index is padded with ``None``. Raises
    ``ConfigurationError`` when the path runs into a value that is not a container.

    >>> payload = {"model": "m"}
    >>> set_path(payload, ("messages", 1, "content"), "hi")
    >>> payload
    {'model': 'm', 'messages': [None, {'content': 'hi'}]}
    """
    node: Any = root
    for depth, segment in enumerate(path[:-1]):
        child = _child(node, segment)
        if child is _MISSING or child is None:
            child = [] if isinstance(path[depth + 1], int) else {}
            _assign(node, segment, child, path[: depth + 1])
        elif not isinstance(child, dict | list):
            where = _text_of(path[: depth + 1])
            raise ConfigurationError(
                f"cannot set {_text_of(path)}: {where} is {_kind(child)}, not an object or a list",
                field="mapping",
            )
        node = child
    _assign(node, path[-1], value, path)


def _child(node: Any, segment: Segment) -> Any:
    if isinstance(node, dict):
        return node.get(str(segment), _MISSING)
    if isinstance(node, list) and isinstance(segment, int):
        return node[segment] if segment < len(node) else _MISSING
    return _MISSING


def _assign(node: Any, segment: Segment, value: Any, path: Path) -> None:
    if isinstance(node, dict):
        node[str(segment)] = value
        return
    if not isinstance(segment, int):
        raise ConfigurationError(
            f'cannot set {_text_of(path)}: "{segment}" is not a list index '
            f"and {_text_of(path[:-1]) or 'the payload'} is a list",
            field="mapping",
        )
    if segment >= len(node):
        node.extend([None] * (segment + 1 - len(node)))
    node[segment] = value


def get_path(data: Any, path: Path) -> Any:
    """The value at ``path`` in ``data``, or ``None`` when any segment is missing.

    A ``delta`` segment reads ``message`` when there is no ``delta`` (see the module doc).

    >>> get_path({"choices": [{"message": {"content": "Hi"}}]}, ("choices", 0, "delta", "content"))
    'Hi'
    """
    node = data
    for segment in path:
        if isinstance(node, dict):
            key = str(segment)
            if key in node:
                node = node[key]
            elif key == "delta" and "message" in node:
                node = node["message"]
            else:
                return None
        elif isinstance(node, list) and isinstance(segment, int):
            if segment >= len(node):
                return None
            node = node[segment]
        else:
            return None
    return node


# -- casts ---------------------------------------------------------------------------------


def as_text(value: Any, *, compact: bool = False) -> str:
    """A value as text: strings as they are, null as "", JSON spelling for the rest.

    ``compact`` drops the spaces after ``,`` and ``:`` in objects and lists (CSV cells).

    >>> as_text(True), as_text(None), as_text({"a": 1}), as_text([1, 2], compact=True)
    ('true', '', '{"a": 1}', '[1,2]')
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if compact:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, ensure_ascii=False)


def _as_number(value: Any) -> int | float:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ValueError(f"{_kind(value)} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value
    text = str(value).strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    raise ValueError(f"{json.dumps(value, ensure_ascii=False)} is not a number")


def cast_value(value: Any, type_: str | None) -> Any:
    """Cast ``value`` per the mapping ``type``; raises ``ValueError`` when it cannot.

    >>> cast_value("3.7", "number"), cast_value("42", "number"), cast_value(True, "boolean")
    (3.7, 42, True)
    >>> cast_value(None, "string"), cast_value("yes", "boolean"), cast_value([1], "array")
    ('', False, [1])
    """
    kind = (type_ or "").strip().lower()
    if kind == "string":
        return as_text(value)
    if kind == "number":
        return _as_number(value)
    if kind == "boolean":
        return value is True or value == "true"
    return value


# -- the mapping list ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MappingItem:
    """One item of the platform's mapping list."""

    name: str
    path: Path
    value: Any
    static: bool
    type: str | None


def _loads_text(raw: Any, field: str) -> Any:
    """``raw`` parsed when it is JSON text (a file's content), else ``raw`` itself."""
    if not isinstance(raw, str | bytes):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", field=field
        ) from None


def parse_mapping(raw: Any) -> list[MappingItem]:
    """Validate the platform's mapping list (a list of objects, or JSON text holding one).

    >>> parse_mapping([{"name": "messages.0.content", "value": "q"}])[0].path
    ('messages', 0, 'content')
    """
    if raw is None:
        return []
    raw = _loads_text(raw, "mapping")
    if isinstance(raw, Mapping):
        # {"messages.0.content": "question"} is accepted as shorthand for dynamic items.
        raw = [{"name": k, "value": v} for k, v in raw.items()]
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigurationError(
            'must be a list of {"name", "value", "value_type", "type"} objects', field="mapping"
        )
    items = []
    for i, entry in enumerate(raw):
        where = f"mapping[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigurationError(
                f'must be an object such as {{"name": "messages.0.content", "value": '
                f'"question", "value_type": "dynamic", "type": "string"}}, got {_kind(entry)}',
                field=where,
            )
        name = entry.get("name")
        path = parse_path(name, field=f"{where}.name")
        value_type = str(entry.get("value_type") or "dynamic").strip().lower()
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


def harvest(row: Mapping[str, Any], column: str) -> Any:
    """The row's value for ``column`` (a dotted column reads nested JSON), or ``_MISSING``."""
    if column in row:
        return row[column]
    if "." in column:
        node: Any = row
        for part in column.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return _MISSING
        return node
    return _MISSING


def _missing_column(column: str, row: Mapping[str, Any], what: str) -> RowMappingError:
    columns = ", ".join(list(map(str, row))[:20]) or "none"
    return RowMappingError(
        f"{what}: the row has no column {column!r} (its columns: {columns})", column=column
    )


# -- the payload builder -------------------------------------------------------------------


class _Template:
    """A string of the request format holding ``{{column}}`` placeholders."""

    __slots__ = ("columns", "parts", "where")

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

    def fill(self, row: Mapping[str, Any]) -> str:
        out = []
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                out.append(part)
                continue
            value = harvest(row, part)
            if value is _MISSING:
                raise _missing_column(part, row, f"placeholder {{{{{part}}}}} at {self.where}")
            out.append(as_text(value))
        return "".join(out)


def _compile(node: Any, where: str) -> Any:
    if isinstance(node, dict):
        return {k: _compile(v, f"{where}.{k}" if where else k) for k, v in node.items()}
    if isinstance(node, list):
        return [_compile(v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(node)]
    if isinstance(node, str) and "{{" in node and _PLACEHOLDER.search(node):
        return _Template(node, where)
    return node


def _instantiate(node: Any, row: Mapping[str, Any]) -> Any:
    # A deep copy of the compiled request format: containers are fresh, templates filled.
    if isinstance(node, dict):
        return {k: _instantiate(v, row) for k, v in node.items()}
    if isinstance(node, list):
        return [_instantiate(v, row) for v in node]
    if isinstance(node, _Template):
        return node.fill(row)
    return node


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
        self._compiled = _compile(dict(request_format), "")
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
        probe: dict[str, Any] = _instantiate(self._compiled, _Anything())
        for i, item in enumerate(self.items):
            try:
                set_path(probe, item.path, None if item.static else "")
            except ConfigurationError as exc:
                message = exc.message.removeprefix("mapping: ")
                raise ConfigurationError(message, field=f"mapping[{i}].name") from None

    def build(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The payload for ``row``; raises ``RowMappingError`` when the row cannot be mapped."""
        payload: dict[str, Any] = _instantiate(self._compiled, row)
        for i, item in enumerate(self.items):
            if item.static:
                raw = item.value
            else:
                raw = harvest(row, item.value)
                if raw is _MISSING:
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


# -- outputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputField:
    """One output: read ``path`` from the answer and store it as ``name``.

    With ``parse="json"`` the value is parsed as JSON; ``fields`` maps output names to
    dotted paths inside the parsed value (the parsed value itself is kept under ``name``
    unless ``name`` is None).
    """

    source: str
    path: Path
    name: str | None
    parse: str | None = None
    fields: tuple[tuple[str, Path], ...] = ()

    @property
    def names(self) -> list[str]:
        """The output names this field produces, in order."""
        return ([self.name] if self.name is not None else []) + [n for n, _ in self.fields]


def parse_outputs(raw: Any) -> list[OutputField]:
    """Validate an outputs list: ``[{"name": path, "as": name, "parse": "json", "fields": ...}]``.

    A plain string item is a path whose output name is the path itself.
    """
    raw = _loads_text(raw, "outputs")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigurationError(
            'must be a list such as [{"name": "choices.0.message.content", "as": "summary"}]',
            field="outputs",
        )
    out: list[OutputField] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"outputs[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise ConfigurationError(
                f'must be an object such as {{"name": "usage.total_tokens", "as": "tokens"}}, '
                f"got {_kind(entry)}",
                field=where,
            )
        source = entry.get("name")
        path = parse_path(source, field=f"{where}.name")
        parse = entry.get("parse")
        if parse is not None and parse != "json":
            raise ConfigurationError(
                f'the only parser is "json", got {parse!r}', field=f"{where}.parse"
            )
        fields = _parse_fields(entry.get("fields"), f"{where}.fields")
        if fields and parse != "json":
            raise ConfigurationError('needs "parse": "json"', field=f"{where}.fields")
        name = entry.get("as", None if fields else source)
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError("must be a non-empty output name", field=f"{where}.as")
        field = OutputField(str(source), path, name, parse, fields)
        for n in field.names:
            if n in seen:
                raise ConfigurationError(f"output name {n!r} is used twice", field=where)
            seen.add(n)
        out.append(field)
    return out


def _parse_fields(raw: Any, where: str) -> tuple[tuple[str, Path], ...]:
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        pairs = [(f, f) for f in raw]
    else:
        raise ConfigurationError(
            'must be a list of keys ["label", "score"] or an object {"output name": "path"}',
            field=where,
        )
    return tuple((str(name), parse_path(path, field=where)) for name, path in pairs)


def default_outputs(response_format: Mapping[str, Any]) -> list[OutputField]:
    """One output per leaf of the ``response_format`` sample that holds a string.

    Without any, ``choices.0.message.content`` (the answer's text).

    >>> [f.source for f in default_outputs({"choices": [{"delta": {"content": "Hi"}}], "n": 1})]
    ['choices.0.delta.content']
    """
    leaves: list[Path] = []

    def walk(node: Any, path: Path) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, int(k) if k.isdigit() else k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))
        elif isinstance(node, str) and path:
            leaves.append(path)

    walk(response_format, ())
    if not leaves:
        leaves = [("choices", 0, "message", "content")]
    return [OutputField(_text_of(p), p, _text_of(p)) for p in leaves]


def _parse_json_text(value: Any, source: str) -> Any:
    if not isinstance(value, str):
        if value is None:
            raise OutputError(f"{source}: no value to parse as JSON (the answer has none)")
        return value  # Already structured (e.g. a tool call's parsed arguments).
    text = value.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        excerpt = text if len(text) <= 80 else text[:77] + "..."
        raise OutputError(
            f"{source}: the answer is not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}): {excerpt!r}"
        ) from None


def extract_outputs(
    response: Mapping[str, Any], fields: Sequence[OutputField]
) -> tuple[dict[str, Any], list[str]]:
    """Read every output field from ``response``.

    Returns the outputs and the problems met (one message per field that could not be
    parsed); a field whose path is absent is ``None``, not a problem.
    """
    output: dict[str, Any] = {}
    problems: list[str] = []
    for field in fields:
        value = get_path(response, field.path)
        if field.parse == "json":
            try:
                value = _parse_json_text(value, field.source)
            except OutputError as exc:
                problems.append(str(exc))
                if field.name is not None:
                    output[field.name] = value
                for name, _ in field.fields:
                    output[name] = None
                continue
        if field.name is not None:
            output[field.name] = value
        for name, path in field.fields:
            output[name] = get_path(value, path)
    return output, problems
