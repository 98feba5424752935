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
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rawcore
from helpers.audio_truth import OPUS_LOOKAHEAD_S, av_available, decode_audio, tone_onsets
from helpers.gst import gst_available
from helpers.recording import OpusSource, SessionSpec, TrackSpec, build_recording
from rawcore.errors import InputError, OutputError
from rawcore.media.mix import MIX_FORMATS, MixInput, mix_audio, mixed_name
from rawcore.media.mix import decode as mix_decode
from rawcore.media.mix import encode as mix_encode

pytestmark = pytest.mark.skipif(not av_available(), reason="needs PyAV")

RATE = 48_000
T0 = 1_772_359_200_000.0
CEILING = 10 ** (-1 / 20)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, layout: str = "mono") -> Path:
    """Float samples, (n,) mono or (n, channels), as 16-bit WAV (rounded, so the file holds
    exactly known values)."""
    import av

    ints = np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tones(
    seconds: float, bursts: list[tuple[float, float, float]], amp: float = 0.5, rate: int = RATE
) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
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
    assert _mix_threads() == []  # the good input's decoding thread was stopped


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


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_mixing_is_windowed_and_memory_flat(tmp_path: Path, fmt: str) -> None:
    """A 20-minute input (230 MB as float32 if held whole) mixes with < 100 MB RSS growth,
    decoding ahead on its own thread and, for MP3, encoding chunks on several."""
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
        from rawcore.media.mix import MixInput, mix_audio
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = mix_audio([MixInput(Path({str(src)!r}), 0.0, "a")],
                           Path({str(tmp_path / "long")!r} + ".{fmt}"), fmt="{fmt}")
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
    from rawcore.media.audio import extract_audio

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
        entries, warnings, _ = extract_audio(rec, out)
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


# ---------------------------------------------------------------------------------------------
# MP3 encoded in parallel chunks, and the decoding graph's conversions


def mp3_frames(path: Path) -> list[tuple[int, int]]:
    """(sample rate, main_data_begin) of every MPEG audio frame in an MP3 file, found by walking
    the frame headers (ID3v2 tag skipped). main_data_begin > 0 means the frame's data starts in
    an earlier frame: the bit reservoir."""
    v1_kbps = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    v2_kbps = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
    rates = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
    data = path.read_bytes()
    pos = 0
    if data[:3] == b"ID3":
        pos = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    frames = []
    while pos + 4 <= len(data) and data[pos : pos + 3] != b"TAG":
        h = int.from_bytes(data[pos : pos + 4], "big")
        assert h >> 21 == 0x7FF and (h >> 17) & 3 == 1, f"no Layer III frame at byte {pos}"
        version = (h >> 19) & 3
        mpeg1 = version == 3
        kbps = (v1_kbps if mpeg1 else v2_kbps)[(h >> 12) & 15]
        rate = rates[version][(h >> 10) & 3]
        side = pos + 4 + (0 if (h >> 16) & 1 else 2)  # a CRC follows when the bit is clear
        begin = (data[side] << 1 | data[side + 1] >> 7) if mpeg1 else data[side]
        frames.append((rate, begin))
        pos += (144 if mpeg1 else 72) * kbps * 1000 // rate + ((h >> 9) & 1)
    assert pos == len(data), "trailing bytes after the last frame"
    return frames


def windowed_rms(x: np.ndarray, n: int) -> np.ndarray:
    m = len(x) // n * n
    return np.sqrt(np.mean(np.square(x[:m].reshape(-1, n)), axis=1))


