"""The scene: what a call looked like, on the call clock (schema `rawcore.scene/1`).

A scene is the contract between the post-recording pipeline that writes it, the editor that
changes it, and the compositor that renders it. This module is the one home of its rules: the
types, the limits, validation, reading and writing. Every time is an integer number of ms from
the recording's start (`start_unix_ms` on the call clock), so a layout change lands on the frame
where it happened and the tracks it refers to line up with it exactly. Box geometry is in
fractions of the canvas. Track paths are relative to the scene file, so a folder holding a scene
and its tracks is a self-contained project.

The JSON Schema `rawcore/schemas/scene-1.schema.json` describes the same document for other
tools; the checks here go further (ordering, ranges against the duration, path safety, limits).
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast

from rawcore.errors import SceneError
from rawcore.media.files import atomic_path

SCENE_SCHEMA = "rawcore.scene/1"
SCENE_NAME = "scene.json"
SCHEMA_RESOURCE = "scene-1.schema.json"

#: Layout keyframes a scene may hold; the compositor takes the same.
MAX_LAYOUT_KEYFRAMES = 100_000
#: Hosts on screen at once.
MAX_HOSTS = 64
#: Largest canvas side (8K UHD width) and area; sides are even (YUV 4:2:0) and at least 16.
MAX_CANVAS_SIDE = 7680
MAX_CANVAS_PIXELS = 7680 * 4320
MIN_CANVAS_SIDE = 16
MAX_FPS = 120.0
#: A scene file larger than this is refused before it is parsed.
MAX_SCENE_BYTES = 256 * 1024 * 1024
#: Ten days: no recording is longer, and every ms value fits easily in an int64 after scaling.
MAX_DURATION_MS = 10 * 24 * 3600 * 1000
#: Rounding slack for boxes that touch the canvas edge (0.1 + 0.9 is not exactly 1.0).
_EDGE = 1e-6

Shape = Literal["rect", "rounded", "circle"]
Source = Literal["camera", "screen"]
Kind = Literal["audio", "video"]
SHAPES: tuple[Shape, ...] = ("rect", "rounded", "circle")
#: A participant's feeds: `camera` (camera and microphone) and `screen` (a screen share and its
#: audio).
SOURCES: tuple[Source, ...] = ("camera", "screen")
KINDS: tuple[Kind, ...] = ("audio", "video")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True, slots=True)
class Canvas:
    width: int
    height: int
    fps: float


@dataclass(frozen=True, slots=True)
class Background:
    """From `t_ms` on: a colour (`#rrggbb`) or an image (a path relative to the scene, scaled to
    cover the canvas). Exactly one of the two is set."""

    t_ms: int
    color: str | None = None
    image: str | None = None


@dataclass(frozen=True, slots=True)
class SceneTrack:
    """A media file the scene refers to and where it sits on the timeline."""

    participant_id: str
    name: str
    kind: Kind
    source: Source
    path: str
    start_ms: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Host:
    """One participant's feed on screen: a box in canvas fractions, clipped to a shape, stacked
    by `z` (higher on top). `radius` (rounded corners) is a fraction of the canvas's shorter
    side."""

    participant_id: str
    source: Source
    x: float
    y: float
    w: float
    h: float
    shape: Shape = "rect"
    radius: float = 0.0
    z: int = 0


@dataclass(frozen=True, slots=True)
class LayoutKeyframe:
    """The hosts on screen from `t_ms` until the next keyframe."""

    t_ms: int
    hosts: tuple[Host, ...]


@dataclass(frozen=True, slots=True)
class Interval:
    start_ms: int
    end_ms: int

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class Hook:
    hook_id: str
    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Clip:
    start_ms: int
    end_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class Scene:
    recording_id: str
    start_unix_ms: int
    duration_ms: int
    canvas: Canvas
    backgrounds: tuple[Background, ...] = ()
    tracks: tuple[SceneTrack, ...] = ()
    layout: tuple[LayoutKeyframe, ...] = ()
    pauses: tuple[Interval, ...] = ()
    hooks: tuple[Hook, ...] = ()
    clip: Clip | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def layout_at(self, t_ms: int) -> LayoutKeyframe | None:
        """The keyframe in force at `t_ms` (None before the first)."""
        i = bisect.bisect_right([k.t_ms for k in self.layout], t_ms) - 1
        return self.layout[i] if i >= 0 else None

    def background_at(self, t_ms: int) -> Background | None:
        i = bisect.bisect_right([b.t_ms for b in self.backgrounds], t_ms) - 1
        return self.backgrounds[i] if i >= 0 else None

    @property
    def paused_ms(self) -> int:
        return sum(p.duration_ms for p in self.pauses)


# --- reading -----------------------------------------------------------------------------------


class _Fields:
    """Typed access to one JSON object, errors naming the file and the field's path."""

    def __init__(self, data: object, where: str, path: str) -> None:
        if not isinstance(data, dict):
            raise SceneError(f"{where}: {path or 'the scene'} must be an object")
        self.data = cast("dict[str, Any]", data)
        self.where = where
        self.path = path

    def fail(self, key: str, problem: str) -> SceneError:
        name = f"{self.path}.{key}" if self.path else key
        return SceneError(f"{self.where}: {name}: {problem}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def string(self, key: str, default: str | None = None, *, max_len: int = 4096) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or (default is None and not value):
            raise self.fail(key, "a non-empty string is required")
        if len(value) > max_len:
            raise self.fail(key, f"longer than {max_len} characters")
        return value

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.data.get(key, default)
        # JSON has one number type: 1500.0 is accepted as 1500, 1500.5 is not.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "an integer is required")
        if not lo <= value <= hi:
            raise self.fail(key, f"{value} is outside {lo}..{hi}")
        return value

    def number(self, key: str, lo: float, hi: float, default: float | None = None) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number is required")
        value = float(value)
        if not math.isfinite(value) or not lo <= value <= hi:
            raise self.fail(key, f"{value} is outside {lo}..{hi}")
        return value

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return cast("str", value)

    def items(self, key: str, limit: int) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "a list is required")
        if len(value) > limit:
            raise self.fail(key, f"{len(value)} entries, more than the limit of {limit}")
        return value

    def child(self, key: str, index: int | None = None) -> _Fields:
        value = self.data.get(key) if index is None else self.data[key][index]
        name = key if index is None else f"{key}[{index}]"
        return _Fields(value, self.where, f"{self.path}.{name}" if self.path else name)


