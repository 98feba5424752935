"""Voice activity and the automatic clip: the 30-60 s of a call most worth sharing.

Activity comes from the decoded audio: the core gives each participant's level per 20 ms slot
on the call timeline (`_core.voice_activity`, one coarse call per track, Opus decoded at
8 kHz). A slot is speech when someone's level is above `SPEECH_DBFS`. A sentence gap is a run
of at least `GAP_MS` of silence from everyone.

The clip starts and ends in the middle of sentence gaps, lasts `MIN_CLIP_MS` to `MAX_CLIP_MS`,
never crosses a pause, contains a whole hook display when the scene has one, and among those
holds the most speech (the earliest wins a tie). When no window fits every rule, the hook is
given up first; when still none fits, the scene has no clip (and a warning says why).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rawcore.pipeline.scene.model import Clip, Hook, Interval

SLOT_MS = 20
#: A slot louder than this (RMS, dBFS) is someone speaking. Speech sits around -30 to -15 dBFS;
#: comfort noise and room tone well below -50.
SPEECH_DBFS = -45.0
GAP_MS = 300
MIN_CLIP_MS = 30_000
MAX_CLIP_MS = 60_000


@dataclass(frozen=True, slots=True)
class Levels:
    """One track's levels (dBFS per `SLOT_MS`), from `start_ms` on the scene's timeline."""

    start_ms: int
    dbfs: npt.NDArray[np.float32]


def speech_slots(levels: Sequence[Levels], duration_ms: int) -> npt.NDArray[np.bool_]:
    """Per slot of the scene, whether anyone speaks."""
    n = max(0, -(-duration_ms // SLOT_MS))
    active = np.zeros(n, dtype=np.bool_)
    for lv in levels:
        first = lv.start_ms // SLOT_MS
        loud = lv.dbfs > SPEECH_DBFS
        a, b = max(0, first), min(n, first + len(loud))
        if b > a:
            active[a:b] |= loud[a - first : b - first]
    return active


def sentence_gaps(active: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of silence of at least `GAP_MS`, as `[start_ms, end_ms)`."""
    quiet = np.concatenate(([False], ~active, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(quiet))
    runs = edges.reshape(-1, 2)
    min_slots = -(-GAP_MS // SLOT_MS)
    return [(int(a) * SLOT_MS, int(b) * SLOT_MS) for a, b in runs if b - a >= min_slots]


def choose_clip(
    active: npt.NDArray[np.bool_],
    duration_ms: int,
    pauses: Sequence[Interval],
    hooks: Sequence[Hook],
) -> tuple[Clip | None, list[str]]:
    """The clip by the module's rules, and warnings when a rule had to go."""
    warnings: list[str] = []
    if duration_ms < MIN_CLIP_MS:
        return None, [f"no clip: the recording lasts {duration_ms} ms, under {MIN_CLIP_MS} ms"]
    # Candidate cut points: the middle of every sentence gap (the recording's ends count as
    # silence when they are).
    points = [min((a + b) // 2, duration_ms) for a, b in sentence_gaps(active)]
    if not points:
        return None, ["no clip: no sentence gap (300 ms of silence) in the recording"]
    speech = np.concatenate(([0], np.cumsum(active, dtype=np.int64)))

    def spoken(a: int, b: int) -> int:
        return int(speech[min(b // SLOT_MS, len(active))] - speech[min(a // SLOT_MS, len(active))])

    # Pauses are in time order and do not overlap, so their ends are in order too.
    pause_ends = [p.end_ms for p in pauses]

    def crosses_pause(a: int, b: int) -> bool:
        k = bisect.bisect_right(pause_ends, a)
        return k < len(pauses) and pauses[k].start_ms < b

    # Hooks by start; from each index on, the one that ends first: a window [a, b] contains a
    # whole hook when the first-ending hook among those starting at or after a ends by b.
    by_start = sorted(hooks, key=lambda h: (h.start_ms, h.end_ms))
    hook_starts = [h.start_ms for h in by_start]
    first_end: list[Hook | None] = [None] * (len(by_start) + 1)
    for k in range(len(by_start) - 1, -1, -1):
        later = first_end[k + 1]
        first_end[k] = by_start[k] if later is None or by_start[k].end_ms <= later.end_ms else later

    def hook_in(a: int, b: int) -> Hook | None:
        h = first_end[bisect.bisect_left(hook_starts, a)]
        return h if h is not None and h.end_ms <= b else None

    def best(require_hook: bool) -> tuple[int, int, int, Hook | None] | None:
        found: tuple[int, int, int, Hook | None] | None = None
        for i, a in enumerate(points):
            j = bisect.bisect_left(points, a + MIN_CLIP_MS, i + 1)
            while j < len(points) and points[j] - a <= MAX_CLIP_MS:
                b = points[j]
                j += 1
                if crosses_pause(a, b):
                    continue
                hook = hook_in(a, b)
                if require_hook and hook is None:
                    continue
                score = spoken(a, b)
                if found is None or score > found[0]:
                    found = (score, a, b, hook)
        return found

    choice = best(require_hook=bool(hooks))
    if choice is None and hooks:
        warnings.append("the clip holds no hook: no 30-60 s window between sentence gaps fits one")
        choice = best(require_hook=False)
    if choice is None:
        return None, [
            *warnings,
            "no clip: no 30-60 s window starts and ends in a sentence gap without crossing a pause",
        ]
    score, a, b, hook = choice
    reason = f"most speech: {score * SLOT_MS / 1000:.1f} s of {(b - a) / 1000:.1f} s"
    if hook is not None:
        reason += f"; shows hook {hook.hook_id}"
    return Clip(a, b, reason), warnings
