"""mix_audio, checked on DECODED output: placement, formats, the limiter, gains, loudness.

Inputs are WAV files synthesised here (tones at known times) and, end to end, the Opus files
`extract-audio` writes from a built recording. Every output is decoded with PyAV (FFmpeg).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rawcore
from helpers.audio_truth import OPUS_LOOKAHEAD_S, av_available, decode_audio, tone_onsets
from helpers.gst import gst_available
from helpers.recording import OpusSource, SessionSpec, TrackSpec, build_recording
from rawcore.errors import InputError
from rawcore.mix import MIX_FORMATS, MixInput, mix_audio, mixed_name

pytestmark = pytest.mark.skipif(not av_available(), reason="needs PyAV")

RATE = 48_000
T0 = 1_772_359_200_000.0
CEILING = 10 ** (-1 / 20)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """Mono float samples as 16-bit WAV (rounded, so the file holds exactly known values)."""
    import av

    ints = np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tones(seconds: float, bursts: list[tuple[float, float, float]], amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    x = np.zeros_like(t)
    for start, length, freq in bursts:
        on = (t >= start) & (t < start + length)
        x[on] = amp * np.sin(2 * np.pi * freq * (t[on] - start))
    return x


def read_s16(path: Path) -> np.ndarray:
    """Every sample of a lossless output as int16, (n, channels)."""
    import av

    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            arr = frame.to_ndarray()
            assert frame.format.name in ("s16", "s16p"), frame.format.name
            channels = len(frame.layout.channels)
            chunks.append(arr.reshape(-1, channels) if not frame.format.is_planar else arr.T)
    return np.concatenate(chunks)


@pytest.fixture
def three_speakers(tmp_path: Path) -> tuple[list[MixInput], dict[float, float]]:
    """Three participants, each with one burst; the third joins late. Returns the inputs and
    {frequency: onset in s from the mix start}."""
    a = write_wav(tmp_path / "a.wav", tones(4.0, [(1.0, 0.5, 440.0)]))
    b = write_wav(tmp_path / "b.wav", tones(4.0, [(1.5, 0.5, 660.0)]))
    c = write_wav(tmp_path / "c.wav", tones(2.5, [(0.5, 0.5, 880.0)]))
    inputs = [
        MixInput(a, T0, "user_a"),
        MixInput(b, T0 + 250.0, "user_b"),
        MixInput(c, T0 + 3_100.0, "user_c"),  # late joiner; the mix runs to 5.6 s
    ]
    return inputs, {440.0: 1.0, 660.0: 1.75, 880.0: 3.6}


# Codec delay and padding: FFmpeg trims MP3's LAME delay (from the LAME/Xing header) and Ogg
# Opus pre-skip; AAC's priming is removed by the MP4 edit list, but its last frame is padded
# (up to 1024 samples, 21 ms at 48 kHz), so M4A can read a little long.
DURATION_TOL_S = {"mp3": 0.002, "opus": 0.002, "m4a": 0.030, "flac": 0.0, "wav": 0.0}


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("fmt", MIX_FORMATS)
def test_every_format_places_each_speaker_at_their_time(
    tmp_path: Path,
    three_speakers: tuple[list[MixInput], dict[float, float]],
    fmt: str,
    channels: int,
) -> None:
    inputs, onsets = three_speakers
    out = tmp_path / f"mix.{fmt}"
    report = mix_audio(inputs, out, fmt=fmt, channels=channels)  # type: ignore[arg-type]
    dec = decode_audio(out)
    assert dec.errors == 0 and dec.rate == RATE and dec.channels == channels
    assert report.duration_ms == 5600
    assert 0 <= dec.duration_s - 5.6 <= DURATION_TOL_S[fmt] + 1e-9
    for freq, want in onsets.items():
        found = tone_onsets(dec.samples, dec.rate, freq)
        assert len(found) == 1, (freq, found)
        # Lossless and lossy alike: the encoder delay is trimmed, so placement is exact.
        assert found[0] == pytest.approx(want, abs=0.003), (fmt, freq, found)
    assert [r["start_ms"] for r in report.inputs] == [0, 250, 3100]
    assert [r["duration_ms"] for r in report.inputs] == [4000, 4000, 2500]
    assert report.limited_ms == 0 and report.peak_dbfs == pytest.approx(-6.02, abs=0.01)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_mix_window_trims_and_pads_to_start_and_end(
    tmp_path: Path, three_speakers: tuple[list[MixInput], dict[float, float]]
) -> None:
    inputs, onsets = three_speakers
    out = tmp_path / "mix.wav"
    report = mix_audio(inputs, out, fmt="wav", start_unix_ms=T0 + 500, end_unix_ms=T0 + 8_000)
    dec = decode_audio(out)
    assert dec.duration_s == 7.5 and report.duration_ms == 7500
    for freq, want in onsets.items():
        assert tone_onsets(dec.samples, RATE, freq) == pytest.approx([want - 0.5], abs=0.003)
    assert not np.any(dec.samples[round(5.1 * RATE) :])  # silence after every input ended
    assert report.inputs[0]["start_ms"] == -500


def test_three_full_scale_inputs_never_pass_the_ceiling(tmp_path: Path) -> None:
    t = np.arange(3 * RATE) / RATE
    inputs = [
        MixInput(write_wav(tmp_path / f"{k}.wav", 0.999 * np.sin(2 * np.pi * f * t)), T0, f"u{k}")
        for k, f in enumerate((220.0, 330.0, 495.0))
    ]
    for fmt in ("wav", "flac"):
        for channels in (1, 2):
            out = tmp_path / f"loud{channels}.{fmt}"
            report = mix_audio(inputs, out, fmt=fmt, channels=channels)  # type: ignore[arg-type]
            pcm = read_s16(out)
            assert pcm.shape == (3 * RATE, channels)
            assert np.abs(pcm.astype(np.int32)).max() <= round(CEILING * 32768)
            assert report.peak_dbfs <= -1.0 + 1e-6
            assert report.limited_ms > 2500  # the sum is over the ceiling most of the time
            # Limited, not silenced: the loudest stretches still reach close to the ceiling.
            assert np.abs(pcm).max() > 0.95 * CEILING * 32768


def test_a_single_peak_is_caught_by_the_look_ahead(tmp_path: Path) -> None:
    x = np.zeros(RATE)
    x[RATE // 2] = 0.99  # one sample: nothing before it warns but the look-ahead
    y = x.copy()
    y[RATE // 2] = 0.99
    inputs = [
        MixInput(write_wav(tmp_path / "x.wav", x), T0, "x"),
        MixInput(write_wav(tmp_path / "y.wav", y), T0, "y"),
    ]
    report = mix_audio(inputs, tmp_path / "peak.wav", fmt="wav")
    pcm = read_s16(tmp_path / "peak.wav")[:, 0].astype(np.int32)
    assert np.abs(pcm).max() <= round(CEILING * 32768)
    assert pcm[RATE // 2] >= round(CEILING * 32768) - 1
    assert 0 < report.limited_ms < 200  # attack plus release around one peak


def test_quiet_inputs_pass_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    signals = [rng.uniform(-0.25, 0.25, 2 * RATE) for _ in range(3)]
    inputs = [
        MixInput(write_wav(tmp_path / f"q{k}.wav", s), T0 + 100 * k, f"u{k}")
        for k, s in enumerate(signals)
    ]
    report = mix_audio(inputs, tmp_path / "quiet.flac", fmt="flac")
    assert report.limited_ms == 0
    want = np.zeros(round(2.2 * RATE), dtype=np.int32)
    for k, s in enumerate(signals):
        ints = np.clip(np.round(s * 32768), -32768, 32767).astype(np.int32)
        at = round(0.1 * k * RATE)
        want[at : at + len(ints)] += ints
    got = read_s16(tmp_path / "quiet.flac")[:, 0].astype(np.int32)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("gain_db", [-6.0, 3.0])
def test_gain_db_scales_the_input(tmp_path: Path, gain_db: float) -> None:
    x = tones(1.0, [(0.0, 1.0, 1000.0)], amp=0.25)
    inputs = [MixInput(write_wav(tmp_path / "t.wav", x), T0, "t", gain_db=gain_db)]
    report = mix_audio(inputs, tmp_path / "g.wav", fmt="wav")
    dec = decode_audio(tmp_path / "g.wav")
    ratio = np.abs(dec.samples).max() / 0.25
    assert 20 * np.log10(ratio) == pytest.approx(gain_db, abs=0.01)
    assert report.inputs[0]["gain_db"] == gain_db


def loudness_of(samples: np.ndarray) -> float:
    """EBU R128 integrated loudness of mono float samples, by FFmpeg's ebur128 filter."""
    import av

    graph = av.filter.Graph()
    src = graph.add_abuffer(format="flt", sample_rate=RATE, layout="mono", time_base=f"1/{RATE}")
    meter = graph.add("ebur128", "metadata=1")
    sink = graph.add("abuffersink")
    src.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(
        samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono"
    )
    frame.sample_rate = RATE
    frame.pts = 0
    src.push(frame)
    src.push(None)
    value = None
    while True:
        try:
            out = sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            break
        value = out.metadata.get("lavfi.r128.I", value)
    assert value is not None
    return float(value)


