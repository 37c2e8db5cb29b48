"""The event loop a batch run gets from the sync entry points (the CLI, `run_batch_sync`).

uvloop when it is installed (``uvicorn[standard]``, a dependency, brings it on Linux and
macOS): a run is bound by the CPU its loop spends per row, and uvloop's is the smaller
(``bench/batch.py`` prints both). asyncio's own loop otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

_T = TypeVar("_T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop``, or None (asyncio's default) without uvloop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(coro)`` on the loop of `loop_factory`."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)