# A continuous sine through an MP3 cut into 0.5 s chunks, each from its own encoder. The error
# against the sine, in windows of one MP3 frame, must be no worse at the seams than anywhere
# else; without pre-roll the encoders meet unsettled and every seam shows (the last row checks
# that this test can see a seam at all).
@pytest.mark.parametrize(
    ("rate", "channels", "preroll", "seamless"),
    [
        (48_000, 1, None, True),
        (48_000, 2, None, True),
        (44_100, 1, None, True),
        (24_000, 1, None, True),
        (16_000, 2, None, True),
        (8_000, 1, None, True),
        (48_000, 1, 0, False),
    ],
)
def test_mp3_chunks_join_without_a_seam(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rate: int,
    channels: int,
    preroll: int | None,
    seamless: bool,
) -> None:
    monkeypatch.setattr(mix_encode, "MP3_CHUNK_S", 0.5)
    if preroll is not None:
        monkeypatch.setattr(mix_encode, "MP3_PREROLL", preroll)
    seconds, freq, amp = 4.0, 330.0, 0.4
    src = write_wav(tmp_path / "sine.wav", tones(seconds, [(0.0, seconds, freq)], amp=amp))
    out = tmp_path / "sine.mp3"
    mix_audio([MixInput(src, T0, "s")], out, sample_rate=rate, channels=channels)
    dec = decode_audio(out)
    assert dec.errors == 0 and dec.rate == rate and dec.channels == channels
    assert len(dec.samples) == round(seconds * rate)  # LAME delay and padding trimmed exactly
    frame = 1152 if rate >= 32_000 else 576
    chunk = frame * round(0.5 * rate / frame)
    want = tones(seconds, [(0.0, seconds, freq)], amp=amp, rate=rate)
    err = windowed_rms(dec.samples - want, frame)
    seams = np.arange(chunk, len(want), chunk) // frame
    assert len(seams) >= 7
    at_seam = np.zeros(len(err), dtype=bool)
    for k in seams:
        at_seam[k - 2 : k + 2] = True  # the frames either side: the overlap-add spans both
    inner = np.zeros(len(err), dtype=bool)
    inner[4:-4] = True  # the sine's abrupt start and end are no seam
    elsewhere = float(err[inner & ~at_seam].max())
    worst_seam = float(err[inner & at_seam].max())
    assert elsewhere < 0.05 * amp  # the encoding itself is sound
    if seamless:
        assert worst_seam <= 1.1 * elsewhere, (worst_seam, elsewhere)
    else:
        assert worst_seam > 3 * elsewhere, (worst_seam, elsewhere)