def _relative_path(f: _Fields, key: str) -> str:
    """A path relative to the scene: POSIX separators, not absolute, no `..`."""
    value = f.string(key)
    p = PurePosixPath(value)
    if "\\" in value or "\x00" in value or p.is_absolute() or ".." in p.parts:
        raise f.fail(key, f"{value!r} must be a relative path inside the scene's folder")
    return value


def _canvas(f: _Fields) -> Canvas:
    width = f.integer("width", MIN_CANVAS_SIDE, MAX_CANVAS_SIDE)
    height = f.integer("height", MIN_CANVAS_SIDE, MAX_CANVAS_SIDE)
    if width % 2 or height % 2:
        raise f.fail("width", f"{width}x{height}: sides must be even (YUV 4:2:0)")
    if width * height > MAX_CANVAS_PIXELS:
        raise f.fail("width", f"{width}x{height} is larger than {MAX_CANVAS_PIXELS} pixels")
    return Canvas(width, height, f.number("fps", 1.0, MAX_FPS))


def _background(f: _Fields, duration_ms: int) -> Background:
    t_ms = f.integer("t_ms", 0, duration_ms)
    color = f.data.get("color")
    image = f.data.get("image")
    if (color is None) == (image is None):
        raise f.fail("color", "exactly one of color and image is required")
    if color is not None:
        if not isinstance(color, str) or not _COLOR.match(color):
            raise f.fail("color", f"{color!r} is not #rrggbb")
        return Background(t_ms, color=color.lower())
    return Background(t_ms, image=_relative_path(f, "image"))


def _track(f: _Fields, duration_ms: int) -> SceneTrack:
    participant_id = f.string("participant_id", max_len=256)
    return SceneTrack(
        participant_id=participant_id,
        name=f.string("name", participant_id, max_len=256),
        kind=cast("Kind", f.choice("kind", KINDS)),
        source=cast("Source", f.choice("source", SOURCES, "camera")),
        path=_relative_path(f, "path"),
        start_ms=f.integer("start_ms", 0, duration_ms),
        duration_ms=f.integer("duration_ms", 0, MAX_DURATION_MS),
    )


