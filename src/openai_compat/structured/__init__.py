"""Structured outputs: a JSON Schema in, validated (and typed) values out.

The schema (`load_schema`: a JSON Schema object, OpenAI's ``{"name", "schema", "strict"}``
wrapper, a file, a pydantic model), the four ways of asking for it (`MODES`, ``auto``
choosing once per run), validation compiled once (`Validator`), tolerant reading of JSON
out of text (`extract_json`), re-asks naming the validation errors (`Structured.ask`), and
the column types every engine derives from the schema (`column_types`).

>>> s = Structured({"type": "object", "properties": {"n": {"type": "integer"}},
...                 "required": ["n"]}, mode="json_schema")
>>> s.validate_answer({"choices": [{"message": {"content": '```json\\n{"n": 2}\\n```'}}]})[:2]
({'n': 2}, [])
"""

from __future__ import annotations

from ._columns import SQL_TYPES, ColumnType, column_types
from ._extract import extract_json
from ._modes import AUTO_ORDER, MODES, answer_value, apply_mode, check_mode, schema_field
from ._reask import (
    DEFAULT_REASKS,
    Answer,
    Structured,
    StructuredCounts,
    StructuredOutputError,
    describe,
    reask_message,
)
from ._schema import Schema, load_schema
from ._validate import Validator, json_path

__all__ = [
    "AUTO_ORDER",
    "DEFAULT_REASKS",
    "MODES",
    "SQL_TYPES",
    "Answer",
    "ColumnType",
    "Schema",
    "Structured",
    "StructuredCounts",
    "StructuredOutputError",
    "Validator",
    "answer_value",
    "apply_mode",
    "check_mode",
    "column_types",
    "describe",
    "extract_json",
    "json_path",
    "load_schema",
    "reask_message",
    "schema_field",
]
