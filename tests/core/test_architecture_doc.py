"""docs/architecture.md names every module of the package, one line each."""

from __future__ import annotations

from pathlib import Path

import openai_compat

ROOT = Path(openai_compat.__file__).parent
DOC = Path(__file__).parents[2] / "docs" / "architecture.md"


def test_every_module_has_its_line() -> None:
    text = DOC.read_text(encoding="utf-8")
    modules = [
        str(path.relative_to(ROOT))
        for path in sorted(ROOT.rglob("*.py"))
        if "migrations" not in path.parts[-3:-1] or path.name == "env.py"
    ]
    assert len(modules) > 100
    missing = [m for m in modules if f"| `{m}` |" not in text]
    assert missing == [], "add a line for each to docs/architecture.md"
