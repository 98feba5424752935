"""rawcore convert, checked on decoded output: remux keeps every packet and timestamp, editor
output is CFR, one size, A/V from t=0 to the same end, flashes and beeps where the source has
them; bad input is one line and an exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import rawcore
from helpers.audio_truth import OPUS_LOOKAHEAD_S, av_available, decode_audio, tone_onsets
from helpers.gst import GstUnavailable, gst_available
from helpers.recording import (
    Impairments,
    OpusSource,
    SenderReports,
    SessionSpec,
    TrackSpec,
    VideoSource,
    build_recording,
)
from helpers.video_truth import decode_video, flash_times
from rawcore.media.convert import convert_file, convert_track
from rawcore.media.mux import mux_av

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

EVENTS = (1.0, 2.5, 4.0)
BEEP_HZ = 1000.0


def av_call(root: Path, codec: str = "vp9", *, video_offset_s: float = 0.3) -> Path:
    """Alice's camera (flashes) and microphone (beeps at the same instants); the video starts
    `video_offset_s` after the audio."""
    reports = SenderReports(interval_s=1.0)
    audio = TrackSpec(
        "audio", "opus", track_id="mic",
        source=OpusSource(5.5, tone_bursts=tuple((t, 0.3, BEEP_HZ) for t in EVENTS)),
        sender_reports=reports,
    )  # fmt: skip
    video = TrackSpec(
        "video", codec, track_id="cam",  # type: ignore[arg-type]
        source=VideoSource(5.5 - video_offset_s, fps=30, keyframe_interval=30,
                           flashes=tuple(t - video_offset_s for t in EVENTS)),
        start_offset_s=video_offset_s, sender_reports=reports,
        impairments=Impairments(extra_delay_ms=20),
    )  # fmt: skip
    try:
        build_recording(root, [SessionSpec("alice", "s1", [audio, video])])
    except GstUnavailable as exc:
        pytest.skip(str(exc))
    return root


def packets(path: Path, kind: str) -> list[tuple[bytes, float]]:
    import av

    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        return [
            (bytes(p), round(float(p.pts * p.time_base), 3))
            for p in c.demux(stream)
            if p.size and p.pts is not None
        ]


@pytest.mark.parametrize("codec", ["vp9", "h264", "av1"])
def test_remux_keeps_every_packet_and_timestamp(tmp_path: Path, codec: str) -> None:
    av_call(tmp_path / "rec", codec)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (muxed,), _, _ = mux_av(rec, tmp_path / "mkv")
    src = tmp_path / "mkv" / muxed.path
    entry = convert_file(src, tmp_path / "out" / "a.mp4", mode="remux")
    out = tmp_path / "out" / "a.mp4"
    for kind in ("video", "audio"):
        assert packets(out, kind) == packets(src, kind), kind
    assert entry.container == "mp4" and entry.mode == "remux" and entry.kind == "av"
    assert entry.start_unix_ms == muxed.start_unix_ms and entry.track_ids == muxed.track_ids
    tag = {"vp9": b"vp09", "h264": b"avc1", "av1": b"av01"}[codec]
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # fast start: the index comes first
    assert tag in data and b"Opus" in data and b"dOps" in data and b"elst" in data
    decoded = decode_video(out)
    assert decoded.errors == 0 and decoded.pts_s[0] == pytest.approx(0.3, abs=0.05)


def test_editor_is_cfr_one_size_in_sync_and_frame_exact(tmp_path: Path) -> None:
    av_call(tmp_path / "rec", "vp9", video_offset_s=0.3)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (muxed,), _, _ = mux_av(rec, tmp_path / "mkv")
        entry = convert_track(rec, "cam", tmp_path / "out" / "e.mp4")
    src, out = tmp_path / "mkv" / muxed.path, tmp_path / "out" / "e.mp4"
    video, audio = decode_video(out), decode_audio(out)
    assert video.errors == 0 and audio.errors == 0
    assert video.codec_name == "h264" and audio.codec_name == "aac" and audio.rate == 48_000
    frame = 1 / 30
    steps = [b - a for a, b in zip(video.pts_s, video.pts_s[1:], strict=False)]
    assert max(steps) - min(steps) < 1e-3 and abs(steps[0] - frame) < 1e-3  # CFR
    assert set(video.sizes) == {(320, 180)}
    assert video.pts_s[0] == pytest.approx(0.0, abs=1e-3)
    assert audio.start_time_s == pytest.approx(0.0, abs=frame)
    video_end = float(video.pts_s[-1]) + frame
    assert audio.duration_s == pytest.approx(video_end, abs=frame)
    # Black before the first picture (the camera starts 0.3 s after the microphone).
    assert video.luma[0] < 20
    # Every flash where the source has it, +- half a frame; every beep +- 10 ms.
    source_flashes = flash_times(decode_video(src))
    flashes = flash_times(video)
    assert len(flashes) == len(source_flashes) == len(EVENTS)
    for got, want in zip(flashes, source_flashes, strict=True):
        assert abs(got - want) <= frame / 2 + 1e-3, (flashes, source_flashes)
    src_audio = decode_audio(src)
    want_beeps = [
        src_audio.start_time_s + t - OPUS_LOOKAHEAD_S
        for t in tone_onsets(src_audio.samples, src_audio.rate, BEEP_HZ)
    ]
    beeps = [audio.start_time_s + t for t in tone_onsets(audio.samples, audio.rate, BEEP_HZ)]
    assert len(beeps) == len(want_beeps) == len(EVENTS)
    for got, want in zip(beeps, want_beeps, strict=True):
        assert abs(got - want) <= 0.010, (beeps, want_beeps)
    assert entry.kind == "av" and entry.mode == "editor" and set(entry.track_ids) == {"cam", "mic"}


def test_editor_scales_a_smaller_stretch_to_the_largest_size(tmp_path: Path) -> None:
    from helpers.video_truth import resolution_change_call

    truth = resolution_change_call(tmp_path / "rec", "vp9")
    with rawcore.open_recording(tmp_path / "rec") as rec:
        convert_track(rec, truth.track.track_id, tmp_path / "out" / "e.mp4", no_audio=True)
    video = decode_video(tmp_path / "out" / "e.mp4")
    assert video.errors == 0 and set(video.sizes) == {(640, 360)}
    steps = [b - a for a, b in zip(video.pts_s, video.pts_s[1:], strict=False)]
    assert max(steps) - min(steps) < 1e-3


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rawcore", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("case", "args", "code", "says"),
    [
        ("a missing file", ["convert", "nope.webm", "-o", "{out}/a.mp4"], 3, "no such file"),
        ("a file that is no media", ["convert", "{garbage}", "-o", "{out}/a.mp4"], 3, "FFmpeg"),
        (
            "a recording without --track-id",
            ["convert", "--input-dir", "{rec}", "-o", "{out}/a.mp4"],
            2,
            "--track-id",
        ),
        (
            "an unknown track",
            ["convert", "{rec}", "--track-id", "nope", "-o", "{out}/a.mp4"],
            3,
            "no tracks match",
        ),
        (
            "VP8 remuxed",
            ["convert", "{rec}", "--track-id", "cam", "--mode", "remux", "-o", "{out}/a.mp4"],
            3,
            "--mode editor",
        ),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    tmp_path: Path, case: str, args: list[str], code: int, says: str
) -> None:
    rec = av_call(tmp_path / "rec", "vp8")
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(b"\x1aE\xdf\xa3" + b"x" * 100)
    filled = [a.format(out=tmp_path / "out", rec=rec, garbage=garbage) for a in args]
    done = run_cli(*filled)
    assert done.returncode == code, (case, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rawcore: error:") and says in lines[0], case
    assert not (tmp_path / "out" / "a.mp4").exists()


def _opus_tone(path: Path, seconds: float) -> Path:
    """`seconds` of a 440 Hz tone as Opus in WebM (FFmpeg's libopus through PyAV)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="webm") as out:
        a = out.add_stream("libopus", rate=48_000, layout="mono")
        t = np.arange(round(seconds * 48_000)) / 48_000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(0, tone.size, 960):
            frame = av.AudioFrame.from_ndarray(tone[None, i : i + 960], format="flt",
                                               layout="mono")  # fmt: skip
            frame.sample_rate, frame.pts = 48_000, i
            for p in a.encode(frame):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return path


@pytest.mark.parametrize(
    ("case", "offset_s", "samples"),
    [
        ("audio longer than the plan: cut at its end", 0.0, 48_000),
        ("audio that starts late and runs past the end: cut", 0.5, 96_000),
        ("audio shorter than the plan: silence to its end", 0.0, 3 * 48_000 + 100),
        ("audio that starts late: silence before it, cut at the end", 0.7, 2 * 48_000),
    ],
)
def test_editor_audio_is_exactly_the_planned_length(
    tmp_path: Path, case: str, offset_s: float, samples: int
) -> None:
    import av
    from rawcore.media.convert.editor import encode_audio
    from rawcore.media.convert.probe import StreamRef

    src = _opus_tone(tmp_path / "tone.webm", 2.0)
    out = tmp_path / "a.mp4"
    encode_audio(StreamRef(src, 0, "audio", "opus"), offset_s, samples, out)
    with av.open(str(out)) as c:
        decoded = sum(f.samples for f in c.decode(c.streams.audio[0]))
    # AAC carries whole frames of 1024 samples: the last one padded.
    assert decoded == -(-samples // 1024) * 1024, case
