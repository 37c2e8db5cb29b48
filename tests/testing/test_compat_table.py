"""tools/compat_table.py: the compatibility table is written from recorded outcomes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "compat_table", Path(__file__).resolve().parents[2] / "tools" / "compat_table.py"
)
assert _SPEC is not None and _SPEC.loader is not None
compat_table = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compat_table)


def _outcome(server: str, cell: str, outcome: str = "passed", note: str | None = None) -> Any:
    return {"server": server, "cell": cell, "outcome": outcome, "note": note, "test": "t"}


RESULTS = {
    "servers": {"llmock": {"name": "llmock", "version": "0.2.2"}},
    "cells": [
        _outcome("llmock", "check", note="forced 401"),
        _outcome("llmock", "check"),
        _outcome("llmock", "errors", "failed"),
        _outcome("llmock", "errors"),
    ],
}


def test_table_counts_passes_per_cell_and_marks_failures() -> None:
    lines = compat_table.table(RESULTS).splitlines()
    assert lines[0] == "| server | check | non-stream | stream | assemble | errors | usage |"
    assert lines[2] == (
        "| llmock 0.2.2 | ✅ 2/2 (forced 401) | not tested | not tested | not tested | ❌ 1/2 "
        "| not tested |"
    )
    assert lines[-1] == "3 of 4 compatibility tests passed (cells: passed/run)."


def test_update_replaces_only_the_marked_block(tmp_path: Path) -> None:
    doc = tmp_path / "compat.md"
    doc.write_text(f"intro\n{compat_table.START}\nold table\n{compat_table.END}\nafter\n")
    compat_table.update(doc, RESULTS)
    text = doc.read_text()
    assert text.startswith(f"intro\n{compat_table.START}\n| server |")
    assert text.endswith(f"passed/run).\n{compat_table.END}\nafter\n")
    assert "old table" not in text


def test_update_refuses_a_document_without_markers(tmp_path: Path) -> None:
    doc = tmp_path / "compat.md"
    doc.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="markers"):
        compat_table.update(doc, RESULTS)
