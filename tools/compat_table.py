"""Write the compatibility table of docs/compat.md from the outcomes of ``make test-compat``.

The compat tests record, per server and column, which tests passed
(``build/compat-results.json``, written by ``tests/compat/conftest.py``). This script turns
that into a Markdown table and puts it between the markers of the document:

    <!-- compat-table:start -->  ...  <!-- compat-table:end -->

usage: python tools/compat_table.py [RESULTS.json] [DOC.md]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("check", "non-stream", "stream", "assemble", "errors", "usage")
ROW_ORDER = ("litellm", "llama", "llmock")
START, END = "<!-- compat-table:start -->", "<!-- compat-table:end -->"


def _cell(outcomes: list[dict[str, Any]]) -> str:
    if not outcomes:
        return "not tested"
    passed = sum(1 for o in outcomes if o["outcome"] == "passed")
    mark = "✅" if passed == len(outcomes) else "❌"
    notes = list(dict.fromkeys(o["note"] for o in outcomes if o.get("note")))
    text = f"{mark} {passed}/{len(outcomes)}"
    return f"{text} ({'; '.join(notes)})" if notes else text


def table(results: dict[str, Any]) -> str:
    """The Markdown table for ``results`` (servers x columns, passed/run per cell)."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for outcome in results["cells"]:
        cells[(outcome["server"], outcome["cell"])].append(outcome)
    servers: dict[str, dict[str, str]] = results["servers"]
    seen = {o["server"] for o in results["cells"]}
    order = [s for s in ROW_ORDER if s in seen] + sorted(seen - set(ROW_ORDER))
    lines = [
        "| server | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for server in order:
        info = servers.get(server, {"name": server, "version": "?"})
        name = f"{info['name']} {info['version']}"
        lines.append(f"| {name} | " + " | ".join(_cell(cells[(server, c)]) for c in COLUMNS) + " |")
    total = len(results["cells"])
    passed = sum(1 for o in results["cells"] if o["outcome"] == "passed")
    lines += ["", f"{passed} of {total} compatibility tests passed (cells: passed/run)."]
    return "\n".join(lines)


def update(doc: Path, results: dict[str, Any]) -> None:
    """Replace the table between the markers of ``doc``."""
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {START} and {END} are missing")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{table(results)}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    results_path = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "build" / "compat-results.json"
    )
    doc = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO_ROOT / "docs" / "compat.md"
    results = json.loads(results_path.read_text(encoding="utf-8"))
    update(doc, results)
    print(table(results))


if __name__ == "__main__":
    main()
