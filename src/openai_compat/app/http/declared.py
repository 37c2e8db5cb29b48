"""What request bodies must hold, declared for the OpenAPI document.

The routes check bodies themselves, with their own messages; these schemas say the same
rules in the document, so that a client (or a fuzzer) built from it sends what is accepted.
What JSON Schema cannot say stays with the route and its 422: that a text parses as JSON,
that an upload or a database named by a body exists and answers, that a mapping's paths are
in the request format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "DATABASE_INPUT_SCHEMA",
    "JSON_OBJECT_OR_TEXT",
    "MAPPING_SCHEMA",
    "NAME_SCHEMA",
    "OUTPUTS_SCHEMA",
    "PLACEHOLDERS_SCHEMA",
    "PRICES_SCHEMA",
    "RATE_SCHEMA",
    "RUN_INPUT_SCHEMA",
    "TOKEN_RATE_SCHEMA",
    "configuration_schema",
    "declared_as",
]


def declared_as(declared: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` that puts ``declared`` in place of the generated schema
    (which, for a field typed loosely so the route can word its own errors, says too little).
    """

    def declare(schema: dict[str, Any]) -> None:
        title = schema.get("title")
        schema.clear()
        schema.update(declared)
        if title is not None:
            schema.setdefault("title", title)

    return declare


#: A JSON object. A text holding one is accepted too (the original platform stores them as
#: text), but the document gives the object: a text's rule (that it parses) is not JSON Schema.
JSON_OBJECT_OR_TEXT: dict[str, Any] = {
    "type": "object",
    "description": "a JSON object (or a text holding one)",
}

_URL = {
    "type": "string",
    "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#@]+",
    "description": "the endpoint's full URL, http:// or https://",
}


# Printable ASCII without spaces: what a key pasted from a web page most often breaks.
# (Spaces around it are trimmed: a key pasted with its line break still works.)
_API_KEY = {"type": "string", "pattern": r"^\s*[!-~]*\s*$"}

# C0, DEL, C1 and the bidirectional controls are refused in a name. (A lone surrogate is
# refused too, but a pattern cannot name one: ECMA-262 classes hold characters, and a lone
# surrogate is none.)
_NOT_IN_NAMES = "\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
#: A connector's name: up to 255 characters, not all spaces, no control character.
NAME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": f"^[^{_NOT_IN_NAMES}]*[^\\s{_NOT_IN_NAMES}][^{_NOT_IN_NAMES}]*$",
}


def configuration_schema(*, api_key: bool) -> dict[str, Any]:
    """A connector configuration: its required fields typed, the optional ones left open.

    ``api_key``: whether the key is required (on create; an update keeps the stored one).
    """
    required = ["url", "request_format", "response_format"]
    properties: dict[str, Any] = {
        "url": _URL,
        "request_format": {**JSON_OBJECT_OR_TEXT, "title": "a sample request body"},
        "response_format": {**JSON_OBJECT_OR_TEXT, "title": "a sample response body"},
        "api_key": {**_API_KEY, "description": '"" for an endpoint that needs no key'},
    }
    if not api_key:
        properties["api_key"] = {
            "anyOf": [_API_KEY, {"type": "null"}],
            "description": "left out or null: the saved connector's key",
        }
    return {
        "type": "object",
        "additionalProperties": True,
        "required": ["api_key", *required] if api_key else required,
        "properties": properties,
        "title": "Configuration",
    }


#: A database query as a run's input or a preview: a URL and a SELECT statement.
DATABASE_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["database", "query"],
    "additionalProperties": False,
    "properties": {
        "database": {
            "type": "string",
            "pattern": r"^\s*[A-Za-z][A-Za-z0-9+.-]*://",
            "description": "a SQLAlchemy URL: postgresql://user:password@host/db",
        },
        "query": {
            "type": "string",
            "pattern": r"\S",
            "description": "a SELECT statement; :name parameters from params",
        },
        "params": {
            "anyOf": [{"type": "object"}, {"type": "null"}],
            "description": "the query's :name parameters",
        },
    },
}

#: A run's input: an upload, or a database query.
RUN_INPUT_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["upload_id"],
            "additionalProperties": False,
            "properties": {
                "upload_id": {"type": "string", "minLength": 1, "description": "an upload's id"}
            },
        },
        DATABASE_INPUT_SCHEMA,
    ],
    "description": '{"upload_id": "..."} (an upload\'s id), or {"database": url, "query": sql}',
}

#: Which column fills a placeholder of the request format, when their names differ.
PLACEHOLDERS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
        {"type": "null"},
    ],
    "description": '{"placeholder": "column"}: fill a {{placeholder}} of the request format '
    "from a column of another name",
}

