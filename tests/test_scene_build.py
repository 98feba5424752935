"""`rawcore scene` on generated calls whose layout changes, pauses, hooks, beeps and flashes
happen at known instants: the scene's times against the truth (media checked by decoding the
stitched tracks), the schema, the OTIO timeline read back with `opentimelineio`, reuse of the
tracks, the automatic layout and the automatic clip."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import opentimelineio as otio
import pytest
import rawcore
from helpers.audio_truth import OPUS_LOOKAHEAD_S, av_available, decode_audio, tone_onsets
from helpers.gst import gst_available
from helpers.recording import (
    DEFAULT_CALL_START,
    OpusSource,
    SessionSpec,
    TrackSpec,
    VideoSource,
    build_recording,
    multiparty_call,
)
from helpers.video_truth import decode_video, flash_times
from rawcore.errors import SceneError
from rawcore.pipeline.scene.build import SceneProject, build_scene_project
from rawcore.pipeline.scene.model import load_scene, schema_text, track_file

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

T0 = round(DEFAULT_CALL_START.timestamp() * 1000)
#: The generated network path: media reaches the recorder 20 ms after it was sent.
PATH_MS = 20
FPS = 30
FRAME_MS = 1000 / FPS
BEEPS = (1.0, 2.5, 4.0, 6.5)
BEEP_HZ = 1000.0
BOB_OFFSET_S = 0.5
SHARE = (3.0, 7.0)


def _e(t: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"unix_ms": T0 + t, "type": kind, **fields}


def _box(pid: str, x: float, w: float, source: str = "camera", **more: Any) -> dict[str, Any]:
    return {"participant_id": pid, "source": source, "x": x, "y": 0.0, "w": w, "h": 1.0, **more}


#: The studio's log: layout changes at odd instants, a pause, a hook, an unknown event.
EVENTS = [
    _e(0, "recording_started", recording_id="rec_1", room="studio-a"),
    _e(0, "canvas", width=1280, height=720, fps=FPS),
    _e(0, "background", color="#101820"),
    _e(1000, "layout", hosts=[_box("alice", 0.0, 1.0)]),
    _e(2537, "layout", hosts=[_box("alice", 0.0, 0.5), _box("bob", 0.5, 0.5, shape="rounded",
                                                              radius=0.04, z=2)]),
    _e(4001, "layout", hosts=[_box("bob", 0.0, 0.75, "screen"), _box("alice", 0.75, 0.25, z=1)]),
    _e(5000, "paused"),
    _e(5613, "resumed"),
    _e(6000, "hook_shown", hook_id="h1", text="Follow for more"),
    _e(7009, "hook_hidden", hook_id="h1"),
    _e(7500, "confetti", amount=3),
    _e(8200, "recording_stopped"),
]  # fmt: skip


def studio_call(root: Path) -> None:
    beeps = tuple((t, 0.3, BEEP_HZ) for t in BEEPS)
    video = VideoSource(8.0, fps=FPS, flashes=BEEPS, keyframe_interval=30)
    alice = [
        TrackSpec("audio", "opus", source=OpusSource(8.0, tone_bursts=beeps)),
        TrackSpec("video", "vp8", source=video),
    ]
    bob = [
        TrackSpec(
            "audio",
            "opus",
            source=OpusSource(7.5, tone_bursts=((1.0, 0.5, 660.0),)),
            start_offset_s=BOB_OFFSET_S,
        ),
        TrackSpec("video", "vp8", source=VideoSource(7.5, fps=15), start_offset_s=BOB_OFFSET_S),
        TrackSpec(
            "screen_share",
            "vp8",
            source=VideoSource(SHARE[1] - SHARE[0], fps=5),
            start_offset_s=SHARE[0],
        ),
    ]
    build_recording(root, [SessionSpec("alice", "s1", alice), SessionSpec("bob", "s1", bob)])


@dataclass
class Built:
    project: SceneProject
    out: Path
    rec_root: Path
    events: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("scene")
    studio_call(base / "rec")
    lines = list(EVENTS)
    random.Random(5).shuffle(lines)  # the log's line order is not time order
    events = base / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    with rawcore.open_recording(base / "rec") as rec:
        project = build_scene_project(
            rec, base / "project", events=events, participants={"alice": "Alice A."}
        )
    yield Built(project, base / "project", base / "rec", events)


def test_event_times_land_exactly_on_the_scene_clock(built: Built) -> None:
    scene = built.project.scene
    assert scene.start_unix_ms == T0  # recording_started
    assert scene.duration_ms == 8200
    assert (scene.canvas.width, scene.canvas.height, scene.canvas.fps) == (1280, 720, FPS)
    assert [k.t_ms for k in scene.layout] == [1000, 2537, 4001]
    assert [[(h.participant_id, h.source) for h in k.hosts] for k in scene.layout] == [
        [("alice", "camera")],
        [("alice", "camera"), ("bob", "camera")],
        [("bob", "screen"), ("alice", "camera")],
    ]
    # The renderer applies a keyframe from the first frame at or after it: one frame at most.
    for k, truth_ms in zip(scene.layout, (1000, 2537, 4001), strict=True):
        first_frame = -(-k.t_ms * FPS // 1000) * FRAME_MS
        assert 0 <= first_frame - truth_ms < FRAME_MS
    assert [(p.start_ms, p.end_ms) for p in scene.pauses] == [(5000, 5613)]
    assert [(h.hook_id, h.text, h.start_ms, h.end_ms) for h in scene.hooks] == [
        ("h1", "Follow for more", 6000, 7009)
    ]
    assert [(b.t_ms, b.color) for b in scene.backgrounds] == [(0, "#101820")]
    assert scene.recording_id == "rec_1"
    assert scene.extra["room"] == "studio-a"
    assert [e["type"] for e in scene.extra["unknown_events"]] == ["confetti"]
    assert any("unknown event type 'confetti'" in w for w in built.project.warnings)


def test_the_stitched_tracks_line_up_with_the_event_clock_when_decoded(built: Built) -> None:
    """Alice beeps and flashes at known instants; the decoded tracks, placed at their
    `start_ms`, put every beep and flash within one frame of when it reached the recorder."""
    scene = built.project.scene
    by = {(t.participant_id, t.source, t.kind): t for t in scene.tracks}
    assert set(by) == {
        ("alice", "camera", "audio"), ("alice", "camera", "video"), ("bob", "camera", "audio"),
        ("bob", "camera", "video"), ("bob", "screen", "video"),
    }  # fmt: skip
    assert {t.name for t in scene.tracks if t.participant_id == "alice"} == {"Alice A."}
    assert {t.name for t in scene.tracks if t.participant_id == "bob"} == {"bob"}
    truth = [t * 1000 + PATH_MS for t in BEEPS]

    audio_track = by[("alice", "camera", "audio")]
    audio = decode_audio(track_file(built.project.scene_path, audio_track))
    beeps = [
        audio_track.start_ms + (audio.start_time_s + t - OPUS_LOOKAHEAD_S) * 1000
        for t in tone_onsets(audio.samples, audio.rate, BEEP_HZ)
    ]
    assert len(beeps) == len(truth)
    assert all(abs(b - t) < FRAME_MS for b, t in zip(beeps, truth, strict=True)), beeps
    assert abs(audio.duration_s * 1000 - audio_track.duration_ms) < FRAME_MS

    video_track = by[("alice", "camera", "video")]
    video = decode_video(track_file(built.project.scene_path, video_track))
    flashes = [video_track.start_ms + f * 1000 for f in flash_times(video)]
    assert len(flashes) == len(truth)
    assert all(abs(f - t) < FRAME_MS for f, t in zip(flashes, truth, strict=True)), flashes

    share = by[("bob", "screen", "video")]
    assert abs(share.start_ms - (SHARE[0] * 1000 + PATH_MS)) < FRAME_MS
    bob_audio = by[("bob", "camera", "audio")]
    assert abs(bob_audio.start_ms - (BOB_OFFSET_S * 1000 + PATH_MS)) < FRAME_MS


def test_the_scene_file_validates_against_its_schema_and_reads_back(built: Built) -> None:
    doc = json.loads(built.project.scene_path.read_text())
    jsonschema.validate(doc, json.loads(schema_text()))
    assert load_scene(built.project.scene_path) == built.project.scene
    for path in built.project.track_paths:
        assert path.is_file() and built.out in path.parents


def _clips(timeline: otio.schema.Timeline) -> dict[str, tuple[int, int, str, str]]:
    found = {}
    for track in timeline.tracks:
        for clip in track.find_clips():
            r = clip.range_in_parent()
            assert r.start_time.rate == r.duration.rate == 1000
            found[clip.media_reference.target_url] = (
                round(r.start_time.value), round(r.duration.value), track.kind, track.name
            )  # fmt: skip
    return found


def test_the_otio_timeline_loads_round_trips_and_matches_the_scene(built: Built) -> None:
    scene = built.project.scene
    timeline = otio.adapters.read_from_file(str(built.project.otio_path))
    again = otio.adapters.read_from_string(otio.adapters.write_to_string(timeline))
    assert again.is_equivalent_to(timeline)
    # What we write is what OpenTimelineIO itself writes for that timeline.
    ours = json.loads(built.project.otio_path.read_text())
    assert json.loads(otio.adapters.write_to_string(timeline)) == ours

    clips = _clips(timeline)
    assert {t.path: (t.start_ms, t.duration_ms, t.kind.capitalize()) for t in scene.tracks} == {
        path: c[:3] for path, c in clips.items()
    }
    # One video and one audio track per participant and source that has them.
    names = sorted(track.name for track in timeline.tracks)
    assert names == sorted(
        ["Alice A. camera video", "Alice A. camera audio", "bob camera video",
         "bob camera audio", "bob screen video"]
    )  # fmt: skip
    markers = set()
    for m in timeline.tracks.markers:
        r = m.marked_range
        markers.add((m.name, round(r.start_time.value), round(r.end_time_exclusive().value)))
    assert ("pause", 5000, 5613) in markers and ("hook h1", 6000, 7009) in markers
    layout = timeline.metadata["rawcore"]["layout"]
    assert [k["t_ms"] for k in layout] == [k.t_ms for k in scene.layout]


def test_a_second_run_reuses_the_tracks_and_writes_the_same_scene(built: Built) -> None:
    before = {p: p.stat().st_mtime_ns for p in built.project.track_paths}
    with rawcore.open_recording(built.rec_root) as rec:
        again = build_scene_project(
            rec, built.out, events=built.events, participants={"alice": "Alice A."}
        )
    assert again.scene == built.project.scene
    assert {p: p.stat().st_mtime_ns for p in again.track_paths} == before


@pytest.mark.parametrize(
    ("case", "event", "words"),
    [
        ("a host who is not in the call", _e(10, "layout", hosts=[_box("carol", 0.0, 1.0)]),
         "host 'carol' is not a participant"),
        ("a resume without a pause", _e(10, "resumed"), "resumed without a pause"),
        ("a layout outside the canvas", _e(10, "layout", hosts=[_box("alice", 0.5, 0.6)]),
         "reaches outside the canvas"),
    ],
)  # fmt: skip
def test_a_contradictory_log_stops_before_any_track_is_written(
    built: Built, tmp_path: Path, case: str, event: dict[str, Any], words: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(_e(0, "recording_started")) + "\n" + json.dumps(event) + "\n")
    out = tmp_path / "project"
    with rawcore.open_recording(built.rec_root) as rec, pytest.raises(SceneError) as err:
        build_scene_project(rec, out, events=events)
    assert "line 2" in str(err.value) and words in str(err.value), case
    assert not out.exists()


# --- the automatic layout -------------------------------------------------------------------


def test_without_a_log_everyone_with_video_is_on_screen_and_a_share_takes_the_large_tile(
    tmp_path: Path,
) -> None:
    multiparty_call(tmp_path / "rec", duration_s=6.0)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        project = build_scene_project(rec, tmp_path / "project", clip=False)
        videos = [t for t in rec.tracks if t.kind == "video"]
    scene = project.scene
    # The first media packet on the call clock starts the scene.
    assert (
        scene.start_unix_ms == min(t.start_ms for t in scene.tracks) + scene.start_unix_ms
        and min(t.start_ms for t in scene.tracks) == 0
    )
    seen = {(h.participant_id, h.source) for k in scene.layout for h in k.hosts}
    assert seen == {(t.participant_id, "screen" if t.screenshare else "camera") for t in videos}
    share = next(t for t in scene.tracks if t.source == "screen" and t.kind == "video")
    during = scene.layout_at(share.start_ms + 500)
    assert during is not None
    big = max(during.hosts, key=lambda h: h.w * h.h)
    assert (big.participant_id, big.source) == (share.participant_id, "screen")
    assert (big.x, big.y, big.w, big.h) == (0.0, 0.0, 0.75, 1.0)
    others = [h for h in during.hosts if h is not big]
    assert others and all(h.x == 0.75 and h.w == 0.25 for h in others)
    # Every keyframe is a change at a join, a leave or a share, in order.
    pairs = zip(scene.layout, scene.layout[1:], strict=False)
    assert all(a.t_ms < b.t_ms and a.hosts != b.hosts for a, b in pairs)
    late = next(t for t in scene.tracks if t.participant_id == "user_3" and t.kind == "video")
    before, after = scene.layout_at(late.start_ms - 50), scene.layout_at(late.start_ms + 50)
    assert before is not None and after is not None
    assert "user_3" not in {h.participant_id for h in before.hosts}
    assert "user_3" in {h.participant_id for h in after.hosts}
    jsonschema.validate(json.loads(project.scene_path.read_text()), json.loads(schema_text()))
