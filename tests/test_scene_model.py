"""The scene document (`rawcore.scene/1`): what is accepted, what is refused and why, and that
the model and the shipped JSON Schema agree."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rawcore.errors import InputError, SceneError
from rawcore.pipeline.scene.model import (
    MAX_LAYOUT_KEYFRAMES,
    load_scene,
    scene_from_dict,
    scene_to_dict,
    schema_text,
    track_file,
    write_scene,
)

# fmt: off
GOOD: dict[str, Any] = {
    "schema": "rawcore.scene/1",
    "recording_id": "rec_1",
    "start_unix_ms": 1742637600890,
    "duration_ms": 60_000,
    "canvas": {"width": 1280, "height": 720, "fps": 30},
    "backgrounds": [{"t_ms": 0, "color": "#101820"}, {"t_ms": 30_000, "image": "bg/slide.png"}],
    "tracks": [
        {"participant_id": "user_1", "name": "Ada", "kind": "video", "source": "camera",
         "path": "tracks/user_1_camera.webm", "start_ms": 0, "duration_ms": 60_000},
        {"participant_id": "user_2", "name": "Bo", "kind": "audio", "source": "camera",
         "path": "tracks/user_2_audio.webm", "start_ms": 1500, "duration_ms": 58_500},
    ],
    "layout": [
        {"t_ms": 0, "hosts": [
            {"participant_id": "user_1", "source": "camera", "x": 0.0, "y": 0.0, "w": 0.5,
             "h": 1.0, "shape": "rect", "radius": 0.0, "z": 1},
            {"participant_id": "user_2", "source": "screen", "x": 0.5, "y": 0.0, "w": 0.5,
             "h": 1.0, "shape": "rounded", "radius": 0.04, "z": 2}]},
        {"t_ms": 12_345, "hosts": [
            {"participant_id": "user_1", "source": "camera", "x": 0.1, "y": 0.1, "w": 0.9,
             "h": 0.9, "shape": "circle", "radius": 0.0, "z": 0}]},
    ],
    "pauses": [{"start_ms": 20_000, "end_ms": 25_000}],
    "hooks": [{"hook_id": "h1", "text": "Subscribe", "start_ms": 40_000, "end_ms": 45_000}],
    "clip": {"start_ms": 30_000, "end_ms": 60_000, "reason": "most speech"},
    "extra": {"studio": {"theme": "dark"}},
}
# fmt: on


def _with(path: str, value: Any) -> dict[str, Any]:
    """GOOD with one field (a dotted path, list indices as numbers) replaced, or removed when
    `value` is `...`."""
    doc = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is ...:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return doc


def test_a_scene_round_trips_through_its_file(tmp_path: Path) -> None:
    scene = scene_from_dict(GOOD)
    out = write_scene(scene, tmp_path / "scene.json")
    again = load_scene(out)
    assert again == scene
    assert scene_to_dict(again) == GOOD
    assert again.layout_at(12_344) == scene.layout[0]
    assert again.layout_at(12_345) == scene.layout[1]
    assert again.background_at(29_999) == scene.backgrounds[0]
    assert again.paused_ms == 5_000
    assert track_file(out, again.tracks[0]) == tmp_path / "tracks" / "user_1_camera.webm"
    assert [p.name for p in tmp_path.iterdir()] == ["scene.json"]  # no temp file left


def test_the_shipped_schema_accepts_what_the_model_writes() -> None:
    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(scene_to_dict(scene_from_dict(GOOD)), schema)


REFUSED = [
    ("a canvas of 100k x 100k", _with("canvas", {"width": 100_000, "height": 100_000, "fps": 30}),
     "outside 16..7680", True),
    ("an odd canvas side (4:2:0 needs even)",
     _with("canvas", {"width": 1281, "height": 720, "fps": 30}), "even", True),
    ("zero fps", _with("canvas.fps", 0), "fps", True),
    ("a box reaching outside the canvas", _with("layout.0.hosts.0.x", 0.6), "outside the canvas",
     False),
    ("a box with zero width", _with("layout.0.hosts.0.w", 0), "positive width", True),
    ("a negative box position", _with("layout.0.hosts.0.y", -0.1), "outside 0.0..1.0", True),
    ("an unknown shape", _with("layout.0.hosts.0.shape", "star"), "not one of", True),
    ("layout keyframes out of order", _with("layout.1.t_ms", 0), "time order", False),
    ("a keyframe after the end", _with("layout.1.t_ms", 60_001), "outside 0..60000", False),
    ("overlapping pauses",
     _with("pauses", [{"start_ms": 1, "end_ms": 10}, {"start_ms": 5, "end_ms": 20}]),
     "not overlap", False),
    ("a pause ending before it starts", _with("pauses.0.end_ms", 19_000), "before start_ms",
     False),
    ("a track path leaving the folder", _with("tracks.0.path", "../../etc/passwd"),
     "inside the scene's folder", True),
    ("an absolute track path", _with("tracks.0.path", "/etc/passwd"), "inside the scene's folder",
     True),
    ("a huge number", _with("duration_ms", 10**30), "outside", True),
    ("a fractional ms", _with("duration_ms", 1.5), "an integer", True),
    ("a boolean for a number", _with("start_unix_ms", True), "an integer", True),
    ("a missing canvas", _with("canvas", ...), "must be an object", True),
    ("a background with colour and image",
     _with("backgrounds.0", {"t_ms": 0, "color": "#000000", "image": "a.png"}), "exactly one",
     True),
    ("a colour that is not #rrggbb", _with("backgrounds.0.color", "red"), "#rrggbb", True),
    ("another schema", _with("schema", "rawcore.scene/2"), "is not rawcore.scene/1", True),
    ("more layout keyframes than the limit",
     _with("layout", [{"t_ms": 0, "hosts": []}] * (MAX_LAYOUT_KEYFRAMES + 1)), "limit", True),
]  # fmt: skip


@pytest.mark.parametrize(("case", "doc", "message", "schema_too"), REFUSED,
                         ids=[c[0] for c in REFUSED])  # fmt: skip
def test_a_bad_scene_is_refused_with_the_field_named(
    case: str, doc: dict[str, Any], message: str, schema_too: bool
) -> None:
    with pytest.raises(SceneError, match=message) as info:
        scene_from_dict(doc, where="scene.json")
    assert isinstance(info.value, InputError)
    assert str(info.value).startswith("scene.json: ") and "\n" not in str(info.value)
    if schema_too:  # what JSON Schema can express, the shipped schema refuses as well
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, json.loads(schema_text()))


@pytest.mark.parametrize(
    ("case", "content", "message"),
    [
        ("not JSON", b'{"recording_id": ', "not JSON"),
        ("JSON nested a million deep", b"[" * 1_000_000 + b"]" * 1_000_000, "nested too deeply"),
        ("not UTF-8", b'{"a": "\xc3\x28"}', "cannot be read"),
        ("a list, not an object", b"[]", "must be an object"),
    ],
)
def test_an_unreadable_scene_file_is_one_line(
    tmp_path: Path, case: str, content: bytes, message: str
) -> None:
    path = tmp_path / "scene.json"
    path.write_bytes(content)
    with pytest.raises(SceneError, match=message):
        load_scene(path)


def test_a_missing_scene_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="no such scene file"):
        load_scene(tmp_path / "nope.json")