@pytest.mark.parametrize(
    ("rate", "reservoir", "borrows"),
    [(48_000, None, False), (24_000, None, False), (8_000, None, False), (48_000, "1", True)],
)
def test_mp3_frames_never_borrow_from_the_frame_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rate: int, reservoir: str | None, borrows: bool
) -> None:
    """The bit reservoir stays off, so a frame kept after a dropped pre-roll frame cannot point
    into it. (With the reservoir on, as the last row shows, LAME does borrow on this signal.)"""
    if reservoir is not None:
        options = (("compression_level", "5"), ("reservoir", reservoir))
        mp3 = replace(mix_encode.ENCODINGS["mp3"], options=options)
        monkeypatch.setitem(mix_encode.ENCODINGS, "mp3", mp3)
    rng = np.random.default_rng(3)
    bursts = np.repeat(rng.uniform(0, 1, 60) ** 4, RATE // 20)  # loud and quiet stretches
    noise = np.clip(rng.standard_normal(len(bursts)) * 0.3 * bursts, -0.9, 0.9)
    src = write_wav(tmp_path / "noise.wav", noise)
    out = tmp_path / "noise.mp3"
    mix_audio([MixInput(src, T0, "n")], out, sample_rate=rate)
    frames = mp3_frames(out)
    assert {r for r, _ in frames} == {rate}
    # One Xing/LAME header frame, then one frame per `frame` samples plus the codec delay.
    frame = 1152 if rate >= 32_000 else 576
    assert len(frames) - 1 == -(-(3 * rate + 1105) // frame)
    assert any(begin > 0 for _, begin in frames) == borrows


@pytest.mark.parametrize(
    "rate", [48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000]
)
def test_mp3_at_every_lame_rate_places_speakers_across_chunks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    three_speakers: tuple[list[MixInput], dict[float, float]],
    rate: int,
) -> None:
    monkeypatch.setattr(mix_encode, "MP3_CHUNK_S", 0.7)  # seams inside and between the bursts
    inputs, onsets = three_speakers
    report = mix_audio(inputs, tmp_path / "m.mp3", sample_rate=rate)
    dec = decode_audio(tmp_path / "m.mp3")
    assert dec.rate == rate and report.sample_rate == rate and dec.errors == 0
    # Exactly the mixer's samples: the same mix written losslessly is the reference.
    mix_audio(inputs, tmp_path / "m.wav", fmt="wav", sample_rate=rate)
    assert len(dec.samples) == len(decode_audio(tmp_path / "m.wav").samples)
    assert abs(len(dec.samples) - round(5.6 * rate)) <= 1 and report.duration_ms == 5600
    for freq, want in onsets.items():
        assert tone_onsets(dec.samples, rate, freq) == pytest.approx([want], abs=0.003), freq


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", 20_000), ("mp3", 96_000), ("opus", 44_100)])
def test_a_rate_the_codec_cannot_take_is_an_input_error(
    tmp_path: Path, fmt: str, rate: int
) -> None:
    src = write_wav(tmp_path / "a.wav", np.zeros(RATE))
    with pytest.raises(InputError, match=f"sample rate {rate} is not possible for {fmt}"):
        mix_audio([MixInput(src, T0, "a")], tmp_path / f"m.{fmt}", fmt=fmt, sample_rate=rate)  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


# Inputs the decoding graph must convert: other rates (resampled), stereo (averaged for a mono
# mix, kept for a stereo one). The left channel (or the mono input) has 440 Hz from 1.0 s, the
# right 660 Hz from 1.5 s; each row gives the mix's channel count and each tone's expected
# amplitude per mix channel.
@pytest.mark.parametrize(
    ("in_rate", "layout", "mix_channels", "levels"),
    [
        (44_100, "mono", 1, {440.0: [0.5]}),
        (16_000, "mono", 2, {440.0: [0.5, 0.5]}),
        (48_000, "stereo", 1, {440.0: [0.25], 660.0: [0.25]}),
        (48_000, "stereo", 2, {440.0: [0.5, 0.0], 660.0: [0.0, 0.5]}),
        (32_000, "stereo", 2, {440.0: [0.5, 0.0], 660.0: [0.0, 0.5]}),
    ],
)
def test_inputs_are_converted_to_the_mix_rate_and_layout(
    tmp_path: Path, in_rate: int, layout: str, mix_channels: int, levels: dict[float, list[float]]
) -> None:
    import av

    left = tones(3.0, [(1.0, 1.5, 440.0)], rate=in_rate)
    right = tones(3.0, [(1.5, 1.0, 660.0)], rate=in_rate)
    samples = left if layout == "mono" else np.stack([left, right], axis=1)
    src = write_wav(tmp_path / "in.wav", samples, rate=in_rate, layout=layout)
    out = tmp_path / "m.wav"
    report = mix_audio([MixInput(src, T0, "a")], out, fmt="wav", channels=mix_channels)
    assert report.duration_ms == 3000
    with av.open(str(out)) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    pcm = pcm.reshape(-1, mix_channels).astype(np.float64) / 32768
    assert len(pcm) == 3 * RATE
    both = pcm[round(1.75 * RATE) : round(2.25 * RATE)]
    t = np.arange(len(both)) / RATE
    onset = {440.0: 1.0, 660.0: 1.5}
    for freq, per_channel in levels.items():
        probe = np.exp(-2j * np.pi * freq * t)
        got = [2 * abs(np.mean(both[:, c] * probe)) for c in range(mix_channels)]
        assert got == pytest.approx(per_channel, abs=0.01), freq
        c = int(np.argmax(per_channel))
        found = tone_onsets(pcm[:, c], RATE, freq, purity=0.3)
        assert found == pytest.approx([onset[freq]], abs=0.003), freq


@pytest.mark.parametrize(
    "name",
    [
        "a b.wav",
        "it's.wav",
        "c:d,e;f.wav",
        "[x]=y.wav",
        "back\\slash.wav",
        "ünï cödé.wav",
        " lead and trail .wav",
        "%20$HOME|&.wav",
    ],
)
def test_any_file_name_is_decoded(tmp_path: Path, name: str) -> None:
    """Inputs are named inside an FFmpeg filter graph; no character may be taken for syntax."""
    src = write_wav(tmp_path / name, tones(1.0, [(0.25, 0.5, 440.0)]))
    out = tmp_path / "out" / "m.wav"
    mix_audio([MixInput(src, T0, "a")], out, fmt="wav")
    dec = decode_audio(out)
    assert dec.duration_s == 1.0
    assert tone_onsets(dec.samples, RATE, 440.0) == pytest.approx([0.25], abs=0.003)


def within(seconds: float, call: Callable[[], object]) -> object:
    """`call()` on a daemon thread: its result or exception, or a failure if it hangs."""
    outcome: list[object] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if failure:
        raise failure[0]
    return outcome[0]


def _mix_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rawcore-mix")]


class _Boom(Exception):
    pass


def _fail_decode(monkeypatch: pytest.MonkeyPatch) -> type[Exception]:
    """The decoder fails after five blocks: on the track's own decoding thread where it has
    one (MP3, FLAC), on the calling thread otherwise (Opus)."""
    real = mix_decode.TrackDecoder._source

    def failing(self: mix_decode.TrackDecoder, container: object) -> Iterator[np.ndarray]:
        for n, block in enumerate(real(self, container)):
            if n == 5:
                raise InputError(f"{self.spec.path}: cannot decode audio (Invalid data)")
            yield block

    monkeypatch.setattr(mix_decode.TrackDecoder, "_source", failing)
    return InputError


def _fail_encode(monkeypatch: pytest.MonkeyPatch, cls: type) -> type[Exception]:
    import av

    real = cls._encode
    calls = {"n": 0}

    def failing(self: object, *args: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise av.error.InvalidDataError(1094995529, "Invalid data found")
        return real(self, *args)

    monkeypatch.setattr(cls, "_encode", failing)
    return OutputError


# Failures on either side of the thread boundary: the caller gets the one error, no file is
# left behind, no encoder thread outlives the call, nothing hangs.
@pytest.mark.parametrize(
    ("fmt", "failure"),
    [
        ("mp3", "decode"),
        ("mp3", "encode"),
        ("mp3", "progress"),
        ("opus", "decode"),
        ("opus", "encode"),
        ("flac", "decode"),
        ("flac", "progress"),
    ],
)
def test_a_failure_mid_mix_stops_every_thread_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, failure: str
) -> None:
    monkeypatch.setattr(mix_encode, "MP3_CHUNK_S", 1.0)  # several chunks in flight
    src = write_wav(tmp_path / "a.wav", tones(30.0, [(0.0, 30.0, 440.0)]))
    progress = None
    if failure == "decode":
        expected: type[Exception] = _fail_decode(monkeypatch)
    elif failure == "encode":
        cls = mix_encode.Mp3Chunks if fmt == "mp3" else mix_encode.StreamEncoder
        expected = _fail_encode(monkeypatch, cls)
    else:

        def progress(done: float) -> None:
            if done > 0.4:
                raise _Boom

        expected = _Boom
    out_dir = tmp_path / "out"
    with pytest.raises(expected) as info:
        within(
            30.0,
            lambda: mix_audio(
                [MixInput(src, T0, "a")],
                out_dir / f"m.{fmt}",
                fmt=fmt,  # type: ignore[arg-type]
                progress=progress,
            ),
        )
    if expected is not _Boom:  # one line naming the file at fault
        message = str(info.value)
        assert "\n" not in message and ("a.wav" in message or f"m.{fmt}" in message), message
    assert list(out_dir.iterdir()) == []
    assert _mix_threads() == []


def test_audio_behind_a_video_stream_is_the_one_decoded(tmp_path: Path) -> None:
    """The decoding graph picks the input's first audio stream by its index, not stream 0."""
    import av

    src = tmp_path / "av.mkv"
    with av.open(str(src), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=RATE)
        audio.layout = "mono"
        for i in range(20):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            picture.pts = i
            out.mux(video.encode(picture))
        ints = np.round(tones(2.0, [(0.5, 1.0, 440.0)]) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = 0
        out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
        out.mux(video.encode(None))
    report = mix_audio([MixInput(src, T0, "a")], tmp_path / "m.wav", fmt="wav")
    dec = decode_audio(tmp_path / "m.wav")
    assert report.duration_ms == 2000 and dec.duration_s == 2.0
    assert tone_onsets(dec.samples, RATE, 440.0) == pytest.approx([0.5], abs=0.003)
