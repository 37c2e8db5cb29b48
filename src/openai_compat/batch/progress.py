"""Progress on stderr: a live bar on a terminal, periodic plain lines otherwise.

Both show rows done and failed, requests/s, tokens/s and the ETA (when the input's size is
known). The bar is tqdm's; the plain lines suit CI logs and ``2> file``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from .results import BatchSummary

__all__ = ["PROGRESS_MODES", "Progress", "choose_mode"]

PROGRESS_MODES = ("auto", "bar", "lines", "off")
_POSTFIX_EVERY_S = 0.5


def choose_mode(mode: str, stream: TextIO) -> str:
    """``auto`` -> ``bar`` when ``stream`` is a terminal, else ``lines``."""
    if mode != "auto":
        return mode
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "lines"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _spent(summary: BatchSummary) -> str:
    """The cost so far and the rows the cache answered, when the run has them."""
    text = f" cached={summary.cached}" if summary.cached else ""
    return text + (f" cost=${summary.cost:.4f}" if summary.cost is not None else "")


class Progress:
    """Shows a `BatchSummary` while it fills up. Call `update` after each result."""

    def __init__(
        self,
        summary: BatchSummary,
        *,
        mode: str = "auto",
        total: int | None = None,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        prefix: str = "batch",
    ) -> None:
        self.summary = summary
        self.stream = stream or sys.stderr
        self.mode = choose_mode(mode, self.stream)
        self.total = total
        self.interval_s = interval_s
        self.prefix = prefix
        self._bar: tqdm[Any] | None = None
        self._shown = 0
        self._postfix_at = 0.0
        self._ticker: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Open the bar, or start the periodic lines (needs a running event loop)."""
        if self.mode == "bar":
            self._bar = tqdm(
                total=self.total,
                unit="row",
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.2,
                smoothing=0.1,
                desc=self.prefix,
            )
        elif self.mode == "lines":
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._line()

    def set_total(self, total: int | None) -> None:
        """The number of input rows, once known (for the ETA)."""
        self.total = total
        if self._bar is not None and total is not None:
            self._bar.total = total
            self._bar.refresh()

    async def aclose(self) -> None:
        """Stop the ticker and close the bar (the final summary is printed separately)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._bar is not None:
            self.update(force=True)
            self._bar.close()
            self._bar = None

    # -- updates ----------------------------------------------------------------------------
    @property
    def handled(self) -> int:
        """Rows read so far: finished here, skipped, or left to other shards."""
        s = self.summary
        return s.done + s.skipped + s.other_shards

    def _rates(self) -> tuple[float, float]:
        elapsed = max(time.perf_counter() - self.summary.started, 1e-9)
        return self.summary.requests / elapsed, self.summary.total_tokens / elapsed

    def update(self, *, force: bool = False) -> None:
        """Refresh after a result (cheap: the bar redraws a few times a second)."""
        bar = self._bar
        if bar is None:
            return
        handled = self.handled
        if handled > self._shown:
            bar.update(handled - self._shown)
            self._shown = handled
        now = time.perf_counter()
        if force or now - self._postfix_at >= _POSTFIX_EVERY_S:
            self._postfix_at = now
            req_s, tok_s = self._rates()
            bar.set_postfix_str(
                f"ok={self.summary.ok} failed={self.summary.failed} "
                f"req/s={req_s:.1f} tok/s={tok_s:.0f}{_spent(self.summary)}"
                f"{_limit(self.summary)}",
                refresh=force,
            )

    def _line(self) -> None:
        s = self.summary
        req_s, tok_s = self._rates()
        handled = self.handled
        of = f"/{self.total}" if self.total else ""
        text = (
            f"{self.prefix}: {handled}{of} rows (ok {s.ok}, failed {s.failed}, "
            f"skipped {s.skipped + s.other_shards}) {req_s:.1f} req/s {tok_s:.0f} tok/s"
            f"{_spent(s)}{_limit(s)}"
        )
        elapsed = time.perf_counter() - s.started
        if self.total and handled and elapsed > 0:
            left = max(self.total - handled, 0) / (handled / elapsed)
            text += f" ETA {_duration(left)}"
        self.note(text)

    def note(self, message: str) -> None:
        """Print a line on stderr without breaking the bar."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)


def _limit(summary: BatchSummary) -> str:
    """The adaptive concurrency limit, for the progress line ("" when fixed)."""
    limit = summary.concurrency_limit
    return "" if limit is None else f" in flight <= {limit} (auto)"
