"""The scene's sound: every participant's audio placed on the scene clock by the mix engine's
decoders, with the edits applied, cut where the time map cuts, and limited.

`SceneAudio` reads the scene's mix over any forward range of samples: each audio track (or its
replacement) is a `PlacedTrack` of `rawcore.media.mix` at its `start_ms`, with its gain; a
muted participant is left out; a trimmed range of a participant is silent. `output_blocks`
walks the time map's segments and joins them with a 10 ms crossfade centred on each cut (the
outgoing side read a little past its end, the incoming a little before its start), so a cut
never clicks and the output has exactly the samples of its segments. The sum goes through the
mix engine's look-ahead limiter.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rawcore import _core
from rawcore.media.mix.decode import PlacedTrack, TrackDecoder
from rawcore.media.mix.types import MixInput, Samples
from rawcore.pipeline.compose.edits import Edits
from rawcore.pipeline.compose.timemap import TimeMap
from rawcore.pipeline.scene.model import Interval, Scene, SceneTrack

#: Length of the crossfade at a cut.
CROSSFADE_MS = 10
#: A trimmed range fades out over this much before it and back in after it (no click).
TRIM_FADE_MS = 5
#: Samples read from the scene per step of a long stretch.
_STEP_S = 1


@dataclass
class _Voice:
    placed: PlacedTrack
    #: Sample ranges [start, end) on the scene clock in which this voice is silent.
    silent: list[tuple[int, int]]


class SceneAudio:
    """The scene's mix, read in forward ranges of samples on the scene clock."""

    def __init__(
        self,
        scene: Scene,
        resolve: Callable[[SceneTrack], Path],
        edits: Edits,
        rate: int,
        channels: int,
        stack: contextlib.ExitStack,
        from_ms: int = 0,
    ) -> None:
        self.rate = rate
        self.channels = channels
        #: The first scene time that will be read: each track seeks to it (see `TrackDecoder`).
        self.from_ms = from_ms
        self.voices: list[_Voice] = []
        replaced: set[str] = set()
        for track in scene.tracks:
            if track.kind != "audio":
                continue
            e = edits.of(track.participant_id)
            if e.mute:
                continue
            spec_path, start_ms = resolve(track), float(track.start_ms)
            if e.audio is not None and track.source == "camera":
                if track.participant_id in replaced:
                    continue  # one replacement stands for all of the camera's audio
                replaced.add(track.participant_id)
                spec_path, start_ms = e.audio.path, float(e.audio.offset_ms)
            self._add(spec_path, start_ms, track.participant_id, e.gain_db, e.trim, stack)
        for pid, e in edits.participants.items():
            if e.audio is not None and not e.mute and pid not in replaced:
                self._add(e.audio.path, float(e.audio.offset_ms), pid, e.gain_db, e.trim, stack)

    def _add(
        self,
        path: Path,
        start_ms: float,
        label: str,
        gain_db: float,
        trim: tuple[Interval, ...],
        stack: contextlib.ExitStack,
    ) -> None:
        spec = MixInput(path=path, start_unix_ms=start_ms, label=label, gain_db=gain_db)
        offset = round(start_ms * self.rate / 1000)
        first = max(0, self.samples(self.from_ms) - offset)
        placed = PlacedTrack(
            track=TrackDecoder(spec, self.rate, stack, start=first),
            offset=offset,
            gain=1.0 if gain_db == 0.0 else 10 ** (gain_db / 20),
            gain_db=gain_db,
            loudness=None,
        )
        silent = [(self.samples(t.start_ms), self.samples(t.end_ms)) for t in trim]
        self.voices.append(_Voice(placed, silent))

    @property
    def decoded_samples(self) -> int:
        """Samples decoded from the tracks so far, all tracks together (the work done)."""
        return sum(v.placed.track.decoded for v in self.voices)

    def samples(self, ms: float) -> int:
        return round(ms * self.rate / 1000)

    def read(self, start: int, end: int) -> Samples:
        """The mix of scene samples [start, end); `start` never goes back."""
        window = np.zeros((max(0, end - start), self.channels), dtype=np.float32)
        fade = max(1, self.samples(TRIM_FADE_MS))
        for v in self.voices:
            hit = [(a, b) for a, b in v.silent if a - fade < end and b + fade > start]
            if not hit:
                v.placed.add_into(window, start)
                continue
            own = np.zeros_like(window)
            v.placed.add_into(own, start)
            t = np.arange(start, start + len(window), dtype=np.float64)
            gain = np.ones(len(window))
            for a, b in hit:
                # 0 inside [a, b), rising linearly to 1 over `fade` samples on either side.
                edge = np.maximum((a - t) / fade, (t - (b - 1)) / fade)
                gain = np.minimum(gain, np.clip(edge, 0.0, 1.0))
            window += own * gain[:, None].astype(np.float32)
        return window


def output_blocks(audio: SceneAudio, time_map: TimeMap) -> Iterator[Samples]:
    """The output's samples in order: the time map's segments joined by crossfades, limited.
    Exactly `sum(segment lengths)` samples in all."""
    spans = [
        (audio.samples(s.scene_start_ms), audio.samples(s.scene_end_ms)) for s in time_map.segments
    ]
    fade = audio.samples(CROSSFADE_MS)
    # Half-width of the crossfade at each cut: within the fade, half the pause, and half of
    # each neighbouring segment (so a segment's two fades never overlap).
    halves = [
        max(0, min(fade // 2, (a2 - b1) // 2, (b1 - a1) // 2, (b2 - a2) // 2))
        for (a1, b1), (a2, b2) in itertools.pairwise(spans)
    ]
    limiter = _core.MixLimiter(audio.rate, audio.channels)
    step = audio.rate * _STEP_S
    for k, (a, b) in enumerate(spans):
        left = halves[k - 1] if k > 0 else 0
        right = halves[k] if k < len(halves) else 0
        pos = a + left
        while pos < b - right:
            n = min(step, b - right - pos)
            yield limiter.process(audio.read(pos, pos + n))
            pos += n
        if right:
            a2 = spans[k + 1][0]
            tail = audio.read(b - right, b + right)
            head = audio.read(a2 - right, a2 + right)
            ramp = ((np.arange(2 * right, dtype=np.float32) + 0.5) / (2 * right))[:, None]
            joined: Samples = (tail * (1 - ramp) + head * ramp).astype(np.float32)
            yield limiter.process(joined)
    yield limiter.flush()
