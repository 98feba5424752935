"""Dial-in audio (G.711 PCMU/PCMA, G.722): decoded by the core, stored as FLAC, same timeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rawcore
from helpers.audio_truth import av_available, decode_audio, tone_onsets
from helpers.gst import gst_available, pcm_packets
from helpers.recording import Impairments, SessionSpec, TrackSpec, build_recording
from rawcore.media.audio import extract_audio

pytestmark = pytest.mark.skipif(
    not (gst_available("mulawenc", "alawenc", "avenc_g722") and av_available()),
    reason="needs GStreamer (with libav) and PyAV",
)

BURSTS = [(0.5, 0.5, 700.0), (2.25, 0.5, 1100.0)]


def dial_in(root: Path, codec: str, *, loss: float = 0.0) -> float:
    packets = pcm_packets(codec, 3.0, tone_bursts=BURSTS)
    spec = TrackSpec(
        "audio",
        codec,
        packets=packets,  # type: ignore[arg-type]
        impairments=Impairments(loss=loss, seed=5),
    )
    build_recording(root, [SessionSpec("phone", "call_leg", [spec])])
    return len(packets) * 0.020  # 20 ms packets: the true span


@pytest.mark.parametrize(("codec", "rate"), [("pcmu", 8000), ("pcma", 8000), ("g722", 16000)])
@pytest.mark.parametrize("fmt", ["mkv", "ogg"])
def test_dial_in_audio_is_lossless_flac_on_the_timeline(
    tmp_path: Path, codec: str, rate: int, fmt: str
) -> None:
    span = dial_in(tmp_path / "rec", codec)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (entry,), warnings, _ = extract_audio(rec, tmp_path / "out", fmt=fmt)  # type: ignore[arg-type]
    assert warnings == []
    assert entry.codec == "flac" and entry.sample_rate == rate
    dec = decode_audio(tmp_path / "out" / entry.path)
    assert dec.codec_name == "flac" and dec.rate == rate and dec.errors == 0
    assert dec.duration_s == pytest.approx(span, abs=0.020)
    for start, _, freq in BURSTS:
        onsets = tone_onsets(dec.samples, dec.rate, freq)
        # G.711/G.722 have no look-ahead; the resampler in the test chain adds < 2 ms.
        assert any(abs(o - start) <= 0.020 for o in onsets), (freq, onsets)


def test_lost_g711_packets_become_silence_of_the_same_length(tmp_path: Path) -> None:
    span = dial_in(tmp_path / "rec", "pcmu", loss=0.1)
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (entry,), _, _ = extract_audio(rec, tmp_path / "out")
    assert entry.packets_lost > 0 and entry.loss_filled_ms >= 20 * entry.packets_lost - 40
    dec = decode_audio(tmp_path / "out" / entry.path)
    assert dec.duration_s == pytest.approx(span, abs=0.040)  # a lost last packet shortens it
    assert np.isfinite(dec.samples).all()


def test_webm_cannot_hold_pcm_and_says_so(tmp_path: Path) -> None:
    dial_in(tmp_path / "rec", "pcma")
    with (
        rawcore.open_recording(tmp_path / "rec") as rec,
        pytest.raises(rawcore.InputError, match="WebM cannot hold"),
    ):
        extract_audio(rec, tmp_path / "out", fmt="webm")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []
