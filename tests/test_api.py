"""The Python API's shortcuts: recording.extract_audio/extract_video/mux_av/process_all/timeline
and track.extract_audio/extract_video, checked on decoded output."""

from __future__ import annotations

from pathlib import Path

import pytest
import rawcore
from helpers.audio_truth import av_available, decode_audio
from helpers.gst import gst_available
from helpers.recording import multiparty_call
from helpers.video_truth import decode_video

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return multiparty_call(tmp_path_factory.mktemp("api") / "rec", duration_s=3.0).root


@pytest.mark.parametrize("suffix", [".mkv", ".ogg", ".webm"])
def test_track_extract_audio_writes_the_given_path(root: Path, tmp_path: Path, suffix: str) -> None:
    with rawcore.open_recording(root) as rec:
        track = next(t for t in rec.tracks if t.kind == "audio")
        entry = track.extract_audio(tmp_path / f"mine{suffix}")
    assert entry.path == f"mine{suffix}" and entry.track_ids == [track.track_id]
    dec = decode_audio(tmp_path / f"mine{suffix}")
    assert dec.errors == 0 and dec.duration_s == pytest.approx(entry.duration_ms / 1000, abs=0.03)
    assert not (tmp_path / "manifest.json").exists()


def test_track_extract_video_writes_the_given_path(root: Path, tmp_path: Path) -> None:
    with rawcore.open_recording(root) as rec:
        track = next(t for t in rec.tracks if t.kind == "video" and t.codec == "h264")
        entry = track.extract_video(tmp_path / "cam.mkv")
    dec = decode_video(tmp_path / "cam.mkv")
    assert dec.errors == 0 and dec.frames == entry.frames


def test_wrong_suffix_and_closed_recording_are_clear_errors(root: Path, tmp_path: Path) -> None:
    with rawcore.open_recording(root) as rec:
        audio = next(t for t in rec.tracks if t.kind == "audio")
        with pytest.raises(rawcore.InputError, match=r"\.mkv or \.mka"):
            audio.extract_audio(tmp_path / "x.mp4")
    with pytest.raises(rawcore.RawcoreError, match="closed"):
        audio.extract_audio(tmp_path / "x.mkv")


def test_recording_methods(root: Path, tmp_path: Path) -> None:
    with rawcore.open_recording(root) as rec:
        assert {p.basis for p in rec.timeline.placements.values()} == {"sender_reports"}
        audio, _, _ = rec.extract_audio(tmp_path / "a")
        video, _, _ = rec.extract_video(tmp_path / "v")
        muxed, _, _ = rec.mux_av(tmp_path / "m")
    assert len(audio) == 5 and len(video) == 4 and len(muxed) == 5
