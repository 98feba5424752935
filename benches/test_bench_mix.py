"""Mixing throughput: four participants, ten minutes each, mixed to MP3 at 48 and 24 kHz.

Inputs are Opus in Matroska (what `extract-audio` writes), made once per session with PyAV:
each participant talks in 2-6 s tone bursts on their own pitch, joining at staggered times.
The figure that matters is the realtime factor, mix seconds per wall second (`extra_info`),
with the CPU time of a mix and its two big parts (decoding, LAME) on one thread each beside it.
Run with `.venv/bin/python -m pytest benches/test_bench_mix.py --benchmark-enable
--benchmark-only`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from rawcore.media.mix import MixInput, mix_audio  # noqa: E402

RATE = 48_000
MINUTES = 10
PARTICIPANTS = 4
T0_MS = 1_772_359_200_000.0


def _speech_like(seconds: int, freq: float, seed: int) -> np.ndarray:
    """Alternating talk (a tone with a slow tremolo) and pauses, 2-6 s each."""
    rng = np.random.default_rng(seed)
    out = np.zeros(seconds * RATE, dtype=np.float32)
    pos = 0
    talking = bool(seed % 2)
    while pos < len(out):
        span = int(rng.uniform(2, 6) * RATE)
        if talking:
            t = np.arange(min(span, len(out) - pos)) / RATE
            out[pos : pos + len(t)] = 0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(t))
        pos += span
        talking = not talking
    return out


def _write_opus_mkv(path: Path, samples: np.ndarray) -> None:
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libopus", rate=RATE)
        stream.layout = "mono"
        stream.bit_rate = 32_000
        step = RATE  # one second per frame handed to PyAV, which re-frames to 20 ms
        for pos in range(0, len(samples), step):
            chunk = samples[pos : pos + step].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = pos
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture(scope="session")
def participants(tmp_path_factory: pytest.TempPathFactory) -> list[MixInput]:
    folder = tmp_path_factory.mktemp("mix-bench")
    inputs = []
    for k in range(PARTICIPANTS):
        path = folder / f"user_{k + 1}.mkv"
        # Later joiners have shorter tracks; all end together at MINUTES.
        join_s = 5 * k
        _write_opus_mkv(path, _speech_like(MINUTES * 60 - join_s, 300 + 110 * k, seed=k))
        inputs.append(MixInput(path, T0_MS + join_s * 1000, f"user_{k + 1}"))
    return inputs


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _decode_only(inputs: list[MixInput], rate: int) -> float:
    """Seconds to decode every input with the mixer's reader, one after another on this thread."""
    from rawcore.media.mix.decode import TrackDecoder

    start = time.perf_counter()
    for spec in inputs:
        with contextlib.ExitStack() as stack:
            track = TrackDecoder(spec, rate, stack, ahead=False)
            while len(track.read(5 * rate)):
                pass
    return time.perf_counter() - start


def _encode_only(mixed: Path, rate: int) -> float:
    """Seconds for one LAME encoder, set up as the mixer's, to encode the mix's own samples
    (decoded beforehand from a WAV mix): the encoding work of the mix on one core. Measured on
    the real mix, not a test tone: LAME's speed depends on the signal (it ran 1.7x faster on
    the half-silent tone this bench used to time)."""
    from rawcore.media.mix.encode import ENCODINGS

    with av.open(str(mixed)) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    signal = (pcm.astype(np.float32) / 32768).reshape(1, -1)
    enc = ENCODINGS["mp3"]
    start = time.perf_counter()
    codec = av.CodecContext.create(enc.codec, "w")
    codec.sample_rate = rate
    codec.layout = "mono"
    codec.format = "fltp"
    codec.bit_rate = 64_000
    codec.time_base = Fraction(1, rate)
    codec.options = dict(enc.options)
    step = rate
    for pos in range(0, signal.shape[1], step):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(signal[:, pos : pos + step]), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = pos
        codec.encode(frame)
    codec.encode(None)
    return time.perf_counter() - start


# 48 kHz is the default; 24 kHz (MPEG-2 Layer III) is the setting for speech: it keeps
# everything below 12 kHz, which holds nearly all of a voice, and LAME does half the work.
@pytest.mark.parametrize("rate", [48_000, 24_000], ids=["48k", "24k-speech"])
def test_mix_4x10min_to_mp3(
    benchmark, participants: list[MixInput], tmp_path: Path, rate: int
) -> None:
    out = tmp_path / "mix.mp3"
    report = benchmark.pedantic(
        mix_audio,
        args=(participants, out),
        kwargs={"fmt": "mp3", "sample_rate": rate},
        rounds=3,
        iterations=1,
    )
    audio_s = report.duration_ms / 1000
    assert audio_s == pytest.approx(MINUTES * 60, abs=0.05)
    best = benchmark.stats.stats.min
    cpu = _cpu_s()
    mix_audio(participants, out, fmt="mp3", sample_rate=rate)
    cpu_s = _cpu_s() - cpu
    mix_audio(participants, tmp_path / "mix.wav", fmt="wav", sample_rate=rate)
    decode_s = _decode_only(participants, rate)
    encode_s = _encode_only(tmp_path / "mix.wav", rate)
    benchmark.extra_info.update(
        {
            "audio_s": audio_s,
            "participants": PARTICIPANTS,
            "sample_rate": rate,
            "realtime_factor": round(audio_s / best, 1),
            # CPU time of one mix over all threads: about 2x the wall time when both cores work.
            "cpu_s": round(cpu_s, 2),
            # The two big parts, each on one thread: decoding all inputs, and LAME.
            "decode_s": round(decode_s, 2),
            "encode_s": round(encode_s, 2),
            "cores": len(os.sched_getaffinity(0)),
        }
    )


def _gst_mix(inputs: list[MixInput], out: Path) -> None:
    """The plain GStreamer way to the same file: decode every input, `audiomixer`, LAME at the
    same settings (64 kbit/s CBR mono, quality 5). Each input starts at its file's time 0 (the
    pipeline has no call timeline), which only makes its work easier."""
    import subprocess

    branches = []
    for spec in inputs:
        branches += [
            "filesrc", f"location={spec.path}", "!", "matroskademux", "!", "opusdec", "!",
            "audioconvert", "!", "audioresample", "!", "m.",
        ]
    cmd = [
        "gst-launch-1.0", "-q", "audiomixer", "name=m", "!", "audioconvert", "!",
        "audio/x-raw,channels=1,rate=48000", "!", "lamemp3enc", "target=bitrate", "bitrate=64",
        "cbr=true", "quality=5", "!", "filesink", f"location={out}", *branches,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)


def test_peer_gstreamer_mix_4x10min_to_mp3(
    benchmark, participants: list[MixInput], tmp_path: Path
) -> None:
    import shutil

    if shutil.which("gst-launch-1.0") is None:
        pytest.skip("GStreamer is not installed")
    out = tmp_path / "gst.mp3"
    benchmark.pedantic(_gst_mix, args=(participants, out), rounds=2, iterations=1)
    with av.open(str(out)) as c:
        seconds = float(c.duration or 0) / 1e6
    assert seconds == pytest.approx(MINUTES * 60, abs=1.0)
    benchmark.extra_info["realtime_factor"] = round(seconds / benchmark.stats.stats.min, 1)
