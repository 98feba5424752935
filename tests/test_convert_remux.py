"""convert --mode remux through the core's Matroska reader and MP4 writer, checked by demuxing
input and output with PyAV (FFmpeg's readers): the same packets, bytes, key flags and times,
for files written by independent writers (FFmpeg through PyAV, GStreamer's webmmux); H.264 with
B-frames (stored in decode order) keeps its presentation and decode times; broken files are one
line and an exit code."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.audio_truth import av_available
from helpers.gst import gst_available
from rawcore.media.convert import convert_file

pytestmark = pytest.mark.skipif(not av_available(), reason="needs PyAV")


def ffmpeg_file(
    path: Path, video: str, fmt: str, *, bframes: int = 0, seconds: float = 2.0
) -> Path:
    """`seconds` of `video` at 15 fps (64x48 moving ramps) and Opus mono (a 440 Hz tone),
    written by FFmpeg's Matroska/WebM muxer through PyAV."""
    import av

    with av.open(str(path), "w", format=fmt) as out:
        v = out.add_stream(video, rate=15)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        if video == "libx264":
            v.codec_context.options = {"bf": str(bframes), "g": "15"}
        elif video == "libvpx-vp9":
            v.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "g": "15"}
        elif video == "libsvtav1":
            v.codec_context.options = {"preset": "12", "g": "15"}
        a = out.add_stream("libopus", rate=48_000, layout="mono")
        yy, xx = np.mgrid[0:48, 0:64]
        for n in range(int(seconds * 15)):
            y = ((xx + yy + 5 * n) % 200 + 16).astype(np.uint8)
            img = np.concatenate([y, np.full((24, 64), 128, dtype=np.uint8)])
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, 15)
            for p in v.encode(frame):
                out.mux(p)
        t = np.arange(int(seconds * 48_000)) / 48_000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(0, tone.size, 960):
            frame = av.AudioFrame.from_ndarray(tone[None, i : i + 960], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48_000, i
            for p in a.encode(frame):
                out.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                out.mux(p)
    return path


def gstreamer_file(path: Path) -> Path:
    """Two seconds of VP9 and Opus written by GStreamer's webmmux."""
    if not gst_available("vp9enc", "opusenc", "webmmux", "videotestsrc", "audiotestsrc"):
        pytest.skip("GStreamer's vp9enc, opusenc and webmmux are needed")
    subprocess.run(
        ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=30", "!",
         "video/x-raw,width=160,height=120,framerate=15/1", "!", "vp9enc", "deadline=1", "!",
         "queue", "!", "webmmux", "name=m", "!", "filesink", f"location={path}",
         "audiotestsrc", "num-buffers=100", "!", "audio/x-raw,rate=48000", "!", "opusenc", "!",
         "queue", "!", "m."],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return path


def demuxed(path: Path, kind: str) -> tuple[list[tuple[bytes, bool]], list[Fraction], Any]:
    """`(payload, key flag)` and the time (s) of every packet of the first `kind` stream."""
    import av

    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        rows = [(bytes(p), p.is_keyframe, Fraction(p.pts) * p.time_base)
                for p in c.demux(stream) if p.size and p.pts is not None]  # fmt: skip
        delay = None
        if kind == "audio":
            delay = stream.codec_context.extradata
    return [(b, k) for b, k, _ in rows], [t for _, _, t in rows], delay


def pre_skip_s(opus_head: bytes | None) -> Fraction:
    if not opus_head or len(opus_head) < 12:
        return Fraction(0)
    return Fraction(int.from_bytes(opus_head[10:12], "little"), 48_000)


WRITERS = {
    "VP9 + Opus by FFmpeg (WebM)": lambda p: ffmpeg_file(p / "in.webm", "libvpx-vp9", "webm"),
    "H.264 + Opus by FFmpeg (Matroska)": lambda p: ffmpeg_file(p / "in.mkv", "libx264", "matroska"),
    "AV1 + Opus by FFmpeg (WebM)": lambda p: ffmpeg_file(p / "in.webm", "libsvtav1", "webm",
                                                         seconds=1.0),
    "VP9 + Opus by GStreamer (webmmux)": lambda p: gstreamer_file(p / "in.webm"),
    "H.264 with B-frames by FFmpeg (Matroska)": lambda p: ffmpeg_file(
        p / "in.mkv", "libx264", "matroska", bframes=2),
}  # fmt: skip


@pytest.mark.parametrize("writer", list(WRITERS))
def gstreamer_h264(path: Path, bframes: int, pyramid: bool) -> Path:
    """Two seconds of H.264 with B-frames (x264enc) written by GStreamer's matroskamux."""
    if not gst_available("x264enc", "h264parse", "matroskamux", "videotestsrc"):
        pytest.skip("GStreamer's x264enc, h264parse and matroskamux are needed")
    subprocess.run(
        ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=30", "!",
         "video/x-raw,width=160,height=120,framerate=15/1", "!", "x264enc",
         f"bframes={bframes}", f"b-pyramid={str(pyramid).lower()}", "key-int-max=15", "!",
         "h264parse", "!", "matroskamux", "!", "filesink", f"location={path}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return path


def timed(path: Path) -> list[tuple[bytes, bool, Fraction, Fraction | None]]:
    """`(payload, key flag, pts, dts)` (s) of every video packet, in stored (decode) order."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return [(bytes(p), p.is_keyframe, Fraction(p.pts) * p.time_base,
                 None if p.dts is None else Fraction(p.dts) * p.time_base)
                for p in c.demux(stream) if p.size]  # fmt: skip


B_FRAMES = {
    "FFmpeg, 2 B-frames, b-pyramid (2 reorder frames)": lambda p: ffmpeg_file(
        p / "in.mkv", "libx264", "matroska", bframes=2),
    "FFmpeg, 3 B-frames, b-pyramid": lambda p: ffmpeg_file(
        p / "in.mkv", "libx264", "matroska", bframes=3),
    "GStreamer, 2 B-frames, no pyramid (1 reorder frame)": lambda p: gstreamer_h264(
        p / "in.mkv", 2, False),
    "GStreamer, 3 B-frames, b-pyramid": lambda p: gstreamer_h264(p / "in.mkv", 3, True),
}  # fmt: skip


@pytest.mark.parametrize("writer", list(B_FRAMES))
def test_h264_with_b_frames_is_remuxed_by_the_core_with_its_decode_times(
    tmp_path: Path, writer: str
) -> None:
    from rawcore._core import remux_mp4

    src = B_FRAMES[writer](tmp_path)
    want = timed(src)
    pts = [t for _, _, t, _ in want]
    assert pts != sorted(pts), f"{writer}: the input has no B-frames to prove anything"
    report = remux_mp4(src, tmp_path / "out.mp4", audio=False)
    assert report.written, writer  # the core wrote it, not FFmpeg's muxer
    got = timed(tmp_path / "out.mp4")
    assert [(b, k) for b, k, _, _ in got] == [(b, k) for b, k, _, _ in want], writer
    # Matroska times are whole ms: the MP4's 90 kHz ticks carry them exactly.
    assert [t for _, _, t, _ in got] == pts, writer
    # FFmpeg's Matroska reader derives decode times from the SPS's reorder depth (none for
    # the first frames); the MP4 states them: the same wherever the reader gives one.
    for i, ((_, _, p, want_dts), (_, _, _, got_dts)) in enumerate(zip(want, got, strict=True)):
        assert got_dts is not None and got_dts <= p, (writer, i)
        if want_dts is not None:
            assert got_dts == want_dts, (writer, i)
    assert [d for *_, d in got] == sorted(d for *_, d in got), writer  # decode order
    assert sum(d is not None for *_, d in want) >= len(want) - 3, writer


@pytest.mark.parametrize("writer", list(WRITERS))
def test_remux_keeps_packets_key_flags_and_times_of_independent_writers(
    tmp_path: Path, writer: str
) -> None:
    import av

    try:
        src = WRITERS[writer](tmp_path)
    except av.error.FFmpegError as exc:  # an encoder this FFmpeg build lacks
        pytest.skip(f"{writer}: {exc}")
    out = tmp_path / "out" / "a.mp4"
    entry = convert_file(src, out, mode="remux")
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")
    for kind in ("video", "audio"):
        want, want_t, head = demuxed(src, kind)
        got, got_t, _ = demuxed(out, kind)
        assert got == want, (writer, kind)
        if kind == "video":
            assert got_t == want_t, (writer, kind)
        else:
            # Matroska times Opus blocks with the codec delay in: a frame plays at its time
            # minus the delay, exactly 312/48000 s here. PyAV's Matroska reader rounds that to
            # its 1 ms time base; the MP4 carries it exactly (an edit that skips the pre-skip).
            tolerance = Fraction(1, 2000) if pre_skip_s(head) else Fraction(0)
            assert max(abs(a - b) for a, b in zip(got_t, want_t, strict=True)) <= tolerance
    assert entry.mode == "remux" and entry.kind == "av"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rawcore", *args], capture_output=True, text=True, timeout=120
    )


EBML = b"\x1a\x45\xdf\xa3"


def _broken(kind: str, good: bytes) -> bytes:
    cluster = good.find(b"\x1f\x43\xb6\x75")
    if kind == "garbage after the EBML ID":
        return EBML + b"x" * 100
    if kind == "a header and no tracks":
        return good[:40]
    if kind == "a block declaring 2^55 bytes":
        return (good[:cluster] + b"\x1f\x43\xb6\x75\x01" + b"\xff" * 7 + b"\xe7\x81\x00"
                + b"\xa3\x01\x80" + b"\x00" * 5 + b"\x81")  # fmt: skip
    if kind == "10,000 nested unknown-size masters":
        return EBML + b"\x80" + b"\xa0\xff" * 10_000
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("garbage after the EBML ID", "Matroska"),
        ("a header and no tracks", "Tracks"),
        ("a block declaring 2^55 bytes", "overruns its parent"),
        ("10,000 nested unknown-size masters", "unknown size"),
    ],
)
def test_broken_matroska_is_one_line_and_an_exit_code(tmp_path: Path, kind: str, says: str) -> None:
    good = ffmpeg_file(tmp_path / "good.webm", "libvpx-vp9", "webm", seconds=0.5).read_bytes()
    bad = tmp_path / "bad.webm"
    bad.write_bytes(_broken(kind, good))
    done = run_cli("convert", str(bad), "--mode", "remux", "-o", str(tmp_path / "out" / "a.mp4"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3, (kind, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("rawcore: error:") and says in lines[0], kind
    assert not (tmp_path / "out" / "a.mp4").exists()


def test_a_file_cut_short_keeps_every_whole_frame_before_the_cut(tmp_path: Path) -> None:
    src = ffmpeg_file(tmp_path / "in.webm", "libvpx-vp9", "webm")
    cut = tmp_path / "cut.webm"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out" / "a.mp4"
    entry = convert_file(cut, out, mode="remux")
    got, _, _ = demuxed(out, "video")
    want, _, _ = demuxed(src, "video")
    assert 0 < len(got) < len(want) and got == want[: len(got)]
    assert any("cut short" in w for w in entry.warnings)
