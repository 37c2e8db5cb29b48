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

from ..errors import OutputError
from ._casts import as_text, cast_value
from ._mapping_list import MappingItem, parse_mapping
from ._outputs import (
    OutputField,
    VectorName,
    default_outputs,
    extract_outputs,
    output_fields,
    output_names,
    parse_outputs,
)
from ._paths import MISSING, get_path, harvest, parse_path, set_path
from ._payload import PayloadBuilder, RowMappingError

__all__ = [
    "MISSING",
    "MappingItem",
    "OutputError",
    "OutputField",
    "PayloadBuilder",
    "RowMappingError",
    "VectorName",
    "as_text",
    "cast_value",
    "default_outputs",
    "extract_outputs",
    "get_path",
    "harvest",
    "output_fields",
    "output_names",
    "parse_mapping",
    "parse_outputs",
    "parse_path",
    "set_path",
]
