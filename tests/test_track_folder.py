"""A post-processed recording's stored tracks as an input: `rawcore scene --input-dir FOLDER`,
`rawcore compose` on that scene, `rawcore convert --input-dir FOLDER --track-id`, and folders
that are not what they claim, each refused in one line.

The recording is generated (GStreamer's Opus and VP8 payloaders, beeps and white flashes at
known instants), post-processed into a folder storage, and every check is on decoded output:
the scene built from the stored tracks renders its beeps and flashes at the same times as the
scene built from the raw recording."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import rawcore
from helpers.audio_truth import av_available, decode_audio, tone_onsets
from helpers.gst import gst_available
from helpers.recording import (
    DEFAULT_CALL_START,
    OpusSource,
    SessionSpec,
    TrackSpec,
    VideoSource,
    build_recording,
)
from helpers.video_truth import decode_video, flash_times
from rawcore.errors import InputError
from rawcore.pipeline.compose import compose
from rawcore.pipeline.post import PostTarget, post_process
from rawcore.pipeline.scene.build import build_scene_project
from rawcore.source.track_folder import read_track_folder
from rawcore.storage.backends import FolderStorage

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

T0 = round(DEFAULT_CALL_START.timestamp() * 1000)
FPS = 30
BEEPS = (1.0, 2.5, 4.0)
BEEP_HZ = 1000.0
ORG, ROOM, RID = "acme", "room-1", "rec-1"


def _e(t: int, kind: str, **fields: object) -> dict[str, object]:
    return {"unix_ms": T0 + t, "type": kind, **fields}


EVENTS = [
    _e(0, "recording_started", recording_id=RID),
    _e(0, "canvas", width=320, height=180, fps=FPS),
    _e(0, "layout", hosts=[{"participant_id": "alice", "source": "camera", "x": 0.0, "y": 0.0,
                            "w": 1.0, "h": 1.0}]),
    _e(5500, "recording_stopped"),
]  # fmt: skip


@dataclass
class Stored:
    rec: Path
    store: Path
    folder: Path
    events: Path


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    base = tmp_path_factory.mktemp("track-folder")
    beeps = tuple((t, 0.3, BEEP_HZ) for t in BEEPS)
    alice = [
        TrackSpec("audio", "opus", source=OpusSource(5.5, tone_bursts=beeps)),
        TrackSpec(
            "video", "vp8", source=VideoSource(5.5, fps=FPS, flashes=BEEPS, keyframe_interval=30)
        ),
    ]
    bob = [
        TrackSpec(
            "audio",
            "opus",
            source=OpusSource(5.0, tone_bursts=((1.0, 0.5, 660.0),)),
            start_offset_s=0.5,
        ),
        TrackSpec("video", "vp8", source=VideoSource(5.0, fps=15), start_offset_s=0.5),
    ]
    build_recording(base / "rec", [SessionSpec("alice", "s1", alice),
                                   SessionSpec("bob", "s1", bob)])  # fmt: skip
    events = base / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    store = base / "store"
    post_process(base / "rec", PostTarget(FolderStorage(store), ORG, ROOM, RID))
    return Stored(base / "rec", store, store / ORG / "raw" / ROOM / RID, events)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rawcore", *args], capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip


def beeps_and_flashes(mp4: Path) -> tuple[list[float], list[float]]:
    audio = decode_audio(mp4)
    beeps = [audio.start_time_s + t for t in tone_onsets(audio.samples, audio.rate, BEEP_HZ)]
    # The first frames can be brighter than the dark picture (a tile before it starts): the
    # flashes are the ones after half a second.
    return beeps, [t for t in flash_times(decode_video(mp4)) if t >= 0.5]


def test_a_scene_of_the_stored_tracks_renders_like_the_scene_of_the_recording(
    stored: Stored, tmp_path: Path
) -> None:
    with rawcore.open_recording(stored.rec) as rec:
        build_scene_project(rec, tmp_path / "from-rec", events=stored.events, clip=False)
    done = cli("scene", "--input-dir", str(stored.folder), "--events", str(stored.events),
               "--output", str(tmp_path / "from-folder"), "-q")  # fmt: skip
    assert done.returncode == 0, done.stderr
    project = tmp_path / "from-folder"
    scene = json.loads((project / "scene.json").read_text())
    original = json.loads((tmp_path / "from-rec" / "scene.json").read_text())
    assert scene["start_unix_ms"] == original["start_unix_ms"]
    assert scene["duration_ms"] == original["duration_ms"]
    placed = sorted((t["participant_id"], t["kind"], t["start_ms"]) for t in scene["tracks"])
    assert placed == sorted((t["participant_id"], t["kind"], t["start_ms"])
                            for t in original["tracks"])  # fmt: skip
    # No re-extraction: every track of the project is the stored stitched file itself.
    stitched = {p.name: p for p in stored.folder.glob("*/stitched/*")}
    for t in scene["tracks"]:
        linked = project / t["path"]
        assert linked.stat().st_ino == stitched[linked.name].stat().st_ino

    renders = {}
    for name in ("from-rec", "from-folder"):
        out = tmp_path / f"{name}.mp4"
        compose(tmp_path / name / "scene.json", out, preset="fast")
        renders[name] = beeps_and_flashes(out)
    (rec_beeps, rec_flashes), (folder_beeps, folder_flashes) = renders.values()
    assert len(rec_beeps) == len(rec_flashes) == len(BEEPS)
    assert folder_beeps == pytest.approx(rec_beeps, abs=0.020)
    assert folder_flashes == pytest.approx(rec_flashes, abs=1.0 / FPS + 1e-6)
    assert folder_flashes == pytest.approx(list(BEEPS), abs=0.1)  # and near the truth


def test_convert_a_stored_camera_track_pairs_its_microphone_in_sync(
    stored: Stored, tmp_path: Path
) -> None:
    folder = read_track_folder(stored.folder)
    camera = next(t for t in folder.raw if t.participant_id == "alice" and t.kind == "video")
    out = tmp_path / "alice.mp4"
    done = cli("convert", "--input-dir", str(stored.folder), "--track-id", camera.track_ids[0],
               "--output", str(out), "--preset", "ultrafast", "-q")  # fmt: skip
    assert done.returncode == 0, done.stderr
    beeps, flashes = beeps_and_flashes(out)
    assert len(beeps) == len(flashes) == len(BEEPS)
    for beep, flash in zip(beeps, flashes, strict=True):
        assert abs(beep - flash) <= 1.0 / FPS + 0.020, (beeps, flashes)
    entry = json.loads((tmp_path / "manifest.json").read_text())["outputs"][0]
    assert (entry["user_id"], entry["start_unix_ms"]) == ("alice", camera.start_unix_ms)
    assert entry["room"] == ROOM  # the room the folder's document names


@pytest.mark.parametrize(
    ("case", "room", "refused"),
    [
        ("no room given: the folder's", None, False),
        ("the folder's room given", ROOM, False),
        ("another room", "room-2", True),
        ("a hostile room", "../room-1", True),
    ],
)
def test_a_stored_track_converts_only_in_the_room_it_is_stored_in(
    stored: Stored, tmp_path: Path, case: str, room: str | None, refused: bool
) -> None:
    from rawcore.media.convert import convert_folder_track

    folder = read_track_folder(stored.folder)
    assert folder.room == ROOM
    mic = next(t for t in folder.raw if t.participant_id == "bob" and t.kind == "audio")
    out = tmp_path / "bob.mp4"
    if refused:
        with pytest.raises(InputError, match="room"):
            convert_folder_track(folder, mic.track_ids[0], out, mode="remux", room=room)
        assert not out.exists() and not (tmp_path / "manifest.json").exists(), case
        return
    entry = convert_folder_track(folder, mic.track_ids[0], out, mode="remux", room=room)
    assert entry.room == ROOM and out.is_file(), case


def _copy(stored: Stored, dst: Path) -> Path:
    """The stored folder with the metadata document inside it (the folder's own place)."""
    shutil.copytree(stored.folder, dst)
    shutil.copy(stored.store / ORG / "recordings" / RID / "metadata.json", dst / "metadata.json")
    return dst


def _tracks(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix in (".webm", ".mkv"))


def _no_tracks(d: Path) -> None:
    for p in _tracks(d):
        p.unlink()


def _garbage(d: Path) -> None:
    _tracks(d)[0].write_bytes(os.urandom(4096))


def _not_matroska(d: Path) -> None:
    victim = _tracks(d)[0]
    victim.write_bytes(b"OggS" + bytes(200))  # an Ogg page header: another container


def _stray_file(d: Path) -> None:
    (d / "alice" / "notes.txt").write_text("hello")


def _link_out(d: Path) -> None:
    outside = d.parent / "outside.webm"
    shutil.copy(_tracks(d)[0], outside)
    (d / "alice" / "evil.webm").symlink_to(outside)


def _key_out(d: Path) -> None:
    doc = json.loads((d / "metadata.json").read_text())
    key = doc["raw_tracks"][0]["key"]
    doc["raw_tracks"][0]["key"] = key.rsplit("/", 2)[0] + "/../../x.webm"
    (d / "metadata.json").write_text(json.dumps(doc))


def _no_document(d: Path) -> None:
    (d / "metadata.json").unlink()


def _unplaced(d: Path) -> None:
    shutil.copy(_tracks(d)[0], d / "alice" / "extra.webm")


BAD = [
    ("no_tracks_at_all", _no_tracks, "no WebM/Matroska tracks"),
    ("random_bytes_named_webm", _garbage, "not a WebM/Matroska file"),
    ("an_ogg_file_named_webm", _not_matroska, "not a WebM/Matroska file"),
    ("a_file_that_is_not_a_track", _stray_file, "not a WebM/Matroska track"),
    ("a_link_leading_out_of_the_folder", _link_out, "leads out of"),
    ("a_document_key_leading_out", _key_out, "leads out of"),
    ("no_metadata_document", _no_document, "no metadata.json"),
    ("a_file_the_document_does_not_place", _unplaced, "its place on the call clock"),
]


@pytest.mark.parametrize(("case", "spoil", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_track_folder_is_one_line_and_exit_3(
    stored: Stored, tmp_path: Path, case: str, spoil: Callable[[Path], None], message: str
) -> None:
    d = _copy(stored, tmp_path / RID)
    spoil(d)
    if case != "no_tracks_at_all":  # without a track it is no track folder: checked directly
        done = cli("scene", "--input-dir", str(d), "--output", str(tmp_path / "p"))
        assert done.returncode == 3, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
        assert not (tmp_path / "p" / "scene.json").exists()
    with pytest.raises(InputError, match=message):
        read_track_folder(d)


def test_post_process_scene_step_links_the_stored_stitched_tracks(stored: Stored) -> None:
    """The scene step writes only the scene and its OTIO: its tracks are the stitched files
    the stitched step stored (the same inode on a folder storage), placed as they were."""
    doc = json.loads((stored.store / ORG / "recordings" / RID / "metadata.json").read_text())
    scene_dir = stored.store / ORG / "recordings" / RID / "scene"
    scene = json.loads((scene_dir / "scene.json").read_text())
    stitched = {Path(e["key"]).name: e for e in doc["stitched_tracks"]}
    assert len(scene["tracks"]) == len(stitched) == 4
    for t in scene["tracks"]:
        linked = scene_dir / t["path"]
        entry = stitched[linked.name]
        assert linked.stat().st_ino == (stored.store / entry["key"]).stat().st_ino
        assert t["start_ms"] == entry["start_unix_ms"] - scene["start_unix_ms"]
    files = {Path(k).relative_to(f"{ORG}/recordings/{RID}/scene").as_posix()
             for k in doc["scene"]["files"]}  # fmt: skip
    assert files == {"scene.json", "scene.otio", *(t["path"] for t in scene["tracks"])}