# A dotted path: segments split at dots, none empty once the whole is stripped of spaces.
_PATH = {
    "type": "string",
    "pattern": r"^[^.]*[^.\s][^.]*(?:(?:\.[^.]+)*\.[^.]*[^.\s][^.]*)?$",
    "description": "where the value goes in the request body: messages.0.content",
}
_DYNAMIC = r"^\s*[Dd][Yy][Nn][Aa][Mm][Ii][Cc]\s*$"
_STATIC = r"^\s*[Ss][Tt][Aa][Tt][Ii][Cc]\s*$"
_TYPE = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "string, number, ..."}

#: The original platform's mapping list: each item a value for a path of the request body,
#: read from a column (dynamic, the default) or given as is (static). A text holding the
#: list, and the shorthand object {"path": "column"}, are accepted too.
MAPPING_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["name", "value"],
                        "properties": {
                            "name": _PATH,
                            "value": {"type": "string", "minLength": 1, "description": "a column"},
                            "value_type": {
                                "anyOf": [{"type": "string", "pattern": _DYNAMIC}, {"type": "null"}]
                            },
                            "type": _TYPE,
                        },
                    },
                    {
                        "type": "object",
                        "required": ["name", "value_type"],
                        "properties": {
                            "name": _PATH,
                            "value": {"description": "the value itself"},
                            "value_type": {"type": "string", "pattern": _STATIC},
                            "type": _TYPE,
                        },
                    },
                ]
            },
        },
        {
            # Its keys are paths too; OpenAPI 3.0 has no way to say so (propertyNames).
            "type": "object",
            "additionalProperties": {"type": "string", "minLength": 1},
            "description": 'the shorthand {"messages.0.content": "question"}',
        },
        {"type": "null"},
    ],
    "description": '[{"name": "messages.0.content", "value": "question", "value_type": '
    '"dynamic", "type": "string"}]',
}


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in word)


_UNIT = (
    "|".join(
        _any_case(u) for u in ("seconds", "second", "sec", "s", "minutes", "minute", "min", "m")
    )
    + "|"
    + "|".join(_any_case(u) for u in ("hours", "hour", "h"))
)
_OFF = "|".join(_any_case(w) for w in ("off", "none", "unlimited"))

#: A request rate: "600/minute", "10/s", "36000/hour"; "off" (or null) for none.
RATE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "string",
            "pattern": rf"^\s*(?:{_OFF}|\d+(?:\.\d+)?\s*(?:/\s*(?:{_UNIT}))?)\s*$",
        },
        {"type": "null"},
    ],
    "description": 'a rate limit such as "600/minute"; null or "off": none',
}

_PRICE_RATE = {"type": "number", "minimum": 0, "maximum": 1_000_000}
_PRICE = {
    "type": "object",
    "required": ["input", "output"],
    "additionalProperties": False,
    "properties": {
        "input": _PRICE_RATE,
        "output": _PRICE_RATE,
        "cached_input": {"anyOf": [_PRICE_RATE, {"type": "null"}]},
    },
    "description": "USD per million tokens",
}

#: Token prices: one for every model, or an object of model name to prices. The text form
#: "input=0.15,output=0.60" is accepted too (a mini-language no schema describes).
PRICES_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _PRICE,
        {"type": "object", "minProperties": 1, "additionalProperties": _PRICE},
        {"type": "null"},
    ],
    "description": '{"input": 0.15, "output": 0.6, "cached_input": 0.075} (USD per million '
    'tokens), or {"model": {...}}; the text "input=0.15,output=0.60" too. Each result gets '
    "cost",
}

#: What to keep of each answer: paths into it, each under its own name.
OUTPUTS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "array",
            "items": {
                "anyOf": [
                    _PATH,
                    {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": _PATH,
                            "as": {"type": "string", "minLength": 1},
                            "parse": {"type": "string", "enum": ["json"]},
                        },
                    },
                ]
            },
        },
        {"type": "null"},
    ],
    "description": '[{"name": path, "as": name, "parse": "json"}]; default: the string '
    "leaves of the response format",
}

#: A token rate: "200000/minute"; "off" (or null) for none. Unlike a request rate, 0 is
#: refused (a token limit of nothing would send nothing).
TOKEN_RATE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "string",
            "pattern": rf"^\s*(?:{_OFF}|(?=[^/]*[1-9])\d+(?:\.\d+)?\s*(?:/\s*(?:{_UNIT}))?)\s*$",
        },
        {"type": "null"},
    ],
    "description": 'a token rate limit such as "200000/minute"; null or "off": none',
}