def test_normalize_evens_out_quiet_and_loud_speakers(tmp_path: Path) -> None:
    # A 997 Hz sine of amplitude A in one channel reads 20*log10(A) - 3.01 LUFS (BS.1770).
    def at_lufs(lufs: float) -> np.ndarray:
        return tones(4.0, [(0.0, 4.0, 997.0)], amp=10 ** ((lufs + 3.01) / 20))

    inputs = [
        MixInput(write_wav(tmp_path / "quiet.wav", at_lufs(-30.0)), T0, "quiet"),
        MixInput(write_wav(tmp_path / "loud.wav", at_lufs(-15.0)), T0 + 5_000, "loud"),
    ]
    report = mix_audio(inputs, tmp_path / "n.wav", fmt="wav", normalize=True)
    measured = [r["loudness_lufs"] for r in report.inputs]
    assert measured == pytest.approx([-30.0, -15.0], abs=0.3)
    assert [r["gain_db"] for r in report.inputs] == pytest.approx([7.0, -8.0], abs=0.3)
    dec = decode_audio(tmp_path / "n.wav")
    quiet = loudness_of(dec.samples[: 4 * RATE])
    loud = loudness_of(dec.samples[5 * RATE : 9 * RATE])
    assert abs(quiet - loud) <= 1.0
    assert quiet == pytest.approx(-23.0, abs=1.0) and loud == pytest.approx(-23.0, abs=1.0)


