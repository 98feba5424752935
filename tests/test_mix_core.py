"""The mix made in the core (`mix_opus`, and `mix-audio` on Opus recordings), checked on
DECODED output against a reference mix of the extracted tracks decoded independently (PyAV),
and against the source signal where packets were lost (FEC).

Captures come from GStreamer's opusenc through the recording builder; every output is decoded
with PyAV.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import rawcore
from helpers.audio_truth import av_available, capture_truth, decode_audio, tone_onsets
from helpers.gst import gst_available, source_signal
from helpers.recording import (
    Impairments,
    OpusSource,
    RecordingInfo,
    SessionSpec,
    TrackSpec,
    build_recording,
)
from rawcore import _core
from rawcore.errors import InputError
from rawcore.media.audio import extract_audio, plan_audio
from rawcore.media.mix import OpusTrack, mix_opus
from rawcore.media.outputs import Selection, open_archive_of
from rawcore.pipeline import process

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

RATE = 48_000
CEILING = 10 ** (-1 / 20)
FRAME = 960

#: participant, joins at (s after the call start), speech span, tone burst (start_s, len, Hz).
SPEAKERS = [
    ("user_1", 0.0, (0.0, 6.0), (1.0, 0.4, 440.0)),
    ("user_2", 0.7, (0.5, 4.0), (2.5, 0.4, 660.0)),
    ("user_3", 2.3, (0.0, 3.0), (1.2, 0.4, 880.0)),  # late joiner
]


def three_speakers(tmp: Path) -> RecordingInfo:
    return build_recording(
        tmp / "rec",
        [
            SessionSpec(
                user,
                "session_1",
                [
                    TrackSpec(
                        "audio",
                        "opus",
                        source=OpusSource(6.0, tone_bursts=(burst,)),
                        start_offset_s=joins,
                    )
                ],
            )
            for user, joins, _, burst in SPEAKERS
        ],
    )


def core_mix(
    root: Path,
    out: Path,
    *,
    fmt: str = "wav",
    fec: bool = True,
    gains: dict[str, float] | None = None,
) -> tuple[np.ndarray, float, object]:
    """`mix_opus` over every audio track of the recording at `root`; the decoded output and
    the mix's start (Unix ms)."""
    gains = gains or {}
    with rawcore.open_recording(root) as rec, contextlib.ExitStack() as stack:
        jobs, _ = plan_audio(rec, Selection(), fmt="mkv", stitch=False)
        archive = open_archive_of(rec)
        tracks = [
            OpusTrack(
                j.inputs(stack, archive),
                float(j.start_unix_ms or 0),
                j.user_id,
                gains.get(j.user_id, 0.0),
                j.payload_type,
            )
            for j in jobs
        ]
        start = min(t.start_unix_ms for t in tracks)
        report = mix_opus(tracks, out, fmt=fmt, fec=fec)  # type: ignore[arg-type]
    return decode_audio(out).samples, start, report


def decode_with_libopus(path: Path) -> np.ndarray:
    """Every sample of an extracted Opus file, demuxed and decoded by PyAV with FFmpeg's
    libopus wrapper (FFmpeg's own Opus decoder places SILK output a few samples off libopus,
    which is what players and the core use)."""
    import av

    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ctx = av.CodecContext.create("libopus", "r")
        ctx.extradata = stream.codec_context.extradata
        for packet in container.demux(stream):
            for frame in ctx.decode(packet):
                samples = frame.to_ndarray().reshape(-1).astype(np.float32)
                if frame.format.name.startswith("s16"):
                    samples /= 32768
                chunks.append(samples)
    return np.concatenate(chunks)


def reference_mix(root: Path, out: Path, start: float, *, fec: bool = True) -> np.ndarray:
    """The tracks extracted to files, each decoded by PyAV on its own, placed at its start and
    summed (no limiting: the levels here stay below the ceiling)."""
    with rawcore.open_recording(root) as rec:
        entries = extract_audio(rec, out, fec=fec).entries
    placed = []
    for e in entries:
        samples = decode_with_libopus(out / e.path)
        offset = round((float(e.start_unix_ms or 0) - start) * RATE / 1000)
        placed.append((offset, samples))
    total = max(o + len(s) for o, s in placed)
    mix = np.zeros(total, np.float64)
    for offset, samples in placed:
        mix[offset : offset + len(samples)] += samples
    return mix


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    n = min(len(ref), len(got))
    noise = float(np.sum((ref[:n] - got[:n]) ** 2))
    return 10 * np.log10(float(np.sum(ref[:n] ** 2)) / max(noise, 1e-12))


