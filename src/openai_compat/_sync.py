"""Running the async core from sync code: one way, for every sync entry point.

On uvloop when it is installed (``uvicorn[standard]``, a dependency, brings it on Linux and
macOS): batch runs are bound by the CPU their loop spends per row, and uvloop's is the
smaller (``bench/batch.py`` prints both). When the calling thread already runs an event loop
(a notebook, a server), the coroutine runs to completion on a loop of its own in a worker
thread, since a running loop cannot be re-entered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run_sync"]

_T = TypeVar("_T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop``, or None (asyncio's default) without uvloop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion and return its result, from any thread.

    >>> async def answer() -> int:
    ...     return 42
    >>> run_sync(answer())
    42
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_run, coro).result()
