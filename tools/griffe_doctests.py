"""A griffe extension for the Python API pages: a docstring's doctest runs become code blocks.

The package's docstrings hold bare doctest examples (``>>> ...`` and the expected output up
to a blank line), which pytest runs with ``--doctest-modules``. As plain Markdown they would
render as paragraphs, and their ``[...]`` as links; wrapped in a ``pycon`` fence they render
as the console sessions they are. Only the rendered text changes, never the source.
"""

from __future__ import annotations

from typing import Any

from griffe import Extension, Object


def fence_doctests(text: str) -> str:
    """``text`` with every run of doctest lines (up to a blank line) inside a ``pycon`` fence;
    runs already inside a fence are left alone."""
    out: list[str] = []
    inside = False
    fenced = False
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("```"):
            fenced = not fenced
        if not fenced and not inside and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            inside = True
        elif inside and not stripped:
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(Extension):
    """Fences the doctest runs of every docstring loaded for the site."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