def _host(f: _Fields) -> Host:
    x, y = f.number("x", 0.0, 1.0), f.number("y", 0.0, 1.0)
    w, h = f.number("w", 0.0, 1.0), f.number("h", 0.0, 1.0)
    if w <= 0 or h <= 0:
        raise f.fail("w", f"{w}x{h}: a box needs a positive width and height")
    if x + w > 1 + _EDGE or y + h > 1 + _EDGE:
        raise f.fail("x", f"the box ({x}, {y}, {w}, {h}) reaches outside the canvas")
    return Host(
        participant_id=f.string("participant_id", max_len=256),
        source=cast("Source", f.choice("source", SOURCES, "camera")),
        x=x,
        y=y,
        w=w,
        h=h,
        shape=cast("Shape", f.choice("shape", SHAPES, "rect")),
        radius=f.number("radius", 0.0, 0.5, 0.0),
        z=f.integer("z", -1_000_000, 1_000_000, 0),
    )


def _interval(f: _Fields, duration_ms: int) -> tuple[int, int]:
    start = f.integer("start_ms", 0, duration_ms)
    end = f.integer("end_ms", 0, duration_ms)
    if end < start:
        raise f.fail("end_ms", f"{end} is before start_ms {start}")
    return start, end


def _ordered(f: _Fields, key: str, times: Sequence[int], *, strict: bool) -> None:
    for i in range(1, len(times)):
        if times[i] < times[i - 1] or (strict and times[i] == times[i - 1]):
            raise f.fail(f"{key}[{i}]", "entries must be in time order, one per instant")


def scene_from_dict(data: object, *, where: str = "scene") -> Scene:
    """A `Scene` from its JSON document; `SceneError` naming `where` and the field otherwise."""
    f = _Fields(data, where, "")
    if f.data.get("schema", SCENE_SCHEMA) != SCENE_SCHEMA:
        raise f.fail("schema", f"{f.data.get('schema')!r} is not {SCENE_SCHEMA}")
    duration_ms = f.integer("duration_ms", 0, MAX_DURATION_MS)
    extra = f.data.get("extra", {})
    if not isinstance(extra, dict):
        raise f.fail("extra", "an object is required")

    backgrounds = tuple(
        _background(f.child("backgrounds", i), duration_ms)
        for i in range(len(f.items("backgrounds", MAX_LAYOUT_KEYFRAMES)))
    )
    _ordered(f, "backgrounds", [b.t_ms for b in backgrounds], strict=True)
    tracks = tuple(
        _track(f.child("tracks", i), duration_ms) for i in range(len(f.items("tracks", 10_000)))
    )
    layout: list[LayoutKeyframe] = []
    for i in range(len(f.items("layout", MAX_LAYOUT_KEYFRAMES))):
        k = f.child("layout", i)
        hosts = tuple(_host(k.child("hosts", j)) for j in range(len(k.items("hosts", MAX_HOSTS))))
        layout.append(LayoutKeyframe(k.integer("t_ms", 0, duration_ms), hosts))
    _ordered(f, "layout", [k.t_ms for k in layout], strict=True)

    pauses: list[Interval] = []
    for i in range(len(f.items("pauses", MAX_LAYOUT_KEYFRAMES))):
        start, end = _interval(f.child("pauses", i), duration_ms)
        if end == start:
            raise f.child("pauses", i).fail("end_ms", "a pause must last at least 1 ms")
        if pauses and start < pauses[-1].end_ms:
            raise f.fail(f"pauses[{i}]", "pauses must be in time order and not overlap")
        pauses.append(Interval(start, end))

    hooks: list[Hook] = []
    for i in range(len(f.items("hooks", MAX_LAYOUT_KEYFRAMES))):
        h = f.child("hooks", i)
        start, end = _interval(h, duration_ms)
        hooks.append(Hook(h.string("hook_id", max_len=256), h.string("text", ""), start, end))

    clip = None
    if f.has("clip"):
        c = f.child("clip")
        start, end = _interval(c, duration_ms)
        if end == start:
            raise c.fail("end_ms", "a clip must last at least 1 ms")
        clip = Clip(start, end, c.string("reason", "", max_len=1024))

    return Scene(
        recording_id=f.string("recording_id", max_len=256),
        start_unix_ms=f.integer("start_unix_ms", 0, 2**53),
        duration_ms=duration_ms,
        canvas=_canvas(f.child("canvas")),
        backgrounds=backgrounds,
        tracks=tracks,
        layout=tuple(layout),
        pauses=tuple(pauses),
        hooks=tuple(hooks),
        clip=clip,
        extra=extra,
    )