def test_normalize_leaves_a_silent_input_alone(tmp_path: Path) -> None:
    inputs = [MixInput(write_wav(tmp_path / "s.wav", np.zeros(RATE)), T0, "s")]
    report = mix_audio(inputs, tmp_path / "s.flac", fmt="flac", normalize=True)
    assert report.inputs[0]["loudness_lufs"] is None and report.inputs[0]["gain_db"] == 0.0
    assert report.peak_dbfs == -120.0


@pytest.mark.parametrize(
    ("case", "content"),
    [("not audio", b"this is not a media file at all\n" * 20), ("empty", b"")],
)
def test_unreadable_input_is_an_input_error(tmp_path: Path, case: str, content: bytes) -> None:
    good = write_wav(tmp_path / "good.wav", np.zeros(RATE))
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(content)
    with pytest.raises(InputError) as info:
        mix_audio([MixInput(good, T0, "a"), MixInput(bad, T0, "b")], tmp_path / "out" / "m.mp3")
    message = str(info.value)
    assert "\n" not in message and str(bad) in message, case
    assert not any((tmp_path / "out").iterdir())  # nothing half-written is left


def test_missing_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.wav"):
        mix_audio([MixInput(tmp_path / "missing.wav", T0, "a")], tmp_path / "m.wav", fmt="wav")


