"""Answers to fields: the output list, its default, and reading the outputs of an answer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._json import load_json_text, loads, where_invalid
from .._text import excerpt, shown
from ..apis import CHAT, Dialect
from ..errors import ConfigurationError, OutputError
from ._kinds import require_object
from ._paths import Path, get_path, is_index, parse_path, path_text

__all__ = [
    "OutputField",
    "VectorName",
    "default_outputs",
    "extract_outputs",
    "output_fields",
    "output_names",
    "parse_outputs",
]

_EXAMPLE = '{"name": "usage.total_tokens", "as": "tokens"}'
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


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
    #: The value is a vector (an embedding): a list of float32 wherever columns are typed.
    vector: bool = False

    @property
    def names(self) -> list[str]:
        """The output names this field produces, in order."""
        if self.name is not None and self.vector:
            return [VectorName(self.name)]
        return ([self.name] if self.name is not None else []) + [n for n, _ in self.fields]


class VectorName(str):
    """The name of an output whose values are vectors, so that every sink types its column
    (a list of float32 in Parquet, Arrow, Ray and Spark; ``real[]`` in PostgreSQL).

    >>> isinstance(VectorName("embedding"), str)
    True
    """

    __slots__ = ()


def parse_outputs(raw: Any) -> list[OutputField]:
    """Validate an outputs list: ``[{"name": path, "as": name, "parse": "json", "fields": ...}]``.

    A plain string item is a path whose output name is the path itself.
    """
    raw = load_json_text(raw, field="outputs")
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
        entry = require_object(entry, example=_EXAMPLE, field=where)
        source = entry.get("name")
        path = parse_path(source, field=f"{where}.name")
        parse = entry.get("parse")
        if parse is not None and parse != "json":
            raise ConfigurationError(
                f'the only parser is "json", got {shown(parse)}', field=f"{where}.parse"
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


def default_outputs(
    response_format: Mapping[str, Any], dialect: Dialect = CHAT
) -> list[OutputField]:
    """One output per leaf of the ``response_format`` sample that holds a string.

    Without any, where ``dialect`` keeps the answer's text (``choices.0.message.content``).

    >>> [f.source for f in default_outputs({"choices": [{"delta": {"content": "Hi"}}], "n": 1})]
    ['choices.0.delta.content']
    """
    leaves: list[Path] = []

    def walk(node: Any, path: Path) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, int(k) if is_index(k) else k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))
        elif isinstance(node, str) and path:
            leaves.append(path)

    walk(response_format, ())
    if leaves and not dialect.fits_sample(response_format):
        leaves = []  # a sample of another API's answer (the chat sample by default)
    if not leaves:
        path = dialect.default_output
        name = dialect.default_output_name or path_text(path)
        return [OutputField(path_text(path), path, name)]
    return [OutputField(path_text(p), p, path_text(p)) for p in leaves]


def output_fields(
    raw: Any, response_format: Mapping[str, Any], dialect: Dialect = CHAT
) -> list[OutputField]:
    """The output fields of a run: ``raw`` parsed, or without it (None) `default_outputs`.

    >>> [f.source for f in output_fields(None, {"choices": [{"message": {"content": "x"}}]})]
    ['choices.0.message.content']
    """
    fields = parse_outputs(raw) if raw is not None else default_outputs(response_format, dialect)
    if dialect.vector_output is None:
        return fields
    # An embedding read whole (not parsed, not split) is a vector column.
    return [
        replace(f, vector=True)
        if f.path and f.path[-1] == dialect.vector_output and f.parse is None and not f.fields
        else f
        for f in fields
    ]


def output_names(fields: Iterable[OutputField]) -> list[str]:
    """Every name ``fields`` write, in order (a field parsed as JSON may write several)."""
    return [name for field in fields for name in field.names]


_REASONING: dict[str | int, str] = {
    "reasoning": "reasoning_content",
    "reasoning_content": "reasoning",
}


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
        return loads(text, field=source)
    except ConfigurationError as exc:  # nested too deeply
        raise OutputError(f"{source}: the answer {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise OutputError(
            f"{source}: the answer is not valid JSON ({where_invalid(exc)}): {excerpt(text, 80)!r}"
        ) from None
    except ValueError as exc:  # e.g. a number of thousands of digits
        raise OutputError(f"{source}: the answer cannot be read as JSON: {exc}") from None


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
        if value is None and field.path and field.path[-1] in _REASONING:
            # Servers name the reasoning text either way: a path naming one reads the other.
            value = get_path(response, (*field.path[:-1], _REASONING[field.path[-1]]))
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
