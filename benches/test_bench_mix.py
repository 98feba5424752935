"""Mixing throughput: four participants, ten minutes each, mixed to MP3.

Inputs are Opus in Matroska (what `extract-audio` writes), made once per session with PyAV:
each participant talks in 2-6 s tone bursts on their own pitch, joining at staggered times.
The figure that matters is the realtime factor, mix seconds per wall second (`extra_info`).
Run with `.venv/bin/python -m pytest benches/test_bench_mix.py --benchmark-enable
--benchmark-only`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from rawcore.mix import MixInput, mix_audio  # noqa: E402

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


def _decode_only(inputs: list[MixInput]) -> float:
    """Seconds to decode every input with the mixer's own reader, with nothing else."""
    import contextlib

    from rawcore.mix import _Track

    start = time.perf_counter()
    for spec in inputs:
        with contextlib.ExitStack() as stack:
            track = _Track(spec, RATE, stack)
            while len(track.read(5 * RATE)):
                pass
    return time.perf_counter() - start


def _encode_only(seconds: int) -> float:
    """Seconds to encode `seconds` of (non-silent) mono audio to MP3 the way the mixer does."""
    signal = _speech_like(seconds, 440.0, seed=9)
    start = time.perf_counter()
    with av.open("/dev/null", "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE, options={"compression_level": "5"})
        stream.layout = "mono"
        stream.bit_rate = 64_000
        step = 5 * RATE
        for pos in range(0, len(signal), step):
            frame = av.AudioFrame.from_ndarray(
                signal[pos : pos + step].reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate = RATE
            frame.pts = pos
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return time.perf_counter() - start


def test_mix_4x10min_to_mp3(benchmark, participants: list[MixInput], tmp_path: Path) -> None:
    out = tmp_path / "mix.mp3"
    report = benchmark.pedantic(
        mix_audio, args=(participants, out), kwargs={"fmt": "mp3"}, rounds=3, iterations=1
    )
    audio_s = report.duration_ms / 1000
    assert audio_s == pytest.approx(MINUTES * 60, abs=0.05)
    best = benchmark.stats.stats.min
    decode_s = _decode_only(participants)
    encode_s = _encode_only(MINUTES * 60)
    benchmark.extra_info.update(
        {
            "audio_s": audio_s,
            "participants": PARTICIPANTS,
            "realtime_factor": round(audio_s / best, 1),
            "decode_s": round(decode_s, 2),
            "encode_s": round(encode_s, 2),
            "mix_and_limit_s": round(max(0.0, best - decode_s - encode_s), 2),
        }
    )