def test_progress_reports_fractions_up_to_one(
    tmp_path: Path, three_speakers: tuple[list[MixInput], dict[float, float]]
) -> None:
    inputs, _ = three_speakers
    seen: list[float] = []
    mix_audio(inputs, tmp_path / "p.flac", fmt="flac", progress=seen.append)
    assert seen and seen[-1] == 1.0
    assert all(0.0 <= a <= b <= 1.0 for a, b in itertools.pairwise(seen))


def test_mixed_name_follows_stream_cli() -> None:
    assert (
        mixed_name("default", "call-123", 1772359200000, "mp3")
        == "composite_default_call-123_audio_1772359200000.mp3"
    )
    assert mixed_name("a/b", "../x", 5, "opus") == "composite_a_b__x_audio_5.opus"
    with pytest.raises(InputError):
        mixed_name("default", "c", 5, "aiff")


def test_mixing_is_windowed_and_memory_flat(tmp_path: Path) -> None:
    """A 20-minute input (230 MB as float32 if held whole) mixes with < 100 MB RSS growth."""
    src = tmp_path / "long.wav"
    samples = 20 * 60 * RATE
    header = (
        b"RIFF"
        + (36 + 2 * samples).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + RATE.to_bytes(4, "little")
        + (2 * RATE).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + (2 * samples).to_bytes(4, "little")
    )
    with src.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + 2 * samples)  # 20 minutes of digital silence
    script = textwrap.dedent(
        f"""
        import json, resource
        from pathlib import Path
        import av, numpy
        from rawcore.mix import MixInput, mix_audio
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = mix_audio([MixInput(Path({str(src)!r}), 0.0, "a")],
                           Path({str(tmp_path / "long.flac")!r}), fmt="flac")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"growth_kb": after - before, "ms": report.duration_ms}}))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["ms"] == 20 * 60 * 1000
    assert result["growth_kb"] < 100 * 1024, result


@pytest.mark.skipif(not gst_available(), reason="needs GStreamer to make Opus captures")
def test_extracted_opus_tracks_mix_on_the_wall_clock(tmp_path: Path) -> None:
    from rawcore.extract import extract_audio

    speakers = [  # participant, joins at (s after the call start), burst (start_s, len, Hz)
        ("user_1", 0.0, (0.6, 0.5, 440.0)),
        ("user_2", 0.4, (1.5, 0.5, 660.0)),
        ("user_3", 2.3, (0.8, 0.5, 880.0)),  # late joiner
    ]
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
                        source=OpusSource(3.0, tone_bursts=(burst,)),
                        start_offset_s=joins,
                    )
                ],
            )
            for user, joins, burst in speakers
        ],
    )
    out = tmp_path / "out"
    with rawcore.open_recording(info.root) as rec:
        entries, warnings = extract_audio(rec, out)
    assert warnings == []
    inputs = [
        MixInput(out / e.path, float(e.start_unix_ms or 0), e.user_id or "?") for e in entries
    ]
    report = mix_audio(inputs, out / "mix.mp3")
    dec = decode_audio(out / "mix.mp3")
    # Truth from what the recording builder wrote, not from the manifest the mixer read.
    firsts = {t.participant_id: t.first_arrival_unix_ms for t in info.tracks()}
    mix_start = min(v for v in firsts.values() if v is not None)
    for user, _, (start_s, _, freq) in speakers:
        first = firsts[user]
        assert first is not None
        # The extracted file keeps the Opus encoder's lookahead (see test_extract_audio).
        want = (first - mix_start) / 1000 + start_s + OPUS_LOOKAHEAD_S
        found = tone_onsets(dec.samples, dec.rate, freq)
        assert len(found) == 1 and found[0] == pytest.approx(want, abs=0.040), (user, found)
    assert {r["label"] for r in report.inputs} == {"user_1", "user_2", "user_3"}
    assert dec.duration_s == pytest.approx(report.duration_ms / 1000, abs=0.030)
