"""The editor's first pass without decoding: `rawcore._core.scan_pictures` reads picture times
and sizes of a Matroska/WebM video track from its headers, and must find what decoding finds.
Checked against PyAV (FFmpeg's demuxer and decoders) on files written by FFmpeg and GStreamer:
VP8, VP9 and H.264 (sizes that need the SPS cropping window), tracks whose size changes mid-way
(H.264 with a new SPS inside the stream; GStreamer's encoders switching size mid-call, muxed by
rawcore), and AV1 left to the decoding scan."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.audio_truth import av_available
from helpers.gst import gst_available
from rawcore._core import scan_pictures
from rawcore.errors import InputError
from rawcore.media.convert.editor import _scan_decoding, _scan_headers, scan_video
from rawcore.media.convert.probe import find_inputs

pytestmark = pytest.mark.skipif(not av_available(), reason="needs PyAV")

FPS = 15


def _setup(ctx: Any, codec: str, size: tuple[int, int]) -> None:
    ctx.width, ctx.height, ctx.pix_fmt = size[0], size[1], "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, FPS), Fraction(FPS)
    if codec == "libx264":
        ctx.options = {"bf": "0", "g": "10"}
    elif codec.startswith("libvpx"):
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "g": "10"}
    elif codec == "libsvtav1":
        ctx.options = {"preset": "12", "g": "10"}


def ffmpeg_file(path: Path, codec: str, sizes: list[tuple[int, int]], fmt: str) -> Path:
    """A second of moving ramps at each of `sizes` in turn, one encoder per size (each starting
    with a keyframe; later H.264 encoders put their SPS in the stream), written into one track
    by FFmpeg's Matroska/WebM muxer through PyAV."""
    import av

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=FPS)
        _setup(stream.codec_context, codec, sizes[0])
        n = 0
        for i, (w, h) in enumerate(sizes):
            if i == 0:
                enc = stream.codec_context
            else:
                # A codec context of its own, without the global-header flag: H.264 parameter
                # sets go into the stream, as a sender that changes size sends them.
                enc = av.CodecContext.create(codec, "w")
                _setup(enc, codec, (w, h))
                enc.open()
            yy, xx = np.mgrid[0:h, 0:w]
            packets = []
            for _ in range(FPS):
                y = ((xx + yy + 5 * n) % 200 + 16).astype(np.uint8)
                img = np.concatenate([y, np.full((h // 2, w), 128, dtype=np.uint8)])
                frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
                frame.pts, frame.time_base = n, Fraction(1, FPS)
                packets += enc.encode(frame)
                n += 1
            packets += enc.encode(None)
            for p in packets:
                p.stream = stream
                out.mux(p)
    return path


def gstreamer_file(path: Path, encoder: str, mux: str, size: tuple[int, int]) -> Path:
    """Two seconds of `videotestsrc` at `size` encoded by `encoder`, written by `mux`."""
    parse = ["h264parse", "!"] if encoder == "x264enc" else []
    if not gst_available(encoder, mux, "videotestsrc", *(p for p in parse if p != "!")):
        pytest.skip(f"GStreamer's {encoder} and {mux} are needed")
    options = ["key-int-max=10"] if encoder == "x264enc" else ["deadline=1"]
    subprocess.run(
        ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=30", "!",
         f"video/x-raw,width={size[0]},height={size[1]},framerate={FPS}/1", "!", encoder,
         *options, "!", *parse, mux, "!", "filesink", f"location={path}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return path


def gstreamer_size_change(path: Path, codec: str) -> Path:
    """A sender whose GStreamer encoder switches from 320x180 to 640x360 mid-call (RTP from
    GStreamer's payloaders), as a raw track muxed by `rawcore mux-av`."""
    import rawcore
    from helpers.gst import GstUnavailable
    from helpers.video_truth import resolution_change_call
    from rawcore.media.mux import mux_av
    from rawcore.media.outputs import Selection

    try:
        truth = resolution_change_call(path / "rec", codec)
    except GstUnavailable as exc:
        pytest.skip(str(exc))
    with rawcore.open_recording(path / "rec") as rec:
        result = mux_av(rec, path / "mkv", selection=Selection(track_id=truth.track.track_id))
    return path / "mkv" / result.entries[0].path


def decoded(path: Path) -> tuple[list[float], list[tuple[int, int]]]:
    """Every packet's time and every decoded picture's size, in order, by PyAV."""
    import av

    times, sizes = [], []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for packet in c.demux(stream):
            if packet.pts is not None and packet.size:
                times.append(float(packet.pts * packet.time_base))
            for frame in packet.decode():
                sizes.append((frame.width, frame.height))
    return times, sizes


def changes(sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [s for i, s in enumerate(sizes) if i == 0 or sizes[i - 1] != s]


WRITERS = {
    "VP8 by FFmpeg, 160x90 growing to 320x180 (WebM)": lambda p: ffmpeg_file(
        p / "in.webm", "libvpx", [(160, 90), (320, 180)], "webm"),
    "VP9 by FFmpeg, 320x180 shrinking to 160x90 and back (WebM)": lambda p: ffmpeg_file(
        p / "in.webm", "libvpx-vp9", [(320, 180), (160, 90), (320, 180)], "webm"),
    "H.264 by FFmpeg, 160x90 (cropped) growing to 320x180 by a new SPS in the stream": (
        lambda p: ffmpeg_file(p / "in.mkv", "libx264", [(160, 90), (320, 180)], "matroska")),
    "H.264 by FFmpeg, 200x100 shrinking to 120x68, both cropped": lambda p: ffmpeg_file(
        p / "in.mkv", "libx264", [(200, 100), (120, 68)], "matroska"),
    "VP8 from GStreamer's encoder, 320x180 growing to 640x360 (rawcore mux-av)": lambda p: (
        gstreamer_size_change(p, "vp8")),
    "VP9 from GStreamer's encoder, 320x180 growing to 640x360 (rawcore mux-av)": lambda p: (
        gstreamer_size_change(p, "vp9")),
    "H.264 from GStreamer's encoder, 320x180 growing to 640x360 (rawcore mux-av)": lambda p: (
        gstreamer_size_change(p, "h264")),
    "VP8 by GStreamer (webmmux), 176x100": lambda p: gstreamer_file(
        p / "in.webm", "vp8enc", "webmmux", (176, 100)),
    "VP9 by GStreamer (webmmux), 170x96": lambda p: gstreamer_file(
        p / "in.webm", "vp9enc", "webmmux", (170, 96)),
    "H.264 by GStreamer (matroskamux), 160x90 (cropped)": lambda p: gstreamer_file(
        p / "in.mkv", "x264enc", "matroskamux", (160, 90)),
}  # fmt: skip


@pytest.mark.parametrize("writer", list(WRITERS))
def test_header_scan_finds_the_times_and_sizes_decoding_finds(tmp_path: Path, writer: str) -> None:
    path = WRITERS[writer](tmp_path)
    times, sizes = decoded(path)
    pictures = scan_pictures(path)
    assert pictures is not None
    assert pictures.times_s == times  # exactly FFmpeg's pts * time_base
    assert [(w, h) for _, w, h in pictures.sizes] == changes(sizes)
    largest = max(sizes, key=lambda wh: wh[0] * wh[1])
    assert (pictures.width, pictures.height) == largest
    # Each change is stated at the time of the picture that brings it.
    for t, _, _ in pictures.sizes:
        assert t in times
    # And the editor's plan is the one the decoding scan makes.
    ref = find_inputs(path, no_audio=True).video
    assert ref is not None
    headers = _scan_headers(ref)
    assert headers is not None and headers == _scan_decoding(ref)


def test_av1_is_left_to_the_decoding_scan(tmp_path: Path) -> None:
    path = ffmpeg_file(tmp_path / "in.webm", "libsvtav1", [(160, 96)], "webm")
    assert scan_pictures(path) is None
    ref = find_inputs(path, no_audio=True).video
    assert ref is not None and _scan_headers(ref) is None
    plan = scan_video(ref)
    assert (plan.width, plan.height) == (160, 96) and len(plan.times_s) == FPS


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("not Matroska at all", b"RIFF\x00\x00\x00\x00WAVEfmt "),
        ("an EBML header cut short", b"\x1a\x45\xdf\xa3\x84\x42"),
    ],
)
def test_a_file_the_header_scan_cannot_read_is_an_input_error(
    tmp_path: Path, case: str, data: bytes
) -> None:
    path = tmp_path / "bad.webm"
    path.write_bytes(data)
    with pytest.raises(InputError):
        scan_pictures(path)