def test_core_mix_equals_a_mix_of_the_extracted_tracks_decoded_independently(
    tmp_path: Path,
) -> None:
    info = three_speakers(tmp_path)
    got, start, report = core_mix(info.root, tmp_path / "mix.wav")
    ref = reference_mix(info.root, tmp_path / "tracks", start)
    assert abs(len(got) - len(ref)) <= RATE // 1000, (len(got), len(ref))
    assert snr_db(ref, got) >= 30.0
    # Each speaker's burst starts where it does in the reference (±10 ms), and only once.
    for _, _, _, (_, _, freq) in SPEAKERS:
        want = tone_onsets(ref, RATE, freq)
        found = tone_onsets(got, RATE, freq)
        assert len(found) == len(want) == 1, (freq, found, want)
        assert found[0] == pytest.approx(want[0], abs=0.010)
    assert {r["label"] for r in report.inputs} == {s[0] for s in SPEAKERS}  # type: ignore[attr-defined]


@pytest.mark.parametrize("gain_db", [-6.0, 6.0])
def test_a_track_gain_scales_that_track_in_the_mix(tmp_path: Path, gain_db: float) -> None:
    info = three_speakers(tmp_path)
    plain, _, _ = core_mix(info.root, tmp_path / "plain.wav")
    gained, _, _ = core_mix(info.root, tmp_path / "gained.wav", gains={"user_1": gain_db})
    # user_1 alone speaks 1.0-1.4 s (its 440 Hz burst): the level there follows the gain.
    a, b = round(1.05 * RATE), round(1.35 * RATE)
    ratio = float(np.sqrt(np.mean(gained[a:b] ** 2) / np.mean(plain[a:b] ** 2)))
    assert 20 * np.log10(ratio) == pytest.approx(gain_db, abs=0.5)


def test_a_loud_sum_is_limited_and_never_clips(tmp_path: Path) -> None:
    info = three_speakers(tmp_path)
    got, _, report = core_mix(
        info.root, tmp_path / "loud.wav", gains={u: 12.0 for u, *_ in SPEAKERS}
    )
    assert float(np.abs(got).max()) <= CEILING + 1 / 32768
    assert report.limited_ms > 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("case", "block"),
    [
        ("quiet, bit exact", 0.5),
        ("at the ceiling, bit exact", CEILING * 0.999),
    ],
)
def test_limiter_leaves_signal_below_the_ceiling_untouched(case: str, block: float) -> None:
    x = (block * np.sin(np.arange(20_000) / 7.0)).astype(np.float32).reshape(-1, 1)
    lim = _core.MixLimiter(RATE, 1)
    y = np.concatenate([lim.process(x[:7_000]), lim.process(x[7_000:]), lim.flush()])
    assert np.array_equal(y, x), case
    assert lim.limited_blocks == 0


def test_limiter_reduces_gain_only_around_peaks_above_the_ceiling() -> None:
    x = (0.3 * np.sin(np.arange(96_000) / 7.0)).astype(np.float32).reshape(-1, 1)
    x[48_000:48_480] *= 8  # 10 ms at 2.4: 7.6 dB over the ceiling
    lim = _core.MixLimiter(RATE, 1)
    y = np.concatenate([lim.process(x), lim.flush()])
    assert float(np.abs(y).max()) <= lim.ceiling
    assert np.array_equal(y[: 48_000 - 6 * 48], x[: 48_000 - 6 * 48])  # before the look-ahead
    assert np.array_equal(y[48_480 + 48 * 48 :], x[48_480 + 48 * 48 :])  # after the release
    assert lim.clipped_samples == 0


@pytest.mark.parametrize(("rate", "channels"), [(48_000, 3), (0, 1)])
def test_limiter_refuses_bad_arguments(rate: int, channels: int) -> None:
    with pytest.raises(InputError):
        _core.MixLimiter(rate, channels)


def test_mix_audio_of_an_opus_recording_is_made_in_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = three_speakers(tmp_path)

    def no_extraction(*_: object, **__: object) -> object:
        raise AssertionError("the core mix writes no track files")

    monkeypatch.setattr(process, "extract_audio", no_extraction)
    with rawcore.open_recording(info.root) as rec:
        result = process.mix_recording(rec, tmp_path / "out", fmt="mp3")
    (entry,) = result.entries
    dec = decode_audio(tmp_path / "out" / entry.path)
    assert dec.duration_s == pytest.approx(entry.duration_ms / 1000, abs=0.060)
    assert entry.kind == "mix" and entry.codec == "mp3"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [entry.path, "manifest.json"]
    )


# ---------------------------------------------------------------------------------------------
# FEC in the mix: lost slots come back from the next packet's LBRR, not from concealment

