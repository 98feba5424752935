"""The edits file (`rawcore.edits/1`): per-participant changes applied when a scene is rendered.

```json
{"schema": "rawcore.edits/1",
 "participants": {"alice": {"gain_db": -6, "mute": false,
                            "trim": [{"start_ms": 1000, "end_ms": 2500}],
                            "replace": {"audio": {"path": "alice-clean.wav", "offset_ms": 0},
                                        "video": {"path": "alice.mp4", "offset_ms": 120}}}}}
```

`gain_db` and `mute` act on all of a participant's audio; `trim` silences it in ranges of scene
time (5 ms fades outside each range); `replace` takes a participant's camera audio or video
from another file whose first sample sits at `offset_ms` on the scene clock. The format
addresses the camera only: `replace.video` swaps the picture of the participant's `camera`
hosts and `replace.audio` their camera (microphone) audio, while a screen share (its picture
and any audio it carries) is always rendered from the scene's own tracks. Paths are
relative to the edits file (or absolute). Everything is checked against the scene when the
file is read, before any work starts; a problem is one `SceneError` line naming the file and
the field.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from rawcore.errors import SceneError
from rawcore.pipeline.scene.model import Interval, Scene, read_json_document

EDITS_SCHEMA = "rawcore.edits/1"
MAX_EDITS_BYTES = 16 * 1024 * 1024
#: Gains outside this range are refused: a typo, not an edit.
MIN_GAIN_DB, MAX_GAIN_DB = -60.0, 24.0
MAX_TRIMS = 10_000


@dataclass(frozen=True, slots=True)
class Replacement:
    """Another file in place of a participant's track; its first sample at `offset_ms`."""

    path: Path
    offset_ms: int


@dataclass(frozen=True, slots=True)
class ParticipantEdits:
    gain_db: float = 0.0
    mute: bool = False
    trim: tuple[Interval, ...] = ()
    audio: Replacement | None = None
    video: Replacement | None = None


@dataclass(frozen=True, slots=True)
class Edits:
    participants: Mapping[str, ParticipantEdits] = field(default_factory=dict)

    def of(self, participant_id: str) -> ParticipantEdits:
        return self.participants.get(participant_id, _NONE)


_NONE = ParticipantEdits()
NO_EDITS = Edits()


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SceneError(f"{where} must be an object")
    return cast("dict[str, Any]", value)


def _int(value: object, where: str, lo: int, hi: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SceneError(f"{where}: an integer is required")
    if not lo <= value <= hi:
        raise SceneError(f"{where}: {value} is outside {lo}..{hi}")
    return value


def _replacement(value: object, where: str, base: Path, scene: Scene) -> Replacement:
    d = _object(value, where)
    path = d.get("path")
    if not isinstance(path, str) or not path or "\x00" in path:
        raise SceneError(f"{where}.path: a non-empty string is required")
    full = base / path
    if not full.is_file():
        raise SceneError(f"{where}.path: {full}: no such file")
    bound = scene.duration_ms
    return Replacement(full, _int(d.get("offset_ms", 0), f"{where}.offset_ms", -bound, bound))


def _participant(d: dict[str, Any], where: str, base: Path, scene: Scene) -> ParticipantEdits:
    unknown = set(d) - {"gain_db", "mute", "trim", "replace"}
    if unknown:
        raise SceneError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    gain = d.get("gain_db", 0.0)
    if isinstance(gain, bool) or not isinstance(gain, int | float) or not math.isfinite(gain):
        raise SceneError(f"{where}.gain_db: a number is required")
    if not MIN_GAIN_DB <= gain <= MAX_GAIN_DB:
        raise SceneError(f"{where}.gain_db: {gain} is outside {MIN_GAIN_DB}..{MAX_GAIN_DB}")
    mute = d.get("mute", False)
    if not isinstance(mute, bool):
        raise SceneError(f"{where}.mute: true or false is required")
    trims = d.get("trim", [])
    if not isinstance(trims, list) or len(trims) > MAX_TRIMS:
        raise SceneError(f"{where}.trim: a list of at most {MAX_TRIMS} ranges is required")
    trim: list[Interval] = []
    for i, t in enumerate(trims):
        tw = f"{where}.trim[{i}]"
        td = _object(t, tw)
        start = _int(td.get("start_ms"), f"{tw}.start_ms", 0, scene.duration_ms)
        end = _int(td.get("end_ms"), f"{tw}.end_ms", start, scene.duration_ms)
        trim.append(Interval(start, end))
    replace = _object(d.get("replace", {}), f"{where}.replace")
    unknown = set(replace) - {"audio", "video"}
    if unknown:
        raise SceneError(f"{where}.replace: unknown kind {sorted(unknown)[0]!r} (audio, video)")
    audio = replace.get("audio")
    video = replace.get("video")
    return ParticipantEdits(
        gain_db=float(gain),
        mute=mute,
        trim=tuple(sorted(trim, key=lambda t: t.start_ms)),
        audio=None if audio is None else _replacement(audio, f"{where}.replace.audio", base, scene),
        video=None if video is None else _replacement(video, f"{where}.replace.video", base, scene),
    )


def edits_from_dict(data: object, scene: Scene, *, where: str = "edits", base: Path) -> Edits:
    """`Edits` from the JSON document, checked against `scene` (participants it has, ranges
    within its duration, replacement files that exist)."""
    d = _object(data, where)
    if d.get("schema", EDITS_SCHEMA) != EDITS_SCHEMA:
        raise SceneError(f"{where}: schema {d.get('schema')!r} is not {EDITS_SCHEMA}")
    known = {t.participant_id for t in scene.tracks} | {
        h.participant_id for k in scene.layout for h in k.hosts
    }
    participants: dict[str, ParticipantEdits] = {}
    for pid, value in _object(d.get("participants", {}), f"{where}: participants").items():
        pw = f"{where}: participants.{pid}"
        if pid not in known:
            raise SceneError(f"{pw}: no such participant in the scene")
        participants[pid] = _participant(_object(value, pw), pw, base, scene)
    return Edits(participants)


def load_edits(path: str | os.PathLike[str], scene: Scene) -> Edits:
    """Read and check an edits file against `scene`."""
    p = Path(path)
    data = read_json_document(p, "edits file", MAX_EDITS_BYTES)
    return edits_from_dict(data, scene, where=str(p), base=p.resolve().parent)
