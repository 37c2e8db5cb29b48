"""A run's JSON Schema: loaded from a file, a dict, OpenAI's wrapper or a pydantic model,
checked once before anything is sent.

>>> schema = load_schema({"type": "object", "properties": {"n": {"type": "integer"}}})
>>> schema.name, schema.strict, schema.properties
('output', True, ('n',))
>>> load_schema({"type": "array"})
Traceback (most recent call last):
openai_compat.errors.ConfigurationError: schema: the top level must be an object \
("type": "object"), got "type": "array": each top-level property is an output column
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .._json import load_json_text
from ..errors import ConfigurationError
from ._validate import Validator

__all__ = ["Schema", "load_schema"]

_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Schema:
    """A checked JSON Schema (its top level an object) with the name sent with it.

    ``model`` is the pydantic model it came from, if any: answers are then returned as
    instances of it.
    """

    name: str
    schema: dict[str, Any]
    strict: bool = True
    model: Any = field(default=None, compare=False)

    @property
    def properties(self) -> tuple[str, ...]:
        """The top-level property names, in order: the output columns."""
        props = self.schema.get("properties")
        return tuple(props) if isinstance(props, dict) else ()

    def to_json(self) -> dict[str, Any]:
        """OpenAI's wrapper form: ``{"name", "schema", "strict"}`` (what `load_schema` reads)."""
        return {"name": self.name, "schema": self.schema, "strict": self.strict}


def _from_model(model: Any) -> Schema:
    schema = model.model_json_schema()
    return _checked(_NAME.sub("_", model.__name__)[:64] or "output", schema, True, model)


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and hasattr(value, "model_json_schema")


def load_schema(raw: Any, *, field: str = "schema") -> Schema:
    """A `Schema` from a JSON Schema object, OpenAI's ``{"name", "schema", "strict"}``
    wrapper, their JSON text, a path to a ``.json`` file, a pydantic model class, or a
    `Schema`. A schema that is not valid JSON Schema (2020-12), or whose top level is not
    an object, is a `ConfigurationError` naming the problem.
    """
    if isinstance(raw, Schema):
        return raw
    if _is_model(raw):
        return _from_model(raw)
    if isinstance(raw, os.PathLike) or (isinstance(raw, str) and not raw.lstrip().startswith("{")):
        raw = _read_file(os.fspath(raw), field)
    value = load_json_text(raw, field=field)
    if not isinstance(value, dict):
        raise ConfigurationError(
            f'must be a JSON Schema object or {{"name", "schema", "strict"}}, '
            f"got {type(value).__name__}",
            field=field,
        )
    if isinstance(value.get("schema"), dict) and "type" not in value:
        name = value.get("name", "output")
        if not isinstance(name, str) or not name:
            raise ConfigurationError("the wrapper's name must be a non-empty text", field=field)
        strict = value.get("strict", True)
        if not isinstance(strict, bool):
            raise ConfigurationError("the wrapper's strict must be true or false", field=field)
        return _checked(name, value["schema"], strict, None, field)
    return _checked("output", value, True, None, field)


def _read_file(path: str, field: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the schema file {path}: {exc.strerror or exc}", field=field
        ) from None


def _checked(
    name: str, schema: dict[str, Any], strict: bool, model: Any, field: str = "schema"
) -> Schema:
    top = schema.get("type")
    if top != "object":
        got = "no type" if top is None else f'"type": {json.dumps(top)}'
        raise ConfigurationError(
            f'the top level must be an object ("type": "object"), got {got}: each top-level '
            "property is an output column",
            field=field,
        )
    import jsonschema_rs

    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        where = "".join(f"[{json.dumps(part)}]" for part in exc.instance_path)
        raise ConfigurationError(
            f"is not a valid JSON Schema: schema{where}: {exc.message}", field=field
        ) from None
    except Exception as exc:  # an unknown draft
        raise ConfigurationError(f"is not a usable JSON Schema: {exc}", field=field) from None
    try:
        Validator(schema)  # every $ref resolved now, inside the schema only
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(f"is not a usable JSON Schema: {first}", field=field) from None
    return Schema(_NAME.sub("_", name)[:64] or "output", schema, strict, model)
