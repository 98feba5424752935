"""`rawcore post-process` on an hour-long call of four participants: HotMic's 30 s promise.

The call: four participants, one session each, each with 60 minutes of Opus speech (a 30 s
DTX capture of 1.5 s tone bursts and 4-6 s silences, `helpers.audio_truth.dtx_call`, repeated
with sequence numbers and timestamps continued) and 60 minutes of 640x360 VP8 at 30 fps,
~800 kb/s (`peers.make_vp8_track`'s 30 s of GStreamer packets, repeated the same way). The four
participants share the same packets (hard links), as `startup.py`'s recording does. Made once
into `$RAWCORE_POST_BENCH_DIR` (default /tmp/rawcore-post-bench) and reused.

One round is a whole run into an empty folder storage: finalize (nothing pending), the raw
tracks, the stitched tracks, the scene (its own stitched Matroska tracks, voice activity, the
auto layout and clip, OTIO); the clip render is left out (`clip=False`, the CLI's `--no-clip`):
the 30 s promise is for the tracks and the scene. `extra_info` holds each step's wall seconds
from the pipeline's checkpoints.
Run with `.venv/bin/python -m pytest benches/test_bench_post.py --benchmark-enable
--benchmark-only`.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers
from helpers import audio_truth as at
from helpers.recording import sdp_for
from helpers.rtpdump import CapturedPacket, parse_rtp_header, rewrite_rtp, write_rtpdump
from rawcore.pipeline.post import STEPS, PostTarget, post_process
from rawcore.storage.backends import FolderStorage

MINUTES = 60
PARTICIPANTS = 4
WORKDIR = Path(os.environ.get("RAWCORE_POST_BENCH_DIR", "/tmp/rawcore-post-bench"))


def _repeated(base: list[tuple[int, bytes]], total_ms: int, *, clock: int,
              vp8_frames: int | None = None) -> Iterator[CapturedPacket]:  # fmt: skip
    """`base` (arrival ms, RTP packet) played again and again for `total_ms`: sequence numbers,
    timestamps, arrival times (and VP8 picture IDs) continue as if the sender had kept going."""
    first = parse_rtp_header(base[0][1])
    last = parse_rtp_header(base[-1][1])
    step = 960 if clock == 48_000 else 3_000  # one 20 ms Opus frame, one 30 fps frame
    cycle_ts = ((last.ts - first.ts) & 0xFFFFFFFF) + step
    cycle_ms = cycle_ts * 1000 // clock
    t0 = base[0][0]
    seq, rep = first.seq, 0
    while True:
        for ms, pkt in base:
            at_ms = rep * cycle_ms + ms - t0
            if at_ms >= total_ms:
                return
            hdr = parse_rtp_header(pkt)
            out = rewrite_rtp(pkt, seq=seq & 0xFFFF, ts=(hdr.ts + rep * cycle_ts) & 0xFFFFFFFF)
            if vp8_frames is not None and rep:
                out = peers._vp8_bump_picture_id(out, rep * vp8_frames)
            seq += 1
            yield CapturedPacket(at_ms, out)
        rep += 1


def hour_long_call(root: Path, minutes: int = MINUTES) -> Path:
    """The call described in the module's docstring, as a recording folder (made once)."""
    rec = root / f"call-{PARTICIPANTS}x{minutes}min"
    if (rec / "done").exists():
        return rec
    src = root / "tracks"
    src.mkdir(parents=True, exist_ok=True)
    speech = at.dtx_call(root / "dtx", duration_s=30.0)
    audio = at.read_rtpdump_packets(speech.rtpdump_path)
    fps = 30
    video = peers.gst.vp8_packets(30.0, width=640, height=360, fps=fps,
                                  keyframe_interval=3 * fps, bitrate_kbps=800,
                                  seq_offset=2000, ts_offset=7_000_000)  # fmt: skip
    first_ts = parse_rtp_header(video[0]).ts
    video_records = [(((parse_rtp_header(p).ts - first_ts) & 0xFFFFFFFF) // 90, p) for p in video]
    total_ms = minutes * 60_000
    start = peers.START_UNIX_US / 1e6
    for name, records, codec, pt, clock, frames in (
        ("audio_1", audio, "opus", peers.OPUS_PT, 48_000, None),
        ("video_1", video_records, "vp8", peers.VP8_PT, 90_000, 30 * fps),
    ):
        write_rtpdump(src / f"{name}.rtpdump",
                      _repeated(records, total_ms, clock=clock, vp8_frames=frames),
                      start_unix=start)  # fmt: skip
        ssrc = parse_rtp_header(records[0][1]).ssrc
        (src / f"{name}.sdp").write_text(sdp_for(codec, pt=pt, ssrc=ssrc, cname="bench"),
                                         newline="")  # fmt: skip
    for user in range(1, PARTICIPANTS + 1):
        session = rec / f"user_{user}" / "session_1"
        session.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if not (session / f.name).exists():
                os.link(f, session / f.name)
    (rec / "done").write_text("")
    return rec


@pytest.fixture(scope="session")
def call() -> Path:
    return hour_long_call(WORKDIR)


def _written_bytes() -> int:
    """Bytes this process (every thread) has caused to be written to storage so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def test_post_process_4x60min_call(benchmark, call: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marks: list[tuple[str, float, int]] = []
    rounds = iter(range(1000))

    def setup() -> tuple[tuple[Path, PostTarget], dict[str, object]]:
        out = tmp_path / f"storage-{next(rounds)}"
        shutil.rmtree(tmp_path, ignore_errors=True)
        marks.clear()
        target = PostTarget(FolderStorage(out), "bench", "room-1", "call-1")
        return (call, target), {"checkpoint": lambda p: marks.append(
            (p, time.perf_counter(), _written_bytes())), "clip": False}  # fmt: skip

    result = benchmark.pedantic(post_process, setup=setup, rounds=3, iterations=1)
    # The clip render is left out (`clip=False`): the 30 s promise is for the tracks and scene.
    assert result.ran == tuple(s for s in STEPS if s != "clip")
    doc = result.document
    assert len(doc["raw_tracks"]) == 2 * PARTICIPANTS
    assert len(doc["stitched_tracks"]) == 2 * PARTICIPANTS
    assert all(t["duration_ms"] > (MINUTES * 60 - 5) * 1000 for t in doc["raw_tracks"])
    # Per step, from the last round's checkpoints.
    begun = {p.split(":")[0]: (t, w) for p, t, w in marks if p.endswith(":start")}
    ended = {p.split(":")[0]: (t, w) for p, t, w in marks if p.endswith(":done")}
    info = benchmark.extra_info
    for step in result.ran:
        info[f"{step}_s"] = round(ended[step][0] - begun[step][0], 3)
        # What the step wrote (the kernel's count for this process: page cache dirtied).
        info[f"{step}_written_mb"] = round((ended[step][1] - begun[step][1]) / 1e6, 1)
    # The bytes the storage holds, each file once however many links name it.
    storage = next(tmp_path.glob("storage-*"))
    inodes = {f.stat().st_ino: f.stat().st_size for f in storage.rglob("*") if f.is_file()}
    info["disk_mb"] = round(sum(inodes.values()) / 1e6, 1)
    info["input_mb"] = round(sum(f.stat().st_size for f in call.rglob("*.rtpdump")) / 1e6, 1)
    info["stored_mb"] = round(sum(t["bytes"] for t in doc["raw_tracks"] + doc["stitched_tracks"])
                              / 1e6, 1)  # fmt: skip
    info["clip"] = doc["clip"]
    info["cpus"] = os.cpu_count()
