"""The typed output columns of a local run's Parquet file, for the engines to compare with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from openai_compat.cli import main
from tests.conftest import make_config

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["bug", "question"]},
        "urgency": {"type": "integer"},
        "score": {"type": "number"},
        "done": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "who": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
    "required": ["label", "urgency"],
}
COLUMNS = list(SCHEMA["properties"])  # type: ignore[call-overload]
TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'


def structured_config(url: str) -> dict[str, Any]:
    return make_config(f"{url}?scenario=structured", request_format=TEMPLATE)


def normalised(field_type: pa.DataType) -> str:
    """An Arrow type as text, the same for Arrow's large and plain strings and lists."""
    text = str(field_type).replace("large_", "")
    return re.sub(r"\b(element|item): ", "", text)


def local_types(url: str, tmp: Path, rows: int = 4) -> dict[str, str]:
    """The output columns' types of a local run's Parquet output."""
    (tmp / "conn.json").write_text(json.dumps(structured_config(url)))
    (tmp / "in.csv").write_text("id,text\n" + "".join(f"{i},t{i}\n" for i in range(rows)))
    (tmp / "schema.json").write_text(json.dumps(SCHEMA))
    out = tmp / "local.parquet"
    code = main(
        [
            "batch", "--config", str(tmp / "conn.json"), "--input", str(tmp / "in.csv"),
            "--output", str(out), "--key", "id", "--schema", str(tmp / "schema.json"),
            "--rate", "off", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    schema = pq.read_schema(out)
    return {name: normalised(schema.field(name).type) for name in COLUMNS}
