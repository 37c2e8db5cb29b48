"""Rows read on a thread of their own, handed to the event loop in chunks.

Any iterable of rows (a file's `RowSource`, a database cursor's rows): file reads, JSON
decoding and a blocking driver stay off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

__all__ = ["read_in_thread"]

_END: Any = object()


async def read_in_thread(rows: Iterable[Any], size: int) -> AsyncIterator[list[Any]]:
    """Chunks of ``size`` rows, read and decoded on a daemon thread.

    File reads and JSON decoding stay off the event loop, and a reader blocked on a stdin
    that never ends cannot hold up a stopped run, nor the interpreter's exit (executor
    threads would be joined at exit; this one is a daemon).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)
    stopped = threading.Event()

    def hand_over(item: Any) -> bool:
        try:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
        except (RuntimeError, asyncio.CancelledError, concurrent.futures.CancelledError):
            return False  # the loop is gone, or the run stopped
        return not stopped.is_set()

    def produce() -> None:
        iterator = iter(rows)
        try:
            while not stopped.is_set():
                chunk = [row for _, row in zip(range(size), iterator, strict=False)]
                if not chunk:
                    hand_over(_END)
                    return
                if not hand_over(chunk):
                    return
        except BaseException as exc:  # handed to the event loop, raised there
            hand_over(exc)

    threading.Thread(target=produce, name="batch-reader", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        # Wake a reader waiting to hand over a chunk, so it sees the stop.
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                queue.get_nowait()
