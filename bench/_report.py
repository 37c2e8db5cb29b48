"""Small helpers shared by the benchmark scripts: timing summaries and side-by-side tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from importlib.metadata import version


def versions(*packages: str) -> str:
    """``name x.y.z`` for each package, plus the Python version, on one line."""
    parts = [f"Python {platform.python_version()}"]
    parts += [f"{name} {version(name)}" for name in packages]
    return ", ".join(parts)


def machine() -> str:
    """A short description of the machine the figures come from."""
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.system()} {platform.release()}"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def verdict(name: str, ratio: float, target: float, *, higher_is_better: bool = True) -> str:
    ok = ratio >= target if higher_is_better else ratio <= target
    sign = ">=" if higher_is_better else "<="
    return f"  [{'PASS' if ok else 'MISS'}] {name}: {ratio:.2f}x (target {sign} {target}x)"


def say(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
