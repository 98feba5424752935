"""`rawcore post-process`: the post-recording pipeline, killed at each step and run again.

A clean run of the sample call (with a composed video left as a pending upload) is the
reference: every object's bytes and the metadata document. Each case stops a run at one
checkpoint (an exception raised from the checkpoint hook, or the process killed with
`os._exit`), runs again without the hook, and must end with exactly the reference's objects:
none missing, none duplicated, none half-written, and the steps finished before the stop not
run again. The multipart completion is also checked on the local S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from rawcore.errors import InputError
from rawcore.media.outputs import Selection
from rawcore.pipeline.post import STEPS, PostResult, PostTarget, post_process
from rawcore.storage.backends import FolderStorage, S3Storage, Storage

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample-call.zip"
ORG, ROOM, RID = "acme", "room-1", "rec-1"
#: The composed video as the live recorder uploads it: two parts (S3's smallest part is 5 MiB).
PARTS = (os.urandom(5 << 20), os.urandom(123_457))


class Killed(Exception):
    pass


def leave_parts(root: Path, rid: str = RID, parts: tuple[bytes, ...] = PARTS) -> None:
    folder = root / ORG / "recordings" / rid / "composed" / "parts"
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(parts, 1):
        (folder / f"{i:05d}").write_bytes(data)


def expected_etag(parts: tuple[bytes, ...]) -> str:
    """S3's multipart ETag, computed here independently of rawcore."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones too) and the MD5 of its bytes (the metadata
    document's with the root, which its URLs name, left out)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "metadata.json":
                data = data.replace(str(root).encode(), b"ROOT")
            out[p.relative_to(root).as_posix()] = hashlib.md5(data).hexdigest()
    return out


