"""Output time and scene time: the one map that video frames and audio samples both follow.

The output is the scene's kept stretches back to back: the range asked for (`--range`, or the
scene's clip; in the scene's original time), minus the pauses when they are trimmed. A frame
or sample at output time `t` shows scene time `scene_ms(t)`, so a cut lands on the same instant
for picture and sound and the output is shorter by exactly what was cut.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from rawcore.errors import SceneError
from rawcore.pipeline.scene.model import Scene


@dataclass(frozen=True, slots=True)
class Segment:
    """Scene time [scene_start_ms, scene_end_ms) shown from output time `out_start_ms`."""

    scene_start_ms: int
    scene_end_ms: int
    out_start_ms: int

    @property
    def duration_ms(self) -> int:
        return self.scene_end_ms - self.scene_start_ms


@dataclass(frozen=True)
class TimeMap:
    segments: tuple[Segment, ...]
    #: `out_start_ms` of every segment, for bisecting.
    starts: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", tuple(s.out_start_ms for s in self.segments))

    @property
    def duration_ms(self) -> int:
        return sum(s.duration_ms for s in self.segments)

    @property
    def cut_ms(self) -> int:
        """Scene time inside the range that the output leaves out."""
        if not self.segments:
            return 0
        return self.segments[-1].scene_end_ms - self.segments[0].scene_start_ms - self.duration_ms

    def scene_ms(self, out_ms: float) -> float:
        """The scene time shown at output time `out_ms` (clamped to the last segment)."""
        i = max(0, bisect.bisect_right(self.starts, out_ms) - 1)
        s = self.segments[i]
        return s.scene_start_ms + min(out_ms - s.out_start_ms, s.duration_ms)

    def out_ms(self, scene_ms: float) -> float | None:
        """Where scene time `scene_ms` lands in the output (None: it was cut)."""
        for s in self.segments:
            if s.scene_start_ms <= scene_ms < s.scene_end_ms:
                return s.out_start_ms + scene_ms - s.scene_start_ms
        return None


def build_time_map(
    scene: Scene, *, range_ms: tuple[int, int] | None = None, trim_pauses: bool = False
) -> TimeMap:
    """The map for a render of `scene` over `range_ms` (default: all of it), pauses cut when
    `trim_pauses`. `SceneError` for a range outside the scene or an output with nothing in it."""
    start, end = (0, scene.duration_ms) if range_ms is None else range_ms
    if not 0 <= start < end <= scene.duration_ms:
        raise SceneError(
            f"range {start}-{end} ms is not inside the scene (0-{scene.duration_ms} ms)"
        )
    kept: list[tuple[int, int]] = []
    at = start
    for p in scene.pauses if trim_pauses else ():
        if p.end_ms <= at or p.start_ms >= end:
            continue
        if p.start_ms > at:
            kept.append((at, p.start_ms))
        at = max(at, p.end_ms)
    if at < end:
        kept.append((at, end))
    if not kept:
        raise SceneError(f"range {start}-{end} ms is all pauses: nothing to render")
    segments: list[Segment] = []
    out = 0
    for a, b in kept:
        segments.append(Segment(a, b, out))
        out += b - a
    return TimeMap(tuple(segments))
