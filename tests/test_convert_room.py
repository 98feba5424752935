"""`rawcore convert --room`: a track of a recording is converted for its room (given, else
`{call_type}-{call_id}`), which the manifest entry and the job record carry; the room is checked
like every id, and it is not part of the conversion's cache key (`{org}/conversions/{key}.mp4`:
the same bytes whatever the room), on a local folder and on S3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.audio_truth import av_available
from helpers.gst import GstUnavailable, gst_available
from helpers.recording import OpusSource, SessionSpec, TrackSpec, VideoSource, build_recording
from rawcore.errors import InputError
from rawcore.jobs import submit_conversion
from rawcore.storage import open_storage

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

#: `build_recording`'s call: call_type "default", call_id "call-123".
DEFAULT_ROOM = "default-call-123"


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("room") / "rec"
    audio = TrackSpec("audio", "opus", track_id="mic", source=OpusSource(2.0))
    video = TrackSpec("video", "vp9", track_id="cam", source=VideoSource(2.0, fps=30))
    try:
        build_recording(root, [SessionSpec("alice", "s1", [audio, video])])
    except GstUnavailable as exc:
        pytest.skip(str(exc))
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rawcore", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("case", "room", "expected"),
    [
        ("no --room: the recording's {call_type}-{call_id}", None, DEFAULT_ROOM),
        ("--room given: that room", "studio-7", "studio-7"),
    ],
)
def test_the_manifest_entry_names_the_room(
    tmp_path: Path, rec: Path, case: str, room: str | None, expected: str
) -> None:
    extra = [] if room is None else ["--room", room]
    out = tmp_path / "out" / "cam.mp4"
    done = run_cli("convert", str(rec), "--track-id", "cam", "--mode", "remux", "-o", str(out),
                   "-q", *extra)  # fmt: skip
    assert done.returncode == 0, (case, done.stderr)
    doc = json.loads((out.parent / "manifest.json").read_text())
    (entry,) = doc["outputs"]
    assert entry["room"] == expected, case
    assert entry["path"] == "cam.mp4" and entry["mode"] == "remux"


@pytest.mark.parametrize(
    ("case", "args", "code", "says"),
    [
        ("a room with a slash", ["--track-id", "cam", "--room", "a/b"], 3, "room 'a/b'"),
        ("a room that climbs", ["--track-id", "cam", "--room", "../evil"], 3, "room '../evil'"),
        ("a room too long", ["--track-id", "cam", "--room", "r" * 200], 3, "longer than 128"),
        ("a room with a control character", ["--track-id", "cam", "--room", "a\x01"], 3, "room"),
        ("a room without a track", ["--room", "studio"], 2, "--track-id"),
    ],
)
@pytest.mark.parametrize("where", ["output", "storage"])
def test_a_bad_room_is_one_line_and_nothing_is_written(
    tmp_path: Path, rec: Path, case: str, args: list[str], code: int, says: str, where: str
) -> None:
    db = str(tmp_path / "jobs.sqlite")
    target = (["-o", str(tmp_path / "out" / "a.mp4")] if where == "output" else
              ["--storage", str(tmp_path / "store"), "--db", db])  # fmt: skip
    done = run_cli("convert", str(rec), "--mode", "remux", *target, *args)
    assert done.returncode == code, (case, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rawcore: error:") and says in lines[0], case
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()
    assert not (tmp_path / "jobs.sqlite").exists()  # refused before a job was made


def _room_is_recorded_not_keyed(rec: Path, storage: str, db: Path, endpoint: str | None) -> None:
    kw = {"storage": storage, "org": "acme", "db": db, "mode": "remux", "track_id": "cam",
          "s3_endpoint": endpoint}  # fmt: skip
    first = submit_conversion(rec, **kw).wait(120)  # type: ignore[arg-type]
    assert first.state == "done" and not first.cached, first.error
    assert first.room == DEFAULT_ROOM  # named by the worker once it opened the recording
    # The same room, said out loud: the same job, a cache hit.
    same = submit_conversion(rec, room=DEFAULT_ROOM, **kw).wait(30)  # type: ignore[arg-type]
    assert same.cached and same.key == first.key and same.room == DEFAULT_ROOM
    # Another job store over the same storage: the worker finds the MP4 and still names the room.
    other = submit_conversion(rec, **{**kw, "db": db.with_name("other.sqlite")}).wait(60)  # type: ignore[arg-type]
    assert other.cached and other.key == first.key and other.room == DEFAULT_ROOM
    # A recording lives in one room: another room for the same source is refused.
    with pytest.raises(InputError, match="in room 'default-call-123', not 'elsewhere'"):
        submit_conversion(rec, room="elsewhere", **kw)  # type: ignore[arg-type]
    store = open_storage(storage, s3_endpoint=endpoint)
    assert store.keys("acme/") == [f"acme/conversions/{first.key}.mp4"]


def test_the_job_records_the_room_outside_the_cache_key_on_a_folder(
    tmp_path: Path, rec: Path
) -> None:
    _room_is_recorded_not_keyed(rec, str(tmp_path / "store"), tmp_path / "jobs.sqlite", None)


@pytest.mark.s3
def test_the_job_records_the_room_outside_the_cache_key_on_s3(
    tmp_path: Path, rec: Path, s3_server: object, s3_bucket: str
) -> None:
    endpoint = s3_server.endpoint  # type: ignore[attr-defined]
    storage = f"s3://{s3_bucket}/rooms"
    _room_is_recorded_not_keyed(rec, storage, tmp_path / "jobs.sqlite", endpoint)


@pytest.mark.parametrize("bad", ["a/b", "..", "x" * 200, "tab\there"])
def test_submit_refuses_a_hostile_room_before_any_job(tmp_path: Path, rec: Path, bad: str) -> None:
    with pytest.raises(InputError, match="room"):
        submit_conversion(rec, storage=tmp_path / "store", track_id="cam", room=bad,
                          db=tmp_path / "jobs.sqlite")  # fmt: skip
    assert not (tmp_path / "jobs.sqlite").exists() and not (tmp_path / "store").exists()
