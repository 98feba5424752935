"""extract-audio, checked on DECODED output: durations, tone onsets, fills, containers.

Captures come from GStreamer's opusenc/rtpopuspay (and mulawenc/alawenc/rtppcm*pay); every
output is decoded with PyAV (FFmpeg's decoders), never trusted on our writer's word.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rawcore
from helpers.audio_truth import (
    OPUS_LOOKAHEAD_S,
    AudioTruth,
    av_available,
    capture_truth,
    decode_audio,
    dtx_call,
    frame_size_call,
    impaired_call,
    opus_call,
    rejoin_call,
    tone_onsets,
    wrap_call,
)
from helpers.gst import gst_available, source_signal
from helpers.recording import OpusSource, SessionSpec, TrackSpec, build_recording
from rawcore.media.audio import extract_audio
from rawcore.media.outputs import Selection

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

TOL_S = 0.020  # the bar: duration and onsets within 20 ms


def extract(root: Path, out: Path, **kwargs: object) -> list[rawcore.Recording]:
    with rawcore.open_recording(root) as rec:
        entries, warnings, _ = extract_audio(rec, out, **kwargs)  # type: ignore[arg-type]
    assert warnings == [], warnings
    return entries  # type: ignore[return-value]


def only_output(out: Path) -> Path:
    files = sorted(p for p in out.iterdir() if p.name != "manifest.json")
    assert len(files) == 1, files
    return files[0]


def assert_onsets(path: Path, truth: AudioTruth, *, skip_lost: bool = False) -> None:
    dec = decode_audio(path)
    for start, _, freq in truth.bursts:
        want = next(o for o, b in zip(truth.onsets_s, truth.bursts, strict=True) if b[0] == start)
        found = tone_onsets(dec.samples, dec.rate, freq)
        near = [f for f in found if abs(f - (want + OPUS_LOOKAHEAD_S)) < 0.25]
        if skip_lost:
            # A burst whose first packets were lost starts late (concealment is not the tone),
            # never early: placement is still checked to the same tolerance on the early side.
            if near:
                assert want + OPUS_LOOKAHEAD_S - TOL_S <= near[0] <= want + 0.15
            continue
        assert near, f"{freq} Hz burst expected at {want:.3f}s, found {found}"
        assert near[0] == pytest.approx(want + OPUS_LOOKAHEAD_S, abs=TOL_S)


def test_dtx_silences_are_filled_to_the_wall_clock_span(tmp_path: Path) -> None:
    truth = dtx_call(tmp_path / "rec", duration_s=30.0)
    entries = extract(truth.recording.root, tmp_path / "out")
    out = only_output(tmp_path / "out")
    dec = decode_audio(out)
    assert dec.errors == 0
    assert dec.duration_s == pytest.approx(truth.span_s, abs=TOL_S)
    assert entries[0].dtx_filled_ms > 10_000  # most of the 30 s was DTX silence
    assert entries[0].duration_ms == pytest.approx(truth.span_s * 1000, abs=20)
    assert_onsets(out, truth)


# Speech-like spans (SILK/hybrid: the DTX frames that open each silence are hybrid, so the
# fills copy that coding, `7b 06`) and a tone burst (CELT), with DTX silences between them.
QUIET_SPEECH = ((1.0, 2.0), (6.0, 1.5), (11.0, 3.0))
QUIET_TONES = ((17.0, 1.5, 440.0),)
QUIET_TS0 = 0x1234_5678


def window_rms(samples: np.ndarray, rate: int, window_s: float = 0.020) -> np.ndarray:
    n = round(window_s * rate)
    count = len(samples) // n
    return np.sqrt(np.mean(samples[: count * n].astype(np.float64).reshape(count, n) ** 2, 1))


def far_from_sound(
    source: np.ndarray, offset: int, windows: int, n: int, margin: int
) -> np.ndarray:
    """Per output window of `n` samples: no nonzero source sample within `margin` samples of it.
    Output sample k plays source sample k + `offset`."""
    loud = np.concatenate(([0], np.cumsum(source != 0)))
    start = np.arange(windows) * n + offset - margin
    end = start + n + 2 * margin
    lo, hi = np.clip(start, 0, len(source)), np.clip(end, 0, len(source))
    return np.asarray(loud[hi] - loud[lo] == 0)


@pytest.mark.parametrize("fmt", ["mkv", "webm", "ogg"])
def test_dtx_silence_decodes_to_silence_not_noise(tmp_path: Path, fmt: str) -> None:
    """Where the source is digital silence (at least 150 ms from any sound), no 20 ms window of
    the decoded output is louder than RMS 0.02. Laced fill packets of empty hybrid frames used to
    decode with FFmpeg to noise at RMS 0.15 there (7.7 s of this 20 s capture)."""
    duration = 20.0
    source = OpusSource(duration, dtx=True, speech=QUIET_SPEECH, tone_bursts=QUIET_TONES)
    spec = TrackSpec("audio", "opus", source=source, ts_offset=QUIET_TS0)
    info = build_recording(tmp_path / "rec", [SessionSpec("user_1", "session_1", [spec])])
    extract(info.root, tmp_path / "out", fmt=fmt)
    dec = decode_audio(only_output(tmp_path / "out"))
    assert dec.errors == 0
    timing = capture_truth(info.sessions[0].tracks[0].rtpdump_path)
    # The output starts at the first packet; the container's pre-skip removes the lookahead.
    offset = ((timing.first_ts - QUIET_TS0) & 0xFFFFFFFF) + timing.start_rel
    signal = source_signal(duration, tone_bursts=QUIET_TONES, speech=QUIET_SPEECH)
    rms = window_rms(dec.samples, dec.rate)
    quiet = far_from_sound(signal, offset, len(rms), round(0.020 * dec.rate), round(0.150 * 48_000))
    assert quiet.sum() * 0.020 > 8.0, "the capture must hold seconds of DTX silence"
    noisy = np.flatnonzero(quiet & (rms > 0.02))
    assert noisy.size == 0, f"{noisy.size * 20} ms of noise in silence, from {noisy[0] * 0.02} s"
    assert rms[~quiet].max() > 0.1, "the speech and the tone are still there"


def test_fix_dtx_false_lets_the_audio_shrink(tmp_path: Path) -> None:
    truth = dtx_call(tmp_path / "rec", duration_s=20.0)
    extract(truth.recording.root, tmp_path / "out", fix_dtx=False)
    dec = decode_audio(only_output(tmp_path / "out"))
    assert dec.duration_s < truth.span_s - 5.0


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("5% loss", {"loss": 0.05, "seed": 3}),
        ("reordering and duplicates", {"reorder": 0.1, "duplicate": 0.05, "jitter_ms": 15}),
        ("loss with DTX", {"loss": 0.05, "dtx": True, "seed": 4}),
    ],
)
def test_impaired_streams_keep_the_timeline(tmp_path: Path, case: str, kwargs: dict) -> None:
    truth = impaired_call(tmp_path / "rec", duration_s=10.0, **kwargs)
    entries = extract(truth.recording.root, tmp_path / "out")
    out = only_output(tmp_path / "out")
    dec = decode_audio(out)
    assert dec.errors == 0, case
    assert dec.duration_s == pytest.approx(truth.span_s, abs=TOL_S), case
    if kwargs.get("loss"):
        assert entries[0].packets_lost > 0 and entries[0].loss_filled_ms > 0, case
    assert_onsets(out, truth, skip_lost=bool(kwargs.get("loss")))


def test_sequence_and_timestamp_wraps(tmp_path: Path) -> None:
    truth = wrap_call(tmp_path / "rec")
    extract(truth.recording.root, tmp_path / "out")
    out = only_output(tmp_path / "out")
    dec = decode_audio(out)
    assert dec.duration_s == pytest.approx(truth.span_s, abs=TOL_S)
    assert_onsets(out, truth)


@pytest.mark.parametrize("frame_ms", [10, 20, 40, 60])
def test_packet_durations_come_from_the_toc(tmp_path: Path, frame_ms: int) -> None:
    truth = frame_size_call(tmp_path / "rec", frame_ms=frame_ms)
    extract(truth.recording.root, tmp_path / "out")
    out = only_output(tmp_path / "out")
    dec = decode_audio(out)
    assert dec.duration_s == pytest.approx(truth.span_s, abs=TOL_S)
    assert_onsets(out, truth)


def test_stitch_joins_sessions_on_the_wall_clock(tmp_path: Path) -> None:
    call = rejoin_call(tmp_path / "rec")
    entries = extract(call.recording.root, tmp_path / "out", stitch=True)
    (entry,) = entries
    assert entry.session_id is None and entry.stitched
    dec = decode_audio(tmp_path / "out" / entry.path)
    assert dec.duration_s == pytest.approx(call.span_s, abs=0.030)
    assert entry.pause_filled_ms == pytest.approx(call.pause_s * 1000, abs=60)
    for onset, (_, _, freq) in zip(
        call.onsets_s, [b for s in call.sessions for b in s.bursts], strict=True
    ):
        found = tone_onsets(dec.samples, dec.rate, freq)
        assert any(abs(f - (onset + OPUS_LOOKAHEAD_S)) <= 0.030 for f in found), (onset, found)


def test_sessions_are_separate_files_by_default(tmp_path: Path) -> None:
    call = rejoin_call(tmp_path / "rec")
    entries = extract(call.recording.root, tmp_path / "out")
    assert sorted(e.session_id for e in entries) == ["session_1", "session_2"]
    for entry, truth in zip(
        sorted(entries, key=lambda e: e.session_id or ""), call.sessions, strict=True
    ):
        dec = decode_audio(tmp_path / "out" / entry.path)
        assert dec.duration_s == pytest.approx(truth.span_s, abs=TOL_S)


@pytest.mark.parametrize(
    ("fmt", "codec_name"), [("mkv", "opus"), ("mka", "opus"), ("webm", "opus"), ("ogg", "opus")]
)
def test_every_container_decodes_with_the_right_duration(
    tmp_path: Path, fmt: str, codec_name: str
) -> None:
    truth = opus_call(tmp_path / "rec", duration_s=4.0, speech=[(1.0, 0.5, 660.0)])
    extract(truth.recording.root, tmp_path / "out", fmt=fmt)
    out = only_output(tmp_path / "out")
    assert out.suffix == f".{fmt}"
    dec = decode_audio(out)
    assert dec.codec_name == codec_name and dec.errors == 0
    assert dec.duration_s == pytest.approx(truth.span_s, abs=TOL_S)
    if dec.container_duration_s is not None:
        assert dec.container_duration_s == pytest.approx(truth.span_s, abs=0.05)
    assert_onsets(out, truth)


def test_matroska_declares_opus_codec_delay_and_preroll(tmp_path: Path) -> None:
    import av

    truth = opus_call(tmp_path / "rec", duration_s=2.0)
    extract(truth.recording.root, tmp_path / "out")
    with av.open(str(only_output(tmp_path / "out"))) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert stream.codec_context.sample_rate == 48_000
        head = bytes(stream.codec_context.extradata or b"")
        assert head[:8] == b"OpusHead" and head[9] == stream.codec_context.channels


def test_manifest_describes_every_output(tmp_path: Path) -> None:
    truth = opus_call(tmp_path / "rec", duration_s=3.0, start_offset_s=1.0)
    extract(truth.recording.root, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert doc["schema"] == "rawcore.manifest/1"
    (entry,) = doc["outputs"]
    assert (tmp_path / "out" / entry["path"]).stat().st_size == entry["bytes"]
    assert entry["kind"] == "audio" and entry["codec"] == "opus"
    assert entry["user_id"] == "user_1" and entry["session_id"] == "session_1"
    assert entry["start_unix_ms"] == truth.track.first_arrival_unix_ms
    assert entry["track_ids"] == [truth.track.track_id]
    assert entry["path"].startswith("individual_default_call-123_user_1_session_1_audio_only_")


def test_filters_select_outputs(tmp_path: Path) -> None:
    call = rejoin_call(tmp_path / "rec")
    with rawcore.open_recording(call.recording.root) as rec:
        entries, _, _ = extract_audio(
            rec, tmp_path / "out", selection=Selection(session_id="session_2")
        )
    assert [e.session_id for e in entries] == ["session_2"]


def test_failed_output_leaves_no_file_behind(tmp_path: Path) -> None:
    truth = opus_call(tmp_path / "rec", duration_s=2.0)
    with rawcore.open_recording(truth.recording.root) as rec:
        truth.rtpdump_path.write_bytes(b"")  # the capture vanishes after it was analysed
        with pytest.raises(rawcore.RawcoreError):
            extract_audio(rec, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


# --- the CLI ------------------------------------------------------------------------------

GUIDE_LINES = [
    "extract-audio --input-file recording.tar.gz --output ./out",
    "extract-audio --input-file recording.tar.gz --output ./out --user-id user_2",
    "extract-audio --input-file recording.tar.gz --output ./out --track-id {track}",
    "extract-audio --input-file recording.tar.gz --output ./out --fill-gaps=false",
]


@pytest.fixture(scope="module")
def multiparty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from helpers.recording import multiparty_call, pack_targz

    tmp = tmp_path_factory.mktemp("ea")
    info = multiparty_call(tmp / "rec", duration_s=4.0)
    track = next(
        t.track_id for t in info.tracks() if t.participant_id == "user_3" and t.kind == "audio"
    )
    return pack_targz(info.root, tmp / "recording.tar.gz"), track


@pytest.mark.parametrize("line", GUIDE_LINES)
def test_guide_command_lines(line: str, multiparty: tuple[Path, str], tmp_path: Path) -> None:
    archive, track = multiparty
    args = [
        str(archive) if a == "recording.tar.gz" else str(tmp_path / "out") if a == "./out" else a
        for a in line.format(track=track).split()
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "rawcore", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    written = proc.stdout.split()
    assert written and all((tmp_path / "out" / w).exists() for w in written)
    for name in written:
        assert decode_audio(tmp_path / "out" / name).errors == 0
    if "--user-id" in args:
        assert all("_user_2_" in w for w in written)
    if "--track-id" in args:
        assert len(written) == 1 and "_user_3_" in written[0]
    if "--track-id" not in args and "--user-id" not in args:
        # 5 audio tracks: user_1 x2 sessions, user_2 mic + screen-share audio, user_3.
        assert len(written) == 5
        assert sum("_shared_audio_only_" in w for w in written) == 1
