"""Connector ids as the API takes them: plain decimal integers from 1 to 2**63-1.

A lax integer parser reads ``"1 "``, ``"+1"``, ``"01"`` or ``"1.0"`` as 1, so that
``DELETE /connectors/1%20`` deleted connector 1; and a number past 2**63-1 reached the
database driver (a 500). Here an id is exactly the digits the API itself writes.
The list's cursor holds the last id of a page, in an opaque form.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "CURSOR_PATTERN",
    "ID_PATTERN",
    "ID_SCHEMA",
    "MAX_ID",
    "BodyConnectorId",
    "CursorText",
    "PathConnectorId",
    "decode_cursor",
    "encode_cursor",
    "parse_connector_id",
]

MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() and \d also take other scripts' digits.
ID_PATTERN = "[1-9][0-9]{0,18}"
"""The text of an id in canonical decimal (its value may still be past ``MAX_ID``)."""
_DECIMAL = re.compile(ID_PATTERN)
_CURSOR = re.compile(r"after:([1-9][0-9]{0,18})")


def parse_connector_id(text: str) -> int | None:
    """The id written in ``text``, or None unless it is canonical decimal in 1..2**63-1.

    >>> [parse_connector_id(t) for t in ("1", "42", "1 ", "+1", "01", "1.0", "0", "٣")]
    [1, 42, None, None, None, None, None, None]
    >>> parse_connector_id(str(2**63 - 1)) == 2**63 - 1, parse_connector_id(str(2**63))
    (True, None)
    """
    if _DECIMAL.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _path_id(value: Any) -> int:
    parsed = parse_connector_id(value) if isinstance(value, str) else None
    if parsed is None:
        raise PydanticCustomError(
            "connector_id",
            "must be a connector id: a whole number from 1 to 9223372036854775807 "
            "in plain digits (no sign, space, leading zero or decimal point)",
        )
    return parsed


ID_SCHEMA: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
"""What the OpenAPI document says of an id: exact bounds (a generated ``le`` is written as
a float, 9.223372036854776e+18, which is 2**63 itself, an id the API refuses)."""

PathConnectorId = Annotated[int, BeforeValidator(_path_id), WithJsonSchema(ID_SCHEMA)]
"""A connector id in a URL path (``/connectors/{connector_id}``)."""

BodyConnectorId = Annotated[StrictInt, Field(ge=1, le=MAX_ID), WithJsonSchema(ID_SCHEMA)]
"""A connector id in a JSON body: a JSON integer (not a string or a float) in range."""


def encode_cursor(last_id: int) -> str:
    """The opaque cursor of the page after the connector ``last_id``.

    >>> decode_cursor(encode_cursor(41))
    41
    """
    return base64.urlsafe_b64encode(f"after:{last_id}".encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The id a cursor from ``encode_cursor`` continues after; None if it is not one.

    Every text `CURSOR_PATTERN` takes is one: an id past ``MAX_ID`` (19 digits can say
    more) is read as ``MAX_ID``, after which there is nothing.
    """
    if not cursor.isascii():
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    found = _CURSOR.fullmatch(text)
    if found is None:
        return None
    value = int(found.group(1))
    # The decoder skips stray characters: only the exact form the API writes is taken.
    return min(value, MAX_ID) if encode_cursor(value) == cursor else None


def _cursor_pattern() -> str:
    # base64url("after:") is "YWZ0ZXI6" (6 bytes, so the digits start a new group); then
    # base64url of 1 to 19 ASCII digits, no padding, the first digit not 0. A digit
    # (0x30-0x39) starts a group as [MN][DTjz] or O[DT] (8 and 9); a group's second digit
    # is [AEIMQUYcgk], its third [w-z0-5]; a last lone digit ends [AQgw] (O: [AQ]).
    first, digit = r"(?:M[Tjz]|N[DTjz]|O[DT])", r"(?:[MN][DTjz]|O[DT])"
    second, third = "[AEIMQUYcgk]", "[w-z0-5]"
    lone_first, lone = r"(?:M[Qgw]|N[AQgw]|O[AQ])", r"(?:[MN][AQgw]|O[AQ])"
    group = digit + second + third
    tail = f"(?:{lone}|{digit}{second})?"
    return (
        f"^YWZ0ZXI6(?:{lone_first}|{first}{second}"
        f"|{first}{second}{third}(?:(?:{group}){{0,4}}{tail}|(?:{group}){{5}}(?:{lone})?))$"
    )


CURSOR_PATTERN = _cursor_pattern()
"""Exactly the cursors `decode_cursor` takes, as the OpenAPI document declares them."""

CursorText = Annotated[str, WithJsonSchema({"type": "string", "pattern": CURSOR_PATTERN})]
"""A list's ``cursor`` query parameter: declared by its pattern, read by `decode_cursor`."""