DURATION_S = 20.0
SPEECH = ((0.0, DURATION_S),)
SEQ0 = 1_000
TS0 = 0x0010_0000


def slot_snr(source: np.ndarray, decoded: np.ndarray, slots: list[int], lag: int) -> float:
    signal = noise = 0.0
    for k in slots:
        ref = source[k * FRAME : (k + 1) * FRAME]
        got = decoded[k * FRAME + lag : (k + 1) * FRAME + lag]
        if len(got) < FRAME or len(ref) < FRAME or k * FRAME + lag < 0:
            continue
        signal += float(np.sum(ref**2))
        noise += float(np.sum((ref - got) ** 2))
    return 10 * np.log10(signal / max(noise, 1e-12))


def test_fec_rebuilds_lost_slots_in_the_mix(tmp_path: Path) -> None:
    from helpers.audio_truth import read_rtpdump_packets

    src = OpusSource(
        DURATION_S,
        speech=SPEECH,
        fec=True,
        bandwidth="wideband",
        bitrate=24_000,
        audio_type="voice",
    )
    spec = TrackSpec(
        "audio",
        "opus",
        source=src,
        ts_offset=TS0,
        seq_offset=SEQ0,
        impairments=Impairments(loss=0.06, seed=11),
        sender_reports=None,
    )
    info = build_recording(tmp_path / "rec", [SessionSpec("user_1", "session_1", [spec])])
    track = info.sessions[0].tracks[0]
    received = {
        (int.from_bytes(rtp[2:4], "big") - SEQ0) & 0xFFFF
        for _, rtp in read_rtpdump_packets(track.rtpdump_path)
    }
    timing = capture_truth(track.rtpdump_path)
    offset = ((timing.first_ts - TS0) & 0xFFFFFFFF) + timing.start_rel
    source = source_signal(DURATION_S, speech=SPEECH)
    slots = len(source) // FRAME
    lost = [
        k
        for k in range(slots)
        if k not in received
        and float(np.sqrt(np.mean(source[k * FRAME : (k + 1) * FRAME] ** 2))) > 0.02
    ]
    assert len(lost) >= 10
    kept = [k for k in range(slots) if k in received][:200]
    snr = {}
    for fec in (True, False):
        got, _, _ = core_mix(info.root, tmp_path / f"mix-{fec}.wav", fec=fec)
        decoded = np.concatenate([np.zeros(offset, np.float32), got])
        lag = max(range(300, 340), key=lambda d: slot_snr(source, decoded, kept, d))
        snr[fec] = slot_snr(source, decoded, lost, lag)
    assert snr[True] >= snr[False] + 5.0, snr


# ---------------------------------------------------------------------------------------------
# DTX: silent stretches are not decoded, and the mix sounds the same

#: Two participants talking in turns, DTX between their turns (speech spans in s).
TURNS = {"user_1": ((0.3, 2.0), (6.0, 2.0)), "user_2": ((3.0, 2.0), (9.0, 1.5))}


def test_dtx_silence_is_not_decoded_and_the_mix_sounds_the_same(tmp_path: Path) -> None:
    info = build_recording(
        tmp_path / "rec",
        [
            SessionSpec(
                user,
                "session_1",
                [
                    TrackSpec(
                        "audio",
                        "opus",
                        source=OpusSource(11.0, dtx=True, speech=spans, audio_type="voice"),
                    )
                ],
            )
            for user, spans in TURNS.items()
        ],
    )
    got, start, _ = core_mix(info.root, tmp_path / "mix.wav")
    ref = reference_mix(info.root, tmp_path / "tracks", start)
    assert abs(len(got) - len(ref)) <= RATE // 1000, (len(got), len(ref))
    assert snr_db(ref, got) >= 30.0
    # Where each turn starts after a DTX silence (the decoder meets a frame after skipped
    # fill), the first 100 ms match the reference as well as the rest does.
    for spans in TURNS.values():
        for begin, _ in spans[1:]:
            a = round((begin - 0.02) * RATE)
            b = a + RATE // 10
            assert snr_db(ref[a:b], got[a:b]) >= 30.0, begin
    # ... and most of the silence was never decoded.
    with rawcore.open_recording(info.root) as rec, contextlib.ExitStack() as stack:
        jobs, _ = plan_audio(rec, Selection(), fmt="mkv", stitch=False)
        archive = open_archive_of(rec)
        mixer = _core.OpusMix([(j.inputs(stack, archive), 0, 1.0, j.payload_type) for j in jobs])
        while mixer.next_block() is not None:
            pass
        filled = sum(r.dtx_filled_ms for r in mixer.reports)
        assert mixer.skipped_ms >= 0.7 * filled, (mixer.skipped_ms, filled)
