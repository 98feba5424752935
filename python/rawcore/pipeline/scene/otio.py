"""`scene.otio`: the scene as an OpenTimelineIO timeline, for editors.

Written as OTIO's own JSON (schema `Timeline.1`), so rawcore needs no OTIO library at run time;
the tests read it back with `opentimelineio` and hold it against the scene. Times are rational
with a rate of 1000 (ms), so every scene time is exact. Per participant and source (camera,
screen) there is one video and one audio track; each track file is a clip with an external
reference (its path relative to the scene, as in `scene.json`), preceded by a gap that places it
at its `start_ms`. Pauses and hook displays are markers on the top stack; the layout keyframes,
backgrounds, clip and canvas go in the timeline's metadata under `rawcore`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rawcore.media.files import atomic_path
from rawcore.pipeline.scene.model import Scene, SceneTrack, scene_to_dict

RATE = 1000.0


def _time(ms: int) -> dict[str, Any]:
    return {"OTIO_SCHEMA": "RationalTime.1", "rate": RATE, "value": float(ms)}


def _range(start_ms: int, duration_ms: int) -> dict[str, Any]:
    return {
        "OTIO_SCHEMA": "TimeRange.1",
        "duration": _time(duration_ms),
        "start_time": _time(start_ms),
    }


def _item(schema: str, name: str, duration_ms: int, **more: Any) -> dict[str, Any]:
    return {
        "OTIO_SCHEMA": schema,
        "metadata": more.pop("metadata", {}),
        "name": name,
        "source_range": _range(0, duration_ms),
        "effects": [],
        "markers": [],
        "enabled": True,
        "color": None,
        **more,
    }


def _clip(track: SceneTrack) -> dict[str, Any]:
    reference = {
        "OTIO_SCHEMA": "ExternalReference.1",
        "metadata": {},
        "name": "",
        "available_range": _range(0, track.duration_ms),
        "available_image_bounds": None,
        "target_url": track.path,
    }
    return _item(
        "Clip.2",
        Path(track.path).name,
        track.duration_ms,
        metadata={
            "rawcore": {
                "participant_id": track.participant_id,
                "source": track.source,
                "start_ms": track.start_ms,
            }
        },
        media_references={"DEFAULT_MEDIA": reference},
        active_media_reference_key="DEFAULT_MEDIA",
    )


def _end(t: SceneTrack) -> int:
    return t.start_ms + t.duration_ms


def _lanes(tracks: Sequence[SceneTrack]) -> list[list[SceneTrack]]:
    """The files of one participant, source and kind in time order; files that overlap in
    time (e.g. two codecs) go to a lane of their own."""
    lanes: list[list[SceneTrack]] = []
    for t in sorted(tracks, key=lambda t: (t.start_ms, t.path)):
        lane = next((ln for ln in lanes if _end(ln[-1]) <= t.start_ms), None)
        if lane is None:
            lanes.append([t])
        else:
            lane.append(t)
    return lanes


def _otio_track(name: str, kind: str, files: Sequence[SceneTrack]) -> dict[str, Any]:
    children: list[dict[str, Any]] = []
    at = 0
    for t in files:
        if t.start_ms > at:
            children.append(_item("Gap.1", "", t.start_ms - at))
        children.append(_clip(t))
        at = t.start_ms + t.duration_ms
    track = _item("Track.1", name, 0, children=children, kind=kind)
    track["source_range"] = None
    return track


def _marker(name: str, start_ms: int, end_ms: int, color: str, **meta: Any) -> dict[str, Any]:
    return {
        "OTIO_SCHEMA": "Marker.2",
        "metadata": {"rawcore": meta} if meta else {},
        "name": name,
        "color": color,
        "marked_range": _range(start_ms, end_ms - start_ms),
        "comment": "",
    }


def otio_document(scene: Scene) -> dict[str, Any]:
    """The OTIO JSON document (`Timeline.1`) of a scene."""
    groups: dict[tuple[str, str, str], list[SceneTrack]] = {}
    for t in scene.tracks:
        groups.setdefault((t.participant_id, t.source, t.kind), []).append(t)
    children: list[dict[str, Any]] = []
    # Video tracks first (bottom to top of the picture), then audio, each by participant.
    for kind in ("video", "audio"):
        for (_, source, k), files in sorted(groups.items()):
            if k != kind:
                continue
            name = next(t.name for t in files)
            for n, lane in enumerate(_lanes(files), 1):
                label = f"{name} {source} {kind}" + (f" {n}" if n > 1 else "")
                children.append(_otio_track(label, kind.capitalize(), lane))
    markers = [_marker("pause", p.start_ms, p.end_ms, "RED") for p in scene.pauses]
    markers += [
        _marker(f"hook {h.hook_id}", h.start_ms, h.end_ms, "YELLOW", hook_id=h.hook_id, text=h.text)
        for h in scene.hooks
    ]
    if scene.clip is not None:
        c = scene.clip
        markers.append(_marker("clip", c.start_ms, c.end_ms, "GREEN", reason=c.reason))
    doc = scene_to_dict(scene)
    stack = _item("Stack.1", "tracks", 0, children=children)
    stack["source_range"] = None
    stack["markers"] = markers
    return {
        "OTIO_SCHEMA": "Timeline.1",
        "metadata": {
            "rawcore": {
                "schema": doc["schema"],
                "recording_id": scene.recording_id,
                "start_unix_ms": scene.start_unix_ms,
                "duration_ms": scene.duration_ms,
                "canvas": doc["canvas"],
                "backgrounds": doc["backgrounds"],
                "layout": doc["layout"],
                "clip": doc["clip"],
            }
        },
        "name": scene.recording_id,
        "global_start_time": _time(0),
        "tracks": stack,
    }


def write_otio(scene: Scene, path: str | os.PathLike[str]) -> Path:
    """Write `scene.otio` atomically."""
    out = Path(path)
    with atomic_path(out.parent, out.name) as tmp:
        tmp.write_text(json.dumps(otio_document(scene), indent=1, ensure_ascii=False) + "\n")
    return out
