"""The automatic layout: what the scene shows when the studio left no event log.

Everyone whose video is live is on screen: cameras in a grid in the order people joined; while
a screen share is live it takes the large tile (the left three quarters of the canvas, the most
recently started share when there are several) and every other feed stacks in a column on the
right. The layout is recomputed at every instant a video feed starts or ends (a join, a leave,
a share starting or stopping), and a keyframe is written only when the picture changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rawcore.pipeline.scene.model import MAX_LAYOUT_KEYFRAMES, Host, LayoutKeyframe, Source

#: The share of the canvas width the large tile takes.
LARGE_W = 0.75


@dataclass(frozen=True, slots=True)
class Feed:
    """A video feed live over `[start_ms, end_ms)` of the scene."""

    participant_id: str
    source: Source
    start_ms: int
    end_ms: int


def _grid(feeds: Sequence[Feed], x0: float, w: float) -> list[Host]:
    n = len(feeds)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw, rh = w / cols, 1.0 / rows
    return [
        Host(f.participant_id, f.source, x0 + (i % cols) * cw, (i // cols) * rh, cw, rh, z=1)
        for i, f in enumerate(feeds)
    ]


def hosts_for(live: Sequence[Feed]) -> tuple[Host, ...]:
    """The hosts for the feeds live at one instant (in join order)."""
    screens = [f for f in live if f.source == "screen"]
    if not screens:
        return tuple(_grid(live, 0.0, 1.0)) if live else ()
    large = max(screens, key=lambda f: (f.start_ms, f.participant_id))
    others = [f for f in live if f is not large]
    if not others:
        return (Host(large.participant_id, "screen", 0.0, 0.0, 1.0, 1.0, z=0),)
    h = 1.0 / len(others)
    column = [
        Host(f.participant_id, f.source, LARGE_W, i * h, 1.0 - LARGE_W, h, z=1)
        for i, f in enumerate(others)
    ]
    return (Host(large.participant_id, "screen", 0.0, 0.0, LARGE_W, 1.0, z=0), *column)


def auto_layout(feeds: Sequence[Feed], duration_ms: int) -> tuple[LayoutKeyframe, ...]:
    """Keyframes at every change of the live feeds over `[0, duration_ms)`."""
    order = sorted(feeds, key=lambda f: (f.start_ms, f.participant_id, f.source))
    # The picture changes inside the recording only: nothing is shown from its end on.
    instants = sorted(
        {0} | {max(t, 0) for f in order for t in (f.start_ms, f.end_ms) if t < duration_ms}
    )
    keyframes: list[LayoutKeyframe] = []
    for t in instants:
        live = [f for f in order if f.start_ms <= t < f.end_ms]
        hosts = hosts_for(live)
        if keyframes and keyframes[-1].hosts == hosts:
            continue
        if len(keyframes) >= MAX_LAYOUT_KEYFRAMES:
            break
        keyframes.append(LayoutKeyframe(t, hosts))
    return tuple(keyframes)