def canvas_from_dict(data: object, *, where: str) -> Canvas:
    """One canvas object (`width`, `height`, `fps`) by the scene's rules; `SceneError` naming
    `where` otherwise (the event log checks its `canvas` events with it)."""
    return _canvas(_Fields(data, where, ""))


def host_from_dict(data: object, *, where: str) -> Host:
    """One host object (a box inside the canvas) by the scene's rules."""
    return _host(_Fields(data, where, ""))


def background_from_dict(data: object, *, t_ms: int, where: str) -> Background:
    """A background from an object holding `color` (#rrggbb) or `image`, placed at `t_ms`."""
    f = _Fields(data, where, "")
    return _background(_Fields({**f.data, "t_ms": t_ms}, where, ""), MAX_DURATION_MS)


def load_scene(path: str | os.PathLike[str]) -> Scene:
    """Read and check a scene file (size, JSON, every field) before any work starts."""
    p = Path(path)
    return scene_from_dict(read_json_document(p, "scene file", MAX_SCENE_BYTES), where=str(p))


def read_json_document(path: Path, what: str, limit: int) -> object:
    """One JSON document (a scene, an edits file) read whole, with one-line `SceneError`s for a
    file that is missing, over `limit` bytes, unreadable, not JSON or nested too deeply."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise SceneError(f"{path}: {size} bytes, more than the limit of {limit}")
        with path.open("rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise SceneError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SceneError(f"{path}: cannot be read: {e}") from None
    except json.JSONDecodeError as e:
        raise SceneError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from None
    except RecursionError:
        raise SceneError(f"{path}: JSON nested too deeply") from None


def track_file(scene_file: str | os.PathLike[str], track: SceneTrack) -> Path:
    """Where a track's file is: its path taken relative to the scene file's folder."""
    return Path(scene_file).resolve().parent / PurePosixPath(track.path)


# --- writing -----------------------------------------------------------------------------------


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def scene_to_dict(scene: Scene) -> dict[str, Any]:
    """The JSON document of a scene (schema `rawcore.scene/1`)."""
    c = scene.canvas
    fps: float | int = int(c.fps) if float(c.fps).is_integer() else c.fps
    return {
        "schema": SCENE_SCHEMA,
        "recording_id": scene.recording_id,
        "start_unix_ms": scene.start_unix_ms,
        "duration_ms": scene.duration_ms,
        "canvas": {"width": c.width, "height": c.height, "fps": fps},
        "backgrounds": [
            _drop_none({"t_ms": b.t_ms, "color": b.color, "image": b.image})
            for b in scene.backgrounds
        ],
        "tracks": [
            {
                "participant_id": t.participant_id,
                "name": t.name,
                "kind": t.kind,
                "source": t.source,
                "path": t.path,
                "start_ms": t.start_ms,
                "duration_ms": t.duration_ms,
            }
            for t in scene.tracks
        ],
        "layout": [
            {
                "t_ms": k.t_ms,
                "hosts": [
                    {
                        "participant_id": h.participant_id,
                        "source": h.source,
                        "x": h.x,
                        "y": h.y,
                        "w": h.w,
                        "h": h.h,
                        "shape": h.shape,
                        "radius": h.radius,
                        "z": h.z,
                    }
                    for h in k.hosts
                ],
            }
            for k in scene.layout
        ],
        "pauses": [{"start_ms": p.start_ms, "end_ms": p.end_ms} for p in scene.pauses],
        "hooks": [
            {"hook_id": h.hook_id, "text": h.text, "start_ms": h.start_ms, "end_ms": h.end_ms}
            for h in scene.hooks
        ],
        "clip": None
        if scene.clip is None
        else {
            "start_ms": scene.clip.start_ms,
            "end_ms": scene.clip.end_ms,
            "reason": scene.clip.reason,
        },
        "extra": dict(scene.extra),
    }


def write_scene(scene: Scene, path: str | os.PathLike[str]) -> Path:
    """Write a scene atomically (checked first: what we write we can read back)."""
    document = scene_to_dict(scene)
    scene_from_dict(document, where=str(path))
    out = Path(path)
    with atomic_path(out.parent, out.name) as tmp:
        tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return out


def schema_text() -> str:
    """The JSON Schema of `rawcore.scene/1`, as shipped in the package."""
    return resources.files("rawcore").joinpath("schemas", SCHEMA_RESOURCE).read_text("utf-8")
