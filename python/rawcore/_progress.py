"""A dependency-free progress bar for long downloads and decompressions.

The bar is drawn on stderr with carriage returns, and only when stderr is a terminal (unless
the caller forces it on or off), so logs and pipes never see it.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

__all__ = ["ProgressBar"]

_REDRAW_INTERVAL_S = 0.1
_BAR_WIDTH = 24


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class ProgressBar:
    """Shows `done / total` bytes, a bar and the rate on one terminal line.

    `enabled=None` means: draw only when `stream` (stderr by default) is a TTY.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self._stream, "isatty", None)
            enabled = bool(isatty()) if callable(isatty) else False
        self.enabled = enabled
        self._label = label
        self._total = total
        self._done = 0
        self._start = time.monotonic()
        self._last_draw = 0.0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def set(self, done: int) -> None:
        """Record that `done` bytes are now complete (absolute, not an increment)."""
        self._done = done
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= _REDRAW_INTERVAL_S:
            self._last_draw = now
            self._draw(now)

    def update(self, increment: int) -> None:
        """Record `increment` more bytes."""
        self.set(self._done + increment)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()
            self.enabled = False

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = f"{_human(self._done / elapsed)}/s"
        if self._total:
            frac = min(self._done / self._total, 1.0)
            filled = int(frac * _BAR_WIDTH)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            text = f"{self._label} [{bar}] {_human(self._done)} / {_human(self._total)} {rate}"
        else:
            text = f"{self._label} {_human(self._done)} {rate}"
        self._stream.write("\r" + text + "\x1b[K")
        self._stream.flush()