def run(storage: Storage, rid: str = RID, **kw: Any) -> PostResult:
    return post_process(SAMPLE, PostTarget(storage, ORG, ROOM, rid), **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("reference")
    leave_parts(root)
    points: list[str] = []
    result = run(FolderStorage(root), checkpoint=points.append)
    return {"snapshot": snapshot(root), "points": points, "result": result}


def test_a_clean_run_stores_and_records_every_object(reference: dict[str, Any]) -> None:
    result: PostResult = reference["result"]
    doc = result.document
    assert result.ran == STEPS and result.skipped == ()
    assert all(doc["steps"][s]["state"] == "done" for s in STEPS)
    (composed,) = doc["composed"]
    assert composed["key"] == f"{ORG}/recordings/{RID}/composed/composed.mp4"
    assert composed["bytes"] == sum(map(len, PARTS))
    assert composed["etag"] == expected_etag(PARTS)
    files = reference["snapshot"]
    assert files[composed["key"]] == hashlib.md5(b"".join(PARTS)).hexdigest()
    assert not any("/parts/" in k for k in files)  # the parts are gone once completed
    # Every track of the sample (examples/README.md), and one file per participant and medium.
    assert len(doc["raw_tracks"]) == 9 and len(doc["stitched_tracks"]) == 8
    for t in doc["raw_tracks"] + doc["stitched_tracks"]:
        assert t["key"] in files and t["bytes"] > 0 and t["duration_ms"] > 0
        assert t["kind"] in ("audio", "video")
        assert Path(t["key"]).name == t["name"]
    assert all("/stitched/" in t["key"] for t in doc["stitched_tracks"])
    assert doc["scene"]["key"] in files and doc["scene"]["otio_key"] in files
    clip = doc["clip"]
    assert clip is None or (clip["rendered"] is True and clip["key"] in files)
    assert files[f"{ORG}/recordings/{RID}/metadata.json"]
    assert not [k for k in files if Path(k).name.startswith(".")]


def test_stitched_tracks_are_the_bytes_stitched_extraction_writes(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    """A participant with one session gets its raw file copied as its stitched file (the
    plans match); every stitched file must still be what `--stitch` extraction writes, and
    a copy must be a separate object (replacing the raw one leaves it alone)."""
    from rawcore.media.audio import extract_audio
    from rawcore.media.video import extract_video
    from rawcore.recording.build import open_recording

    doc = reference["result"].document
    files = reference["snapshot"]
    with open_recording(SAMPLE) as rec:
        for t in doc["stitched_tracks"]:
            fmt = "webm" if t["container"] == "webm" else "mkv"
            out = tmp_path / f"{t['participant_id']}-{t['kind']}"
            extract = extract_audio if t["kind"] == "audio" else extract_video
            got = extract(rec, out, selection=Selection(user_id=t["participant_id"]),
                          fmt=fmt, stitch=True)  # type: ignore[operator]  # fmt: skip
            (path,) = [out / e.path for e in got.entries if e.path == t["name"]]
            assert hashlib.md5(path.read_bytes()).hexdigest() == files[t["key"]], t["name"]
    copies = [t for t in doc["stitched_tracks"] if len(t["track_ids"]) == 1]
    assert copies  # the sample has single-session participants
    root = tmp_path / "copy"
    storage = FolderStorage(root)
    (root / "a").mkdir(parents=True)
    (root / "a" / "raw").write_bytes(b"raw bytes")
    storage.copy("a/raw", "a/stitched")
    storage.put_bytes("a/raw", b"new raw bytes")
    assert storage.get_bytes("a/stitched") == b"raw bytes"


# (what the case proves, the checkpoint to stop at, which of its occurrences)
KILLS = [
    ("stopped before anything is written", "finalize:start", 1),
    ("composed video completed but not recorded: completing it again is no error",
     "finalize:stored", 1),
    ("first raw track stored but not recorded", "raw:item", 1),
    ("halfway through the raw tracks", "raw:item", 5),
    ("every raw track stored, the step not recorded", "raw:stored", 1),
    ("first stitched track stored but not recorded", "stitched:item", 1),
    ("every stitched track stored, the step not recorded", "stitched:stored", 1),
    ("the scene stored but not recorded", "scene:stored", 1),
    ("the clip stored (or found absent) but not recorded", "clip:stored", 1),
    ("after the whole run", "clip:done", 1),
]  # fmt: skip


@pytest.mark.parametrize(("case", "point", "nth"), KILLS, ids=[k[0] for k in KILLS])
def test_killed_at_a_step_then_run_again_ends_with_the_same_objects(
    case: str, point: str, nth: int, reference: dict[str, Any], tmp_path: Path
) -> None:
    leave_parts(tmp_path)
    seen: list[str] = []

    def stop(at: str) -> None:
        seen.append(at)
        if at == point and seen.count(point) == nth:
            raise Killed(case)

    with pytest.raises(Killed):
        run(FolderStorage(tmp_path), checkpoint=stop)
    # Nothing half-written: no temporary file left beside the objects.
    assert not [k for k in snapshot(tmp_path) if Path(k).name.startswith(".")]
    again: list[str] = []
    result = run(FolderStorage(tmp_path), checkpoint=again.append)
    assert snapshot(tmp_path) == reference["snapshot"]
    # The steps that finished before the stop are not run again; the others are.
    finished = {p.split(":")[0] for p in seen if p.endswith(":done")}
    assert set(result.skipped) == finished and set(result.ran) == set(STEPS) - finished
    # Items recorded before the stop are not extracted again.
    step = point.split(":")[0]
    if point.endswith(":item"):
        total = reference["points"].count(point)
        assert again.count(point) == total - (nth - 1)
    elif step in ("raw", "stitched") and step not in finished:
        assert again.count(f"{step}:item") == 0


_KILLER = """
import os, shutil, sys
from pathlib import Path
from rawcore.pipeline.post import PostTarget, post_process
from rawcore.storage.backends import FolderStorage

root, point, nth, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen = []
if mode == "mid-write":  # the process dies halfway through writing an object
    real = FolderStorage.put_file
    def put_file(self, key, src, **kw):
        seen.append("write")
        if seen.count("write") == nth:
            with self._writing(key) as out:
                out.write(Path(src).read_bytes()[:1000]); out.flush(); os._exit(137)
        return real(self, key, src, **kw)
    FolderStorage.put_file = put_file
def stop(at):
    seen.append(at)
    if mode == "checkpoint" and at == point and seen.count(point) == nth:
        os._exit(137)
post_process(sys.argv[5], PostTarget(FolderStorage(root), "acme", "room-1", "rec-1"),
             checkpoint=stop)
"""


@pytest.mark.parametrize(
    ("case", "mode", "point", "nth"),
    [("process killed after the third raw track", "checkpoint", "raw:item", 3),
     ("process killed while writing the fourth track", "mid-write", "", 4)],
    ids=["killed-at-checkpoint", "killed-mid-write"],
)  # fmt: skip
def test_a_killed_process_then_the_cli_ends_with_the_same_objects(
    case: str, mode: str, point: str, nth: int, reference: dict[str, Any], tmp_path: Path
) -> None:
    leave_parts(tmp_path)
    killed = subprocess.run([sys.executable, "-c", _KILLER, str(tmp_path), point, str(nth), mode,
                             str(SAMPLE)], capture_output=True, text=True)  # fmt: skip
    assert killed.returncode == 137, killed.stderr
    done = subprocess.run(
        [sys.executable, "-m", "rawcore", "post-process", str(SAMPLE), "--output", str(tmp_path),
         "--org", ORG, "--room", ROOM, "--recording-id", RID],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / ORG / "recordings" / RID / "metadata.json")
    got = snapshot(tmp_path)
    # A write cut short leaves only hidden temporary files (the track being written, and the
    # document if another thread was saving it): never an object under its key.
    half = [k for k in got if Path(k).name.startswith(".")]
    assert all(k.endswith(".part") for k in half)
    assert (len(half) >= 1) if mode == "mid-write" else not half
    assert {k: v for k, v in got.items() if k not in half} == reference["snapshot"]
    assert FolderStorage(tmp_path).keys(ORG) == sorted(reference["snapshot"])


def test_an_upload_left_after_finalize_is_finalized_by_the_next_run(tmp_path: Path) -> None:
    first = run(FolderStorage(tmp_path))
    assert first.document["composed"] == []  # nothing pending is not an error
    leave_parts(tmp_path)
    second = run(FolderStorage(tmp_path))
    assert second.ran == ("finalize",) and set(second.skipped) == set(STEPS) - {"finalize"}
    (composed,) = second.document["composed"]
    assert composed["etag"] == expected_etag(PARTS)
    third = run(FolderStorage(tmp_path))
    assert third.ran == () and third.document == second.document


def test_a_folder_part_with_a_wrong_name_is_refused(tmp_path: Path) -> None:
    leave_parts(tmp_path)
    (tmp_path / ORG / "recordings" / RID / "composed" / "parts" / "part-3").write_bytes(b"x")
    with pytest.raises(InputError, match="not an upload part"):
        run(FolderStorage(tmp_path))


def test_completing_a_folder_upload_twice_is_not_an_error(tmp_path: Path) -> None:
    leave_parts(tmp_path)
    storage = FolderStorage(tmp_path)
    (up,) = storage.pending_uploads(f"{ORG}/recordings/{RID}/composed/")
    first = storage.complete_upload(up)
    assert storage.pending_uploads(f"{ORG}/recordings/{RID}/composed/") == []
    assert storage.complete_upload(up) == first
    assert (first.size, first.etag) == (sum(map(len, PARTS)), expected_etag(PARTS))


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 45 s call of 2 s tone bursts every 3 s (long enough for a clip, with sentence gaps to
    cut at), post-processed once: the reference for the clip step."""
    from helpers import audio_truth as at

    root = tmp_path_factory.mktemp("talk")
    speech = [(float(s), 2.0, 440.0) for s in range(1, 44, 3)]
    at.opus_call(root / "rec", duration_s=45.0, speech=speech)
    result = post_process(root / "rec", PostTarget(FolderStorage(root / "out"), ORG, ROOM,
                                                   "talk"))  # fmt: skip
    return {"rec": root / "rec", "out": root / "out", "result": result, "speech": speech,
            "snapshot": snapshot(root / "out")}  # fmt: skip


def test_the_clip_step_renders_the_scenes_clip_with_its_sound(talk: dict[str, Any]) -> None:
    """The clip rendered is the scene's own range: decoded, it lasts that long, shows 30 fps
    video and plays the bursts of that range where the call had them."""
    import av
    from helpers import audio_truth as at

    doc = talk["result"].document
    scene = json.loads((talk["out"] / doc["scene"]["key"]).read_text())
    clip = doc["clip"]
    assert clip is not None and clip["rendered"] is True
    assert {k: clip[k] for k in ("start_ms", "end_ms", "reason")} == scene["clip"]
    assert clip["start_ms"] >= 0 and clip["end_ms"] <= doc["scene"]["duration_ms"]
    assert clip["end_ms"] - clip["start_ms"] >= 30_000
    path = talk["out"] / clip["key"]
    assert clip["key"] == f"{ORG}/recordings/talk/clip/clip.mp4"
    assert clip["bytes"] == path.stat().st_size
    span_s = (clip["end_ms"] - clip["start_ms"]) / 1000
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert abs(frames - span_s * 30) <= 1
    sound = at.decode_audio(path)
    assert abs(sound.duration_s - span_s) < 0.05
    start_s = clip["start_ms"] / 1000
    want = [b[0] - start_s for b in talk["speech"] if 0 <= b[0] - start_s < span_s - 0.5]
    got = at.tone_onsets(sound.samples, sound.rate, 440.0)
    assert len(got) == len(want)
    assert all(abs(g - w) < 0.03 for g, w in zip(got, want, strict=True))


# (what the case proves, the checkpoint to stop at)
CLIP_KILLS = [
    ("stopped before the clip is rendered: the next run renders it", "clip:start", 1),
    ("the clip stored but not recorded: recorded without rendering it again", "clip:stored", 0),
]  # fmt: skip


@pytest.mark.parametrize(("case", "point", "renders"), CLIP_KILLS,
                         ids=[k[0] for k in CLIP_KILLS])  # fmt: skip
def test_killed_in_the_clip_step_then_run_again_ends_with_the_same_clip(
    case: str, point: str, renders: int, talk: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import rawcore.pipeline.post as post

    def stop(at: str) -> None:
        if at == point:
            raise Killed(case)

    target = PostTarget(FolderStorage(tmp_path), ORG, ROOM, "talk")
    with pytest.raises(Killed):
        post_process(talk["rec"], target, checkpoint=stop)
    rendered: list[Path] = []
    real = post.compose

    def counting(scene: Path, out: Path, **kw: Any) -> Any:
        rendered.append(out)
        return real(scene, out, **kw)

    monkeypatch.setattr(post, "compose", counting)
    result = post_process(talk["rec"], target)
    assert result.ran == ("clip",) and len(rendered) == renders
    assert snapshot(tmp_path) == talk["snapshot"]


def test_no_clip_leaves_the_step_pending_for_a_later_run(
    talk: dict[str, Any], tmp_path: Path
) -> None:
    target = PostTarget(FolderStorage(tmp_path), ORG, ROOM, "talk")
    first = post_process(talk["rec"], target, clip=False)
    assert "clip" not in first.ran and "clip" not in first.skipped
    assert first.document["clip"] is None
    assert not (tmp_path / ORG / "recordings" / "talk" / "clip").exists()
    second = post_process(talk["rec"], target)
    assert second.ran == ("clip",)
    assert snapshot(tmp_path) == talk["snapshot"]


# --- the command line --------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rawcore", "post-process", *args],
                          capture_output=True, text=True)  # fmt: skip


CLI_ERRORS = [
    ("a recording that does not exist", ["/nonexistent/call.zip", "--output", "{tmp}"], 3,
     "no such"),
    ("a recording id that would leave the organization", [str(SAMPLE), "--output", "{tmp}",
     "--recording-id", ".."], 3, "recording id"),
    ("an org id with a slash", [str(SAMPLE), "--output", "{tmp}", "--org", "a/b"], 3, "org"),
    ("no storage", [str(SAMPLE)], 2, "--output"),
    ("an event log that does not exist", [str(SAMPLE), "--output", "{tmp}", "--events",
     "/nonexistent.jsonl"], 3, "event log"),
    ("an event log that is not JSON lines", [str(SAMPLE), "--output", "{tmp}/store",
     "--events", "{tmp}/events.jsonl"], 3, "events.jsonl"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "argv", "code", "says"), CLI_ERRORS,
                         ids=[c[0] for c in CLI_ERRORS])  # fmt: skip
def test_cli_errors_are_one_line_and_an_exit_code(
    case: str, argv: list[str], code: int, says: str, tmp_path: Path
) -> None:
    (tmp_path / "events.jsonl").write_text('{"unix_ms": 1, "type": "layout"\nnot json\n')
    got = cli(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert got.returncode == code, got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in got.stderr
    assert not any(p.is_file() for p in tmp_path.rglob("*") if p.name != "events.jsonl")


def test_cli_runs_then_finds_every_step_done(tmp_path: Path) -> None:
    first = cli(str(SAMPLE), "--output", str(tmp_path), "--org", ORG, "--room", ROOM)
    assert first.returncode == 0, first.stderr
    meta = tmp_path / ORG / "recordings" / "sample-call" / "metadata.json"  # id from the name
    assert first.stdout.strip() == str(meta)
    assert [f"rawcore: {s}: done" for s in STEPS] == [
        line for line in first.stderr.splitlines() if line.endswith(": done")
    ]
    before = snapshot(tmp_path)
    second = cli(str(SAMPLE), "--output", str(tmp_path), "--org", ORG, "--room", ROOM)
    assert second.returncode == 0, second.stderr
    assert [f"rawcore: {s}: already done" for s in STEPS] == second.stderr.splitlines()
    assert snapshot(tmp_path) == before
    assert json.loads(meta.read_text())["room"] == ROOM


def test_cli_room_defaults_to_the_call_and_another_room_is_refused(tmp_path: Path) -> None:
    first = cli(str(SAMPLE), "--output", str(tmp_path))
    assert first.returncode == 0, first.stderr
    meta = json.loads(Path(first.stdout.strip()).read_text())
    assert meta["room"] == "default-call-123"  # {call_type}-{call_id}
    assert (tmp_path / "local" / "raw" / "default-call-123" / "sample-call").is_dir()
    assert cli(str(SAMPLE), "--output", str(tmp_path)).returncode == 0  # the recorded room
    other = cli(str(SAMPLE), "--output", str(tmp_path), "--room", "elsewhere")
    assert other.returncode == 3 and "processed in room 'default-call-123'" in other.stderr


# --- S3: a real multipart upload on the local server ---------------------------------------------


@pytest.mark.s3
def test_s3_multipart_upload_is_completed_verified_and_recorded(
    s3_server: Any, s3_bucket: str
) -> None:
    client = s3_server.client()
    prefix = f"post-{uuid.uuid4().hex[:8]}"
    storage = S3Storage(s3_bucket, prefix, endpoint_url=s3_server.endpoint)
    key = f"{ORG}/recordings/{RID}/composed/call.mp4"
    # The live recorder: a multipart upload of the composed video, left pending.
    up = client.create_multipart_upload(Bucket=s3_bucket, Key=f"{prefix}/{key}")
    for i, data in enumerate(PARTS, 1):
        client.upload_part(Bucket=s3_bucket, Key=f"{prefix}/{key}", UploadId=up["UploadId"],
                           PartNumber=i, Body=data)  # fmt: skip
    (pending,) = storage.pending_uploads(f"{ORG}/recordings/{RID}/composed/")

    def stop(at: str) -> None:
        if at == "finalize:stored":
            raise Killed("completed, not recorded")

    with pytest.raises(Killed):
        run(storage, checkpoint=stop)
    assert storage.pending_uploads(f"{ORG}/recordings/{RID}/composed/") == []
    result = run(storage)  # completes the same upload again: not an error
    assert result.ran == STEPS
    (composed,) = result.document["composed"]
    assert composed == {"key": key, "url": f"s3://{s3_bucket}/{prefix}/{key}",
                        "bytes": sum(map(len, PARTS)), "etag": expected_etag(PARTS),
                        "parts": 2}  # fmt: skip
    body = client.get_object(Bucket=s3_bucket, Key=f"{prefix}/{key}")["Body"].read()
    assert body == b"".join(PARTS)
    again = storage.complete_upload(pending)  # and once more, directly
    assert (again.size, again.etag) == (len(body), expected_etag(PARTS))
    # The document and the tracks are in the bucket, under the organization.
    doc = json.loads(client.get_object(Bucket=s3_bucket,
                                       Key=f"{prefix}/{ORG}/recordings/{RID}/metadata.json")
                     ["Body"].read())  # fmt: skip
    assert doc == result.document
    listed = storage.keys(ORG)
    for t in doc["raw_tracks"] + doc["stitched_tracks"]:
        assert t["key"] in listed and storage.size(t["key"]) == t["bytes"]
    assert all(k.startswith(f"{ORG}/") for k in listed)
    assert run(storage).ran == ()
    # The command line on the same bucket finds every step done and says where the document is.
    where = f"s3://{s3_bucket}/{prefix}"
    again = cli(str(SAMPLE), "--storage", where, "--s3-endpoint", s3_server.endpoint,
                "--org", ORG, "--room", ROOM, "--recording-id", RID)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"{where}/{ORG}/recordings/{RID}/metadata.json"
    assert [f"rawcore: {s}: already done" for s in STEPS] == again.stderr.splitlines()
