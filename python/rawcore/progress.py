"""Dependency-free progress display: a byte bar for downloads and decompressions
(`ProgressBar`) and one line per stage for multi-stage runs such as process-all
(`StageProgress`).

Both draw on stderr, and only when stderr is a terminal (unless the caller forces them on or
off), so logs and pipes never see them; stdout is never written.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["ProgressBar", "StageProgress"]

_REDRAW_INTERVAL_S = 0.1
_BAR_WIDTH = 24
_SPINNER = "|/-\\"  # the running stage's mark: it turns while the elapsed time moves


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


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def _can_encode(stream: TextIO, text: str) -> bool:
    encoding = getattr(stream, "encoding", None)
    if encoding is None:  # an in-memory text stream holds any character
        return True
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):  # no real terminal behind the stream
        return 80


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Stage:
    """One stage's state (a plain class: a dataclass costs every command's start-up)."""

    __slots__ = ("done", "ended", "failed", "fraction", "name", "started", "total")

    def __init__(self, name: str, started: float) -> None:
        self.name = name
        self.started = started
        self.ended: float | None = None
        self.failed = False
        self.done: int | None = None
        self.total: int | None = None
        self.fraction: float | None = None


class StageProgress:
    """One terminal line per stage: a mark, the name, a bar, done/total (or a percentage) and
    the elapsed time. Stages run one after another: `begin` ends the running one, whose line
    then stays on screen with a check mark and its time.

    `enabled=None` means: draw only when `stream` (stderr by default) is a TTY. Updates may come
    from any thread; the screen is redrawn at most 10 times a second. Inside a `with` block a
    background tick keeps the elapsed time moving while a stage reports nothing, and leaving it
    closes the display: a stage that an exception interrupted is marked failed.
    """

    def __init__(
        self,
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        label_width: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self._stream) if enabled is None else enabled
        self._label_width = label_width
        self._clock = clock
        self._lock = threading.Lock()
        self._stages: list[_Stage] = []
        self._written = 0  # leading stages whose final line is on screen: never redrawn
        self._live = 0  # lines drawn below those, redrawn in place
        self._last_draw = -_REDRAW_INTERVAL_S
        self._closed = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        fancy = _can_encode(self._stream, "✓✗█░")
        self._ok, self._fail = ("✓", "✗") if fancy else ("+", "x")
        self._fill, self._empty = ("█", "░") if fancy else ("#", "-")

    # -- updates (any thread) ----------------------------------------------------------------

    def begin(self, name: str) -> None:
        """Start stage `name`, ending the one that was running."""
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            self._end_locked(now, failed=False)
            self._stages.append(_Stage(name, now))
            self._draw_locked(now)

    def count(self, done: int, total: int) -> None:
        """`done` of the running stage's `total` outputs are complete (an `on_done` callback)."""
        with self._lock:
            stage = self._running()
            if stage is not None:
                if total == stage.total and stage.done is not None:
                    done = max(done, stage.done)  # concurrent reports may arrive out of order
                stage.done, stage.total = done, total
                self._draw_locked(self._clock())

    def fraction(self, value: float) -> None:
        """The running stage is `value` (0..1) done (a `progress` callback)."""
        with self._lock:
            stage = self._running()
            if stage is not None:
                stage.fraction = min(max(value, 0.0), 1.0)
                self._draw_locked(self._clock())

    def close(self, *, failed: bool = False) -> None:
        """End the running stage and draw the final state; later updates are ignored."""
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            self._end_locked(now, failed=failed)
            self._closed = True
            self._draw_locked(now, force=True)
        self._stop.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join()

    def lines(self) -> list[str]:
        """Every stage's line as it would be drawn now."""
        with self._lock:
            now = self._clock()
            return [self._line(s, now) for s in self._stages]

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> StageProgress:
        if self.enabled and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="rawcore-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)

    # -- internals (under the lock) ------------------------------------------------------------

    def _tick(self) -> None:
        while not self._stop.wait(_REDRAW_INTERVAL_S):
            with self._lock:
                if not self._closed:
                    self._draw_locked(self._clock())

    def _running(self) -> _Stage | None:
        if self._closed or not self._stages or self._stages[-1].ended is not None:
            return None
        return self._stages[-1]

    def _end_locked(self, now: float, *, failed: bool) -> None:
        stage = self._running()
        if stage is not None:
            stage.ended = now
            stage.failed = failed

    def _line(self, stage: _Stage, now: float) -> str:
        elapsed = (stage.ended if stage.ended is not None else now) - stage.started
        if stage.ended is None:
            mark = _SPINNER[int(elapsed / _REDRAW_INTERVAL_S) % len(_SPINNER)]
        else:
            mark = self._fail if stage.failed else self._ok
        if stage.total:
            frac: float | None = min((stage.done or 0) / stage.total, 1.0)
            amount = f"{stage.done}/{stage.total}"
        elif stage.fraction is not None:
            frac = stage.fraction
            amount = f"{stage.fraction:.0%}"
        else:
            frac, amount = None, ""
        if stage.ended is not None and not stage.failed:
            frac = 1.0
        filled = 0 if frac is None else int(frac * _BAR_WIDTH)
        bar = self._fill * filled + self._empty * (_BAR_WIDTH - filled)
        name = stage.name.ljust(self._label_width)
        return f"{mark} {name} {bar} {amount:>9}  {_elapsed(elapsed):>7}"

    def _draw_locked(self, now: float, *, force: bool = False) -> None:
        if not self.enabled or (not force and now - self._last_draw < _REDRAW_INTERVAL_S):
            return
        self._last_draw = now
        stages = self._stages[self._written :]
        if not stages:
            return
        width = _columns(self._stream) - 1  # a line that wraps would break the redraw
        # The cursor rests at the start of the line below the live lines: up, then redraw.
        out = [f"\x1b[{self._live}A" if self._live else ""]
        out += ["\r" + self._line(s, now)[:width] + "\x1b[K\n" for s in stages]
        try:
            self._stream.write("".join(out))
            self._stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop drawing, keep working
            self.enabled = False
            return
        # Ended stages at the top are final: they stay above the redrawn lines from now on.
        settled = next((i for i, s in enumerate(stages) if s.ended is None), len(stages))
        self._written += settled
        self._live = len(stages) - settled
