"""The call timeline, checked on decoded output: beeps at the exact instants of white flashes.

The sender's audio beeps exactly when its video flashes; the video arrives 80 ms later than the
audio (a longer network and jitter-buffer path), and the sender's NTP clock is seconds off the
recorder's. With Sender Reports the muxed file must keep beep and flash within 40 ms; without
them rawcore falls back to arrival times and must say so (and the offset it reports is the
80 ms it could not see).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rawcore
from helpers.audio_truth import OPUS_LOOKAHEAD_S, av_available, decode_audio, tone_onsets
from helpers.gst import gst_available
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
from rawcore.media.mux import mux_av
from rawcore.recording.timeline import timeline_of

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

EVENTS = (1.0, 2.5, 4.0)
BEEP_HZ = 1000.0


def sync_call(root: Path, *, srs: bool, ntp_offset_s: float = 3.7, video_delay_ms: int = 100):
    reports = SenderReports(interval_s=1.0, ntp_offset_s=ntp_offset_s) if srs else None
    audio = TrackSpec(
        "audio",
        "opus",
        source=OpusSource(5.5, tone_bursts=tuple((t, 0.3, BEEP_HZ) for t in EVENTS)),
        impairments=Impairments(extra_delay_ms=20, jitter_ms=5, seed=1),
        sender_reports=reports,
    )
    video = TrackSpec(
        "video",
        "vp8",
        source=VideoSource(5.5, fps=30, flashes=EVENTS, keyframe_interval=30),
        impairments=Impairments(extra_delay_ms=video_delay_ms, jitter_ms=5, seed=2),
        sender_reports=reports,
    )
    return build_recording(root, [SessionSpec("alice", "s1", [audio, video])])


def beep_flash_offsets(path: Path, events: tuple[float, ...] = EVENTS) -> list[float]:
    audio = decode_audio(path)
    video = decode_video(path)
    assert video.errors == 0 and audio.errors == 0
    beeps = [
        audio.start_time_s + t - OPUS_LOOKAHEAD_S
        for t in tone_onsets(audio.samples, audio.rate, BEEP_HZ)
    ]
    flashes = flash_times(video)
    assert len(beeps) == len(flashes) == len(events), (beeps, flashes)
    return [b - f for b, f in zip(beeps, flashes, strict=True)]


def test_sender_reports_keep_lip_sync_despite_video_delay_and_a_wrong_sender_clock(
    tmp_path: Path,
) -> None:
    sync_call(tmp_path / "rec", srs=True)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (entry,), warnings, _ = mux_av(rec, tmp_path / "out")
        placements = list(timeline_of(rec).placements.values())
    assert warnings == []
    assert {p.basis for p in placements} == {"sender_reports"}
    # One sender clock for both streams, 3.7 s away from the recorder's (+20 ms path delay).
    assert len({p.clock for p in placements}) == 1
    for p in placements:
        assert p.offset_ms == pytest.approx(-3700 + 20, abs=3)
    offsets = beep_flash_offsets(tmp_path / "out" / entry.path)
    assert all(abs(o) <= 0.040 for o in offsets), offsets


def test_without_sender_reports_the_arrival_fallback_is_reported(tmp_path: Path) -> None:
    sync_call(tmp_path / "rec", srs=False)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (entry,), _, _ = mux_av(rec, tmp_path / "out")
        timeline = timeline_of(rec)
    assert {p.basis for p in timeline.placements.values()} == {"arrival"}
    assert any("no RTCP Sender Reports" in w for w in timeline.warnings)
    offsets = beep_flash_offsets(tmp_path / "out" / entry.path)
    # The video's extra 80 ms of path delay cannot be seen without Sender Reports: it shows up
    # as the flash coming late, and the manifest says how the streams were placed.
    assert all(o == pytest.approx(-0.080, abs=0.040) for o in offsets), offsets
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert doc["outputs"][0]["av_offset_ms"] == pytest.approx(-80, abs=15)


def test_extracted_files_start_on_the_recorder_clock(tmp_path: Path) -> None:
    info = sync_call(tmp_path / "rec", srs=True, video_delay_ms=20)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        starts = {p.kind: p.start_unix_ms for p in timeline_of(rec).placements.values()}
    # Both started sending at the call start over a path of at least 20 ms (plus 0-5 ms of
    # jitter): the envelope finds the 20 ms, whatever the first packet's own jitter was.
    call_start = info.call_start.timestamp() * 1000
    for kind in ("audio", "video"):
        first = next(t for t in info.tracks() if t.kind == kind).first_arrival_unix_ms
        assert starts[kind] == pytest.approx(call_start + 20, abs=2)
        assert starts[kind] <= first + 1


DRIFT_EVENTS = (2.0, 8.0, 14.0, 20.0)


@pytest.mark.parametrize(
    ("drifting", "drift_ppm"), [("audio", 3000.0), ("audio", -3000.0), ("video", 3000.0)]
)
def test_a_drifting_media_clock_is_followed_gradually_and_lip_sync_holds(
    tmp_path: Path, drifting: str, drift_ppm: float
) -> None:
    """One of the sender's media clocks (a sound card's, a camera's) runs 0.3 % off the clock
    that stamps its Sender Reports: by 20 s its media time is 60 ms away from true time.
    rawcore follows the drift, audio inside the DTX pauses between beeps and video by
    stretching frame times, so every beep stays on its flash; placed at nominal RTP times the
    last beep would be 60 ms off."""
    stretch = {drifting: 1 + drift_ppm / 1e6}
    reports = SenderReports(interval_s=1.0, ntp_offset_s=1.5)
    a, v = stretch.get("audio", 1.0), stretch.get("video", 1.0)
    audio = TrackSpec(
        "audio",
        "opus",
        # Beeps and flashes sit at the media times a drifting clock sends at the true instants.
        source=OpusSource(
            22.0, dtx=True, tone_bursts=tuple((t / a, 0.3, BEEP_HZ) for t in DRIFT_EVENTS)
        ),
        impairments=Impairments(
            extra_delay_ms=20, jitter_ms=5, seed=3, clock_drift_ppm=(a - 1) * 1e6
        ),
        sender_reports=reports,
    )
    video = TrackSpec(
        "video",
        "vp8",
        source=VideoSource(
            22.0, fps=30, flashes=tuple(t / v for t in DRIFT_EVENTS), keyframe_interval=30
        ),
        impairments=Impairments(
            extra_delay_ms=100, jitter_ms=5, seed=4, clock_drift_ppm=(v - 1) * 1e6
        ),
        sender_reports=reports,
    )
    build_recording(tmp_path / "rec", [SessionSpec("alice", "s1", [audio, video])])
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (entry,), warnings, _ = mux_av(rec, tmp_path / "out")
        clocks = {p.kind: p.clock_ppm for p in timeline_of(rec).placements.values()}
    assert warnings == []
    assert clocks["audio"] == pytest.approx((a - 1) * 1e6, abs=30)
    assert clocks["video"] == pytest.approx((v - 1) * 1e6, abs=30)
    offsets = beep_flash_offsets(tmp_path / "out" / entry.path, events=DRIFT_EVENTS)
    assert all(abs(o) <= 0.040 for o in offsets), offsets
