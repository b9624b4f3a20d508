"""Progress on stderr: redrawn in place on a terminal, one plain line per change otherwise (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24
_SPINNER = "|/-\\"


class Progress:
    """Shows the latest state; `update` is cheap to call on every poll."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self._last = ""
        self._width = 0
        self._ticks = 0

    def elapsed(self) -> str:
        """Seconds since the start, like `12s`."""
        return f"{time.monotonic() - self.started:.0f}s"

    def update(self, text: str) -> None:
        """Show `text`: redrawn on a terminal; printed as a new line elsewhere, only when it changed."""
        if self.live:
            self._ticks += 1
            line = f"{_SPINNER[self._ticks % len(_SPINNER)]} {text}  {self.elapsed()}"
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.stream.flush()
        elif text != self._last:
            self.stream.write(f"{text}  {self.elapsed()}\n")
            self.stream.flush()
        self._last = text

    def done(self) -> None:
        """End the redrawn line so what follows starts on its own line."""
        if self.live and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[#########...............]` for done/total, in plain ASCII."""
    filled = width if total <= 0 else min(width, round(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def batch_line(batch: dict[str, object]) -> str:
    """One batch's state: bar, finished/total, and every per-status count."""
    counts = batch.get("counts") if isinstance(batch.get("counts"), dict) else {}
    assert isinstance(counts, dict)
    total = int(str(batch.get("total", 0)))
    finished = sum(int(counts.get(name, 0)) for name in ("succeeded", "failed", "cancelled"))
    shown = ("succeeded", "failed", "running", "queued") + (("cancelled",) if counts.get("cancelled") else ())
    parts = " ".join(f"{name} {int(counts.get(name, 0))}" for name in shown)
    return f"{batch.get('id')} {bar(finished, total)} {finished}/{total}  {parts}"
