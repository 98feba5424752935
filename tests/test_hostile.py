"""Hostile input: every malformed recording ends in bounded time with a documented outcome.

Each case builds a small, valid Opus recording, breaks it in one way, and runs the real CLI
(`python -m rawcore`) in a subprocess with a 60 s timeout, so a hang fails the test. A case
states the exact exit code (README: 2 usage, 3 input, 4 remote, 5 output, 6 partial) and what
stderr must say. Every run is also held to the promise every input shares:

- stderr holds no traceback; an error exit prints exactly one `rawcore: error:` line (after
  any warnings), and every other line is a `rawcore: warning:`;
- nothing is written outside --output (and the private cache), no `*.part` file is left;
- every media file written decodes with PyAV.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.audio_truth import av_available
from helpers.gst import gst_available, opus_packets
from helpers.recording import (
    DEFAULT_CALL_START,
    RecordingInfo,
    SessionSpec,
    TrackSpec,
    build_recording,
)
from helpers.rtpdump import CapturedPacket, rewrite_rtp, write_rtpdump

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

TIMEOUT_S = 60
OPUS_RATE = 48_000
FRAME = 960  # 20 ms at 48 kHz
CAPTURE = "user_1/session_1/audio_1.rtpdump"
SDP = "user_1/session_1/audio_1.sdp"
METADATA = "user_1/session_1/timing_metadata.json"
CALL_START_MS = round(DEFAULT_CALL_START.timestamp() * 1000)
MEDIA_SUFFIXES = (".mkv", ".mka", ".webm", ".ogg")


# --- running the CLI and checking the shared promise -------------------------------------------


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.lines if line.startswith("rawcore: warning:")]

    @property
    def media(self) -> list[Path]:
        if not self.out.is_dir():
            return []
        return sorted(p for p in self.out.iterdir() if p.suffix in MEDIA_SUFFIXES)


def _snapshot(root: Path, skip: tuple[Path, ...]) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in filenames + dirnames:
            found.add((here / name).relative_to(root).as_posix())
    return found


def rawcore(sandbox: Path, *args: str | Path, out: Path | None = None) -> Run:
    """Run the CLI with its cache inside `sandbox`; check what every run must respect."""
    out = out if out is not None else sandbox / "out"
    cache = sandbox / "cache"
    before = _snapshot(sandbox, (cache, out))
    env = {**os.environ, "RAWCORE_CACHE_DIR": str(cache)}
    env.pop("RAWCORE_DEBUG", None)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rawcore", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr, out, time.monotonic() - started)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.code != 1, f"internal error: {run.stderr}"
    errors = [line for line in run.lines if line.startswith("rawcore: error:")]
    if run.code in (2, 3, 4, 5):
        assert len(errors) == 1 and run.lines[-1] == errors[0], run.stderr
    else:
        assert errors == [], run.stderr
    others = [
        line for line in run.lines if not line.startswith(("rawcore: warning:", "rawcore: error:"))
    ]
    assert others == [], f"stray stderr lines: {others!r}"
    # Nothing outside --output (or the cache) appeared, and no temp file survived anywhere;
    # only the folders leading to --output may have been created.
    parents = {p.relative_to(sandbox).as_posix() for p in out.parents if p.is_relative_to(sandbox)}
    assert _snapshot(sandbox, (cache, out)) - parents == before - parents
    leftovers = [p for p in sandbox.rglob("*.part")]
    assert leftovers == [], leftovers
    for path in run.media:
        samples, errors_seen = decoded_samples(path)
        assert errors_seen == 0, f"{path.name}: {errors_seen} packets failed to decode"
        assert samples > 0, f"{path.name} decodes to nothing"
    return run


def decoded_samples(path: Path) -> tuple[int, int]:
    """Samples per channel a player gets from `path`, and how many packets failed to decode.
    Counted frame by frame, so hours of audio need no memory."""
    import av

    samples = errors = 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                continue
            samples += sum(f.samples for f in frames)
    return samples, errors


def manifest(run: Run) -> dict[str, object]:
    doc = json.loads((run.out / "manifest.json").read_text())
    assert isinstance(doc, dict)
    return doc


# --- building recordings ------------------------------------------------------------------------


def opus(duration_s: float = 2.0, **kwargs: object) -> list[bytes]:
    return list(opus_packets(duration_s, **kwargs))  # type: ignore[arg-type]


def recording(root: Path, packets: list[bytes] | None = None, **spec: object) -> RecordingInfo:
    """One participant, one session, one Opus track (2 s of tone unless `packets` says)."""
    track = TrackSpec(
        kind="audio",
        codec="opus",
        packets=packets if packets is not None else opus(),
        sender_reports=None,
        **spec,  # type: ignore[arg-type]
    )
    return build_recording(root, [SessionSpec("user_1", "session_1", [track])])


def timed_capture(root: Path, packets: list[tuple[int, bytes]]) -> None:
    """Replace the capture with `(arrival_ms, rtp bytes)` records, kept in the given order."""
    write_rtpdump(
        root / CAPTURE,
        [CapturedPacket(at, data) for at, data in packets],
        start_unix=CALL_START_MS / 1000,
    )


def valid_records(blob: bytes) -> list[int]:
    """Byte offsets of the records of an rtpdump file."""
    pos = blob.index(b"\n") + 1 + 16
    offsets = []
    while pos + 8 <= len(blob):
        offsets.append(pos)
        (length,) = struct.unpack_from(">H", blob, pos)
        pos += length
    return offsets


def edit(root: Path, member: str, change: Callable[[bytes], bytes]) -> None:
    path = root / member
    path.write_bytes(change(path.read_bytes()))


def edit_metadata(root: Path, change: Callable[[dict[str, object]], None]) -> None:
    path = root / METADATA
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def expected_outputs(run: Run) -> None:
    """The printed paths are exactly the media files written, all inside --output."""
    printed = sorted(line for line in run.stdout.splitlines() if line)
    assert printed == sorted(p.name for p in run.media)
    for path in run.media:
        assert path.resolve().parent == run.out.resolve()


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    return opus()


# --- captures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureCase:
    """A broken capture and what each command must do with it."""

    name: str
    breaks: Callable[[Path], None]
    list_code: int
    extract_code: int
    #: A substring of the error line, or of some warning when the command succeeds.
    says: str
    list_warns: bool = True
    outputs: int = 0
    extras: dict[str, object] = field(default_factory=dict)


def _truncate_mid_record(root: Path) -> None:
    blob = (root / CAPTURE).read_bytes()
    offsets = valid_records(blob)
    cut = offsets[len(offsets) // 2] + 5  # inside the middle record's header
    (root / CAPTURE).write_bytes(blob[:cut])


def _set_record_length(value: int) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        def patch(blob: bytes) -> bytes:
            where = valid_records(blob)[10]
            return blob[:where] + struct.pack(">H", value) + blob[where + 2 :]

        edit(root, CAPTURE, patch)

    return change


def _garbage_first_line(root: Path) -> None:
    edit(root, CAPTURE, lambda b: b"GARBAGE not an rtpdump\n" + b[b.index(b"\n") + 1 :])


def _binary_garbage_file(root: Path) -> None:
    (root / CAPTURE).write_bytes(random.Random(7).randbytes(4096))


def _empty_capture(root: Path) -> None:
    (root / CAPTURE).write_bytes(b"")


def _header_only(root: Path) -> None:
    edit(root, CAPTURE, lambda b: b[: b.index(b"\n") + 1 + 16])


def _non_rtp_records(root: Path) -> None:
    # 30 records that are not RTP (wrong version, runt packets) among the real ones.
    rng = random.Random(3)
    blob = (root / CAPTURE).read_bytes()
    offsets = [*valid_records(blob), len(blob)]
    records = [blob[a:b] for a, b in itertools.pairwise(offsets)]
    head = blob[: offsets[0]]
    for i in range(30):
        body = bytes([rng.choice((0x00, 0x40, 0xC0))]) + rng.randbytes(rng.randint(0, 40))
        if i % 3 == 0:
            body = body[:5]  # shorter than an RTP header
        at = struct.unpack_from(">I", records[3 * i + 1], 4)[0]
        rec = struct.pack(">HHI", 8 + len(body), len(body), at) + body
        records.insert(3 * i + 2, rec)
    (root / CAPTURE).write_bytes(head + b"".join(records))


CAPTURE_CASES = [
    CaptureCase(
        "truncated mid-record: the packets before the cut are extracted",
        _truncate_mid_record,
        0,
        0,
        "truncated",
        outputs=1,
    ),
    CaptureCase(
        "garbage first line: the only capture cannot be read",
        _garbage_first_line,
        3,
        3,
        "none of the captures could be read",
    ),
    CaptureCase(
        "random bytes instead of a capture",
        _binary_garbage_file,
        3,
        3,
        "none of the captures could be read",
    ),
    CaptureCase(
        "zero-byte capture",
        _empty_capture,
        3,
        3,
        "none of the captures could be read",
    ),
    CaptureCase(
        "header but no records: listed, nothing to extract",
        _header_only,
        0,
        3,
        "no RTP media packets",
    ),
    CaptureCase(
        "record length below 8: the rest of the capture is unreadable",
        _set_record_length(3),
        0,
        0,
        "byte",
        outputs=1,
    ),
    CaptureCase(
        "record length past the end of the file",
        _set_record_length(0xFFFF),
        0,
        0,
        "byte",
        outputs=1,
    ),
    CaptureCase(
        "non-RTP records inside a valid capture are skipped",
        _non_rtp_records,
        0,
        0,
        "byte",
        outputs=1,
    ),
]


@pytest.mark.parametrize("case", CAPTURE_CASES, ids=lambda c: c.name)
def test_broken_capture(case: CaptureCase, tmp_path: Path, packets: list[bytes]) -> None:
    info = recording(tmp_path / "rec", packets)
    case.breaks(info.root)
    listed = rawcore(tmp_path, "list-tracks", "--input-dir", info.root, "--format", "json")
    assert listed.code == case.list_code, listed.stderr
    if listed.code == 0:
        assert any(case.says in w for w in listed.warnings) or not case.list_warns, listed.stderr
        json.loads(listed.stdout)
    else:
        assert case.says in listed.lines[-1]
    extracted = rawcore(
        tmp_path, "extract-audio", "--input-dir", info.root, "--output", tmp_path / "out"
    )
    assert extracted.code == case.extract_code, extracted.stderr
    assert len(extracted.media) == case.outputs
    if extracted.code == 0:
        expected_outputs(extracted)
        entry = manifest(extracted)["outputs"][0]  # type: ignore[index]
        assert entry["packets"] > 0
    else:
        assert not (tmp_path / "out" / "manifest.json").exists()


# --- SDP and metadata -------------------------------------------------------------------------


def _remove_sdp(root: Path) -> None:
    (root / SDP).unlink()


def _sdp_says_video(root: Path) -> None:
    (root / SDP).write_text(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=video 5006 RTP/AVPF 111\r\na=rtpmap:111 VP8/90000\r\n"
    )


def _sdp_wrong_pt(root: Path) -> None:
    text = (root / SDP).read_text().replace("111", "96")
    (root / SDP).write_text(text)


def _sdp_garbage(root: Path) -> None:
    (root / SDP).write_bytes(b"\xff\xfe\x00garbage\nm=\n" * 50)


def _metadata_missing_file(root: Path) -> None:
    def change(doc: dict[str, object]) -> None:
        doc["segments"]["audio"][0]["base_filename"] = "no_such_capture"  # type: ignore[index]

    edit_metadata(root, change)


def _metadata_extra_missing_file(root: Path) -> None:
    def change(doc: dict[str, object]) -> None:
        segs = doc["segments"]["audio"]  # type: ignore[index]
        segs.append({**segs[0], "base_filename": "ghost", "track_id": "ghost"})

    edit_metadata(root, change)


def _metadata_not_json(root: Path) -> None:
    (root / METADATA).write_bytes(b"{\x00not json")


def _metadata_wrong_shapes(root: Path) -> None:
    edit_metadata(root, lambda doc: doc.update(segments={"audio": "x"}, participant_id=[1]))


@dataclass(frozen=True)
class InputCase:
    name: str
    breaks: Callable[[Path], None]
    list_code: int
    extract_code: int
    #: Substring of some warning (exit 0) or of the error line.
    says: str
    outputs: int = 1


INPUT_CASES = [
    InputCase("missing SDP: codec from the metadata", _remove_sdp, 0, 0, "no SDP"),
    InputCase(
        "SDP says video for an Opus capture: the metadata's track type wins",
        _sdp_says_video,
        0,
        0,
        "the SDP says vp8, but the metadata says this is audio",
    ),
    InputCase(
        "SDP says PT 96 but packets are 111: codec from the metadata",
        _sdp_wrong_pt,
        0,
        0,
        "payload type 111 is not in the SDP",
    ),
    InputCase("SDP of binary garbage", _sdp_garbage, 0, 0, "bad SDP media line"),
    InputCase(
        "metadata names a capture that does not exist: inferred from the tree",
        _metadata_missing_file,
        0,
        0,
        "has no capture",
    ),
    InputCase(
        "metadata names an extra capture that does not exist",
        _metadata_extra_missing_file,
        0,
        0,
        "has no capture",
    ),
    InputCase("metadata is not JSON", _metadata_not_json, 0, 0, "not valid JSON"),
    InputCase("metadata fields of the wrong type", _metadata_wrong_shapes, 0, 0, "expected a"),
]


@pytest.mark.parametrize("case", INPUT_CASES, ids=lambda c: c.name)
def test_broken_sdp_or_metadata(case: InputCase, tmp_path: Path, packets: list[bytes]) -> None:
    info = recording(tmp_path / "rec", packets)
    case.breaks(info.root)
    listed = rawcore(tmp_path, "list-tracks", "--input-dir", info.root, "--format", "json")
    assert listed.code == case.list_code, listed.stderr
    assert any(case.says in w for w in listed.warnings), listed.stderr
    track = json.loads(listed.stdout)["tracks"][0]
    assert (track["kind"], track["codec"], track["packets"]) == ("audio", "opus", len(packets))
    extracted = rawcore(tmp_path, "extract-audio", "--input-dir", info.root, "-o", tmp_path / "out")
    assert extracted.code == case.extract_code, extracted.stderr
    assert len(extracted.media) == case.outputs, extracted.stderr
    expected_outputs(extracted)
    for path in extracted.media:
        samples, _ = decoded_samples(path)
        assert abs(samples - 2.0 * OPUS_RATE) <= FRAME, samples


HOSTILE_IDS = [
    ("parent escapes", "../../evil", "session_1"),
    ("absolute session", "user_1", "/abs"),
    ("absolute and dots", "/etc/passwd", "../.."),
    ("10 KB ids", "u" * 10_240, "s" * 10_240),
    ("newline and NUL", "user\n1\x00x", "sess\r\nion\x00"),
    ("only dots", "..", "."),
    ("backslashes", "..\\..\\evil", "C:\\x"),
]


@pytest.mark.parametrize(
    ("participant", "session"), [c[1:] for c in HOSTILE_IDS], ids=[c[0] for c in HOSTILE_IDS]
)
def test_hostile_ids_stay_inside_the_output(
    participant: str, session: str, tmp_path: Path, packets: list[bytes]
) -> None:
    info = recording(tmp_path / "rec", packets)

    def change(doc: dict[str, object]) -> None:
        doc.update(
            participant_id=participant,
            user_session_id=session,
            call_id=participant,
            call_type=session,
        )
        doc["segments"]["audio"][0]["track_id"] = participant + session  # type: ignore[index]

    edit_metadata(info.root, change)
    listed = rawcore(tmp_path, "list-tracks", "--input-dir", info.root, "--format", "json")
    assert listed.code == 0, listed.stderr
    track = json.loads(listed.stdout)["tracks"][0]
    assert (track["participant_id"], track["session_id"]) == (participant, session)
    out = tmp_path / "deep" / "out"
    extracted = rawcore(tmp_path, "extract-audio", "--input-dir", info.root, "-o", out, out=out)
    assert extracted.code == 0, extracted.stderr
    assert extracted.warnings == []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [extracted.media[0].name, "manifest.json"]
    )
    name = extracted.media[0].name
    assert len(name.encode()) <= 255 and "/" not in name and "\x00" not in name
    assert not name.startswith(".")
    entry = manifest(extracted)["outputs"][0]  # type: ignore[index]
    assert (entry["user_id"], entry["session_id"]) == (participant, session)
    if "\x00" in participant:
        return  # no command line can carry a NUL
    # The same ids through a selection filter.
    again = rawcore(
        tmp_path,
        "extract-audio",
        "--input-dir",
        info.root,
        "-o",
        out,
        "--user-id",
        participant,
        out=out,
    )
    assert again.code == 0, again.stderr


def test_call_with_no_captures_at_all(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    for cmd in (["list-tracks"], ["extract-audio", "-o", tmp_path / "out"]):
        run = rawcore(tmp_path, *cmd, "--input-dir", tmp_path / "rec")
        assert run.code == 3
        assert "no .rtpdump captures" in run.lines[-1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- archives -------------------------------------------------------------------------------


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _symlink_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data)
        link = zipfile.ZipInfo("user_1/session_1/escape.rtpdump")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "../../../../etc/passwd")
    return path


@dataclass(frozen=True)
class ArchiveCase:
    name: str
    make: Callable[[Path, list[tuple[str, bytes]]], Path]
    says: str


ARCHIVE_CASES = [
    ArchiveCase("empty zip", lambda p, m: _zip(p / "a.zip", []), "no .rtpdump captures"),
    ArchiveCase("empty tar.gz", lambda p, m: _tar(p / "a.tar.gz", []), "no .rtpdump captures"),
    ArchiveCase("zero-byte file", lambda p, m: _write(p / "a.zip", b""), "not a ZIP"),
    ArchiveCase(
        "zip member with '..'",
        lambda p, m: _zip(p / "a.zip", [*m, ("../evil.rtpdump", b"x")]),
        "escapes",
    ),
    ArchiveCase(
        "zip member with an absolute path",
        lambda p, m: _zip(p / "a.zip", [*m, ("/tmp/evil.rtpdump", b"x")]),
        "absolute",
    ),
    ArchiveCase(
        "tar member with '..'",
        lambda p, m: _tar(p / "a.tar.gz", [*m, ("a/../../evil", b"x")]),
        "escapes",
    ),
    ArchiveCase(
        "tar member with an absolute path",
        lambda p, m: _tar(p / "a.tar.gz", [*m, ("/etc/evil", b"x")]),
        "absolute",
    ),
    ArchiveCase(
        "tar symlink pointing outside",
        lambda p, m: _tar(
            p / "a.tar.gz", [*m, _link("user_1/x.rtpdump", "/etc/passwd", tarfile.SYMTYPE)]
        ),
        "symlink",
    ),
    ArchiveCase(
        "tar hard link pointing outside",
        lambda p, m: _tar(
            p / "a.tar.gz", [*m, _link("user_1/x.rtpdump", "../../etc/passwd", tarfile.LNKTYPE)]
        ),
        "hard link",
    ),
    ArchiveCase("zip symlink", lambda p, m: _symlink_zip(p / "a.zip", m), "symlink"),
    ArchiveCase(
        "duplicate zip members",
        lambda p, m: _zip(p / "a.zip", [*m, m[0]]),
        "duplicate",
    ),
    ArchiveCase(
        "duplicate tar members",
        lambda p, m: _tar(p / "a.tar.gz", [*m, m[0]]),
        "duplicate",
    ),
    ArchiveCase(
        "truncated zip",
        lambda p, m: _write(p / "a.zip", _zip(p / "z.zip", m).read_bytes()[:-200]),
        "ZIP",
    ),
    ArchiveCase(
        "truncated tar.gz",
        lambda p, m: _write(p / "a.tar.gz", _tar(p / "t.tar.gz", m).read_bytes()[:-100]),
        "truncated",
    ),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", ARCHIVE_CASES, ids=lambda c: c.name)
def test_hostile_archive_is_refused(
    case: ArchiveCase, tmp_path: Path, packets: list[bytes]
) -> None:
    info = recording(tmp_path / "rec", packets)
    members = [
        (p.relative_to(info.root).as_posix(), p.read_bytes())
        for p in sorted(info.root.rglob("*"))
        if p.is_file()
    ]
    (tmp_path / "in").mkdir()
    archive = case.make(tmp_path / "in", members)
    for cmd in (["list-tracks"], ["extract-audio", "-o", tmp_path / "out"]):
        run = rawcore(tmp_path, *cmd, "--input-file", archive)
        assert run.code == 3, run.stderr
        assert case.says in run.lines[-1], run.stderr
        assert run.media == []


def test_directory_symlinks_pointing_outside_are_refused(
    tmp_path: Path, packets: list[bytes]
) -> None:
    info = recording(tmp_path / "rec", packets)
    secret = tmp_path / "secret.rtpdump"
    secret.write_bytes((info.root / CAPTURE).read_bytes())
    (info.root / "user_1" / "session_1" / "audio_2.rtpdump").symlink_to(secret)
    run = rawcore(tmp_path, "list-tracks", "--input-dir", info.root)
    assert run.code == 3
    assert "points outside" in run.lines[-1]


def test_a_zip_bomb_stops_at_the_limit(tmp_path: Path, packets: list[bytes]) -> None:
    # The CLI's defaults need a 16 GiB member to trip; the API takes small limits.
    import rawcore
    from rawcore.errors import ArchiveLimitError
    from rawcore.source.archive import Limits

    info = recording(tmp_path / "rec", packets)
    members = [
        (p.relative_to(info.root).as_posix(), p.read_bytes())
        for p in sorted(info.root.rglob("*"))
        if p.is_file()
    ]
    members.append(("user_1/session_1/padding.bin", bytes(8 << 20)))
    bomb = _zip(tmp_path / "bomb.zip", members)
    small = Limits(max_member_size=4 << 20, max_ratio=100.0)
    with pytest.raises(ArchiveLimitError, match="limit"):
        rawcore.open_recording(bomb, limits=small, cache_dir=tmp_path / "cache")
    ratio_only = Limits(max_ratio=50.0)
    with pytest.raises(ArchiveLimitError, match="ratio"):
        rawcore.open_recording(bomb, limits=ratio_only, cache_dir=tmp_path / "cache")
    gz = _tar(tmp_path / "bomb.tar.gz", members)
    with pytest.raises(ArchiveLimitError):
        rawcore.open_recording(gz, limits=Limits(max_ratio=50.0), cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").rglob("*.tar")) == []
    assert list((tmp_path / "cache").rglob("*.part")) == []
    # The default 1000x ratio catches it too; with roomy limits the same archive opens.
    with pytest.raises(ArchiveLimitError, match="1000x"):
        rawcore.open_recording(bomb, cache_dir=tmp_path / "cache")
    roomy = Limits(max_ratio=100_000.0)
    with rawcore.open_recording(bomb, limits=roomy, cache_dir=tmp_path / "cache") as rec:
        assert len(rec.tracks) == 1


# --- timing ---------------------------------------------------------------------------------


def _restamp(packets: list[bytes], start_seq: int, start_ts: int) -> list[bytes]:
    return [
        rewrite_rtp(p, seq=start_seq + i, ts=start_ts + i * FRAME) for i, p in enumerate(packets)
    ]


def test_three_hour_dtx_gap_is_filled_cheaply(tmp_path: Path, packets: list[bytes]) -> None:
    # 1 s of talk, three hours of DTX silence (sequence numbers contiguous), 1 s of talk.
    gap_ms = 3 * 3_600_000
    head = _restamp(packets[:50], 100, 5_000)
    tail = _restamp(packets[50:100], 150, 5_000 + 50 * FRAME + gap_ms * 48)
    info = recording(tmp_path / "rec", packets)
    timed_capture(
        info.root,
        [(20 * i, p) for i, p in enumerate(head)]
        + [(1_000 + gap_ms + 20 * i, p) for i, p in enumerate(tail)],
    )
    out = tmp_path / "out"
    run = rawcore(
        tmp_path, "extract-audio", "--input-dir", info.root, "-o", out, "--max-fill", "4h"
    )
    assert run.code == 0, run.stderr
    [media] = run.media
    assert media.stat().st_size < 1_000_000
    samples, _ = decoded_samples(media)
    assert abs(samples - (gap_ms + 2_000) * 48) <= FRAME
    entry = manifest(run)["outputs"][0]  # type: ignore[index]
    assert entry["dtx_filled_ms"] == pytest.approx(gap_ms, abs=20)
    assert entry["packets"] == 100


@pytest.mark.parametrize(
    ("gap_ms", "max_fill", "parts"),
    [
        (3 * 3_600_000 + 60_000, None, 2),  # longer than the default 3 h
        (24 * 86_400_000, None, 2),  # the fuzzer's capture: packets 24 days apart
        (30_000, "10s", 2),
        (30_000, "45", 1),  # plain seconds
        (30_000, "1m", 1),
    ],
)
def test_a_gap_longer_than_max_fill_splits_the_output(
    gap_ms: int, max_fill: str | None, parts: int, tmp_path: Path, packets: list[bytes]
) -> None:
    head = _restamp(packets[:50], 100, 5_000)
    tail = _restamp(packets[50:100], 150, 5_000 + 50 * FRAME + gap_ms * 48)
    info = recording(tmp_path / "rec", packets)
    timed_capture(
        info.root,
        [(20 * i, p) for i, p in enumerate(head)]
        + [(1_000 + gap_ms + 20 * i, p) for i, p in enumerate(tail)],
    )
    options = [] if max_fill is None else ["--max-fill", max_fill]
    out = tmp_path / "out"
    run = rawcore(tmp_path, "extract-audio", "--input-dir", info.root, "-o", out, *options)
    assert run.code == 0, run.stderr
    assert len(run.media) == parts
    names = sorted(m.name for m in run.media)
    if parts == 1:
        (media,) = run.media
        samples, _ = decoded_samples(media)
        assert abs(samples - (gap_ms + 2_000) * 48) <= FRAME
        return
    first, second = names[0], names[1]
    assert second == first.replace(".mkv", "_part2.mkv")
    (warning,) = [w for w in run.stderr.splitlines() if "--max-fill" in w]
    assert "not filled" in warning and "_part2.mkv" in warning
    entries = {e["path"]: e for e in manifest(run)["outputs"]}  # type: ignore[index]
    assert entries[first]["warnings"] == []
    assert warning.endswith(entries[second]["warnings"][0])
    for name in names:  # each part holds its own second of talk, nothing of the gap
        samples, _ = decoded_samples(out / name)
        assert abs(samples - 1_000 * 48) <= 2 * FRAME, (name, samples)
        assert entries[name]["packets"] == 50
    start = {name: entries[name]["start_unix_ms"] for name in names}
    assert start[second] - start[first] == pytest.approx(1_000 + gap_ms, abs=40)


@pytest.mark.parametrize(
    ("name", "seq_step", "ts_step"),
    [
        ("timestamps jump back by 10^9", 0, -1_000_000_000),
        ("timestamps jump forward by 10 hours", 0, 10 * 3_600 * OPUS_RATE),
        ("timestamps jump forward past the wrap", 0, 3_000_000_000),
        ("sequence numbers jump by 30000", 30_000, 0),
        # A sender whose numbering restarts: the timeline starts a new one after three packets
        # in a row far behind, instead of dropping the rest of the segment as late.
        ("sequence numbers jump back by 20000", -20_000, 0),
    ],
)
def test_sender_reset_keeps_the_wall_clock_span(
    name: str, seq_step: int, ts_step: int, tmp_path: Path, packets: list[bytes]
) -> None:
    # 2 s of packets arriving every 20 ms; halfway the sender's counters jump.
    first = _restamp(packets[:50], 1_000, 77_000)
    second = _restamp(packets[50:100], 1_050 + seq_step, 77_000 + 50 * FRAME + ts_step)
    info = recording(tmp_path / "rec", packets)
    timed_capture(info.root, [(20 * i, p) for i, p in enumerate(first + second)])
    listed = rawcore(tmp_path, "list-tracks", "--input-dir", info.root, "--format", "json")
    assert listed.code == 0, listed.stderr
    run = rawcore(tmp_path, "extract-audio", "--input-dir", info.root, "-o", tmp_path / "out")
    assert run.code == 0, run.stderr
    [media] = run.media
    assert media.stat().st_size < 100_000
    samples, _ = decoded_samples(media)
    assert abs(samples - 2 * OPUS_RATE) <= 2 * FRAME, samples / OPUS_RATE


def test_100k_records_of_random_bytes_finish_quickly(tmp_path: Path, packets: list[bytes]) -> None:
    rng = random.Random(11)
    info = recording(tmp_path / "rec", packets)
    records = []
    for i in range(100_000):
        data = rng.randbytes(rng.randint(1, 200))
        if i % 2:  # half look like RTP version 2, with a handful of SSRCs and payload types
            data = bytes([0x80, rng.choice((111, 0, 96, 0xE0 | 0x6F))]) + data[2:]
        records.append((i * 10, data))
    timed_capture(info.root, records)
    listed = rawcore(tmp_path, "list-tracks", "--input-dir", info.root, "--format", "json")
    assert listed.code == 0, listed.stderr
    assert listed.seconds < 30
    run = rawcore(tmp_path, "extract-audio", "--input-dir", info.root, "-o", tmp_path / "out")
    assert run.seconds < 30
    # No record is a packet of the SDP's Opus stream, so there is nothing to write: an input
    # error on one line after the capture's (bounded) warnings, and no file.
    assert run.code == 3, run.stderr
    assert run.stderr.splitlines()[-1].endswith("no audio packets in 1 capture(s)"), run.stderr
    assert not list((tmp_path / "out").glob("*.mkv"))


# --- output folder ----------------------------------------------------------------------------


def test_output_that_is_a_file(tmp_path: Path, packets: list[bytes]) -> None:
    info = recording(tmp_path / "rec", packets)
    target = tmp_path / "taken"
    target.write_bytes(b"keep me")
    run = rawcore(tmp_path, "extract-audio", "--input-dir", info.root, "-o", target, out=target)
    assert run.code == 5, run.stderr
    assert target.read_bytes() == b"keep me"


def test_output_under_a_file(tmp_path: Path, packets: list[bytes]) -> None:
    # Not a read-only folder: root ignores permissions, but nobody can create a folder in a file.
    info = recording(tmp_path / "rec", packets)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    out = blocker / "out"
    run = rawcore(tmp_path, "extract-audio", "--input-dir", info.root, "-o", out, out=out)
    assert run.code == 5, run.stderr
    assert "cannot create the output folder" in run.lines[-1]


def test_missing_input_and_bad_usage(tmp_path: Path) -> None:
    run = rawcore(tmp_path, "list-tracks", "--input-file", tmp_path / "nope.zip")
    assert run.code == 3 and "no such file" in run.lines[-1]
    run = rawcore(tmp_path, "extract-audio", "--input-dir", tmp_path)
    assert run.code == 2 and "--output" in run.lines[-1]
