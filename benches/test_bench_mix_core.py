"""The mix made in the core (`mix_opus`): Opus captures decoded with libopus, summed and
limited in Rust, encoded by PyAV, against the ceiling and peers measured in the same run.

Inputs are RTP captures made by GStreamer (`opusenc ! rtpopuspay`, `helpers.gst`), written as
rtpdump by the test helpers: four participants of speech-like sound (`helpers.gst.speech_like`,
SILK/hybrid as a voice is coded). A long call repeats a 5-minute capture with its sequence
numbers and timestamps carried on (GStreamer would need the whole signal in memory).

- `test_core_mix_4x10min_to_mp3`: continuous speech, 10 minutes, to MP3 48 kHz q5; beside it
  the LAME ceiling of the same run: the two-encoder MP3 path alone on the mix's own samples.
- `test_core_mix_4x60min_dtx_to_mp3` and `test_peer_gstreamer_mix_4x60min_dtx_to_mp3`: an
  hour with long DTX silences; the peer is `audiomixer ! lamemp3enc` over the same tracks
  extracted to Matroska.
- `test_core_mix_4x10min_to[opus|flac]`.
- `test_core_mix_peak_rss`: peak RSS of a mix in a fresh process, 10 vs 60 minutes.

Run with `.venv/bin/python -m pytest benches/test_bench_mix_core.py --benchmark-enable
--benchmark-only -s`.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from helpers.gst import gst_available, opus_packets  # noqa: E402
from helpers.rtpdump import CapturedPacket, parse_rtp_header, rewrite_rtp, write_rtpdump  # noqa: E402
from rawcore.media.mix import OpusTrack, mix_opus  # noqa: E402
from rawcore.media.mix.encode import Mp3Chunks  # noqa: E402

pytestmark = pytest.mark.skipif(not gst_available(), reason="needs GStreamer for the captures")

RATE = 48_000
PARTICIPANTS = 4
T0_MS = 1_772_359_200_000.0
PIECE_S = 300


def _piece(k: int, *, dtx: bool) -> list[bytes]:
    """5 minutes of participant `k`'s RTP packets: continuous speech, or with `dtx` speech in
    turns (this participant talks ~1/4 of the time, in 10-40 s spans) and DTX between."""
    if dtx:
        rng = np.random.default_rng(k)
        spans, pos = [], float(rng.uniform(0, 30))
        while pos < PIECE_S - 5:
            length = float(rng.uniform(10, 40))
            spans.append((pos, min(length, PIECE_S - pos)))
            pos += length + float(rng.uniform(30, 120))
        speech = tuple(spans)
    else:
        speech = ((0.0, float(PIECE_S)),)
    return opus_packets(
        PIECE_S,
        speech=speech,
        dtx=dtx,
        ssrc=0x1000 + k,
        audio_type="voice",
        bitrate=32_000,
        seq_offset=0,
        ts_offset=0,
    )


def _capture(path: Path, piece: list[bytes], minutes: int, join_s: int) -> Path:
    """`minutes` of the piece repeated, as an rtpdump capture; arrival = timestamp."""
    repeats = -(-minutes * 60 // PIECE_S)
    packets = []
    for r in range(repeats):
        for data in piece:
            h = parse_rtp_header(data)
            ts = h.ts + r * PIECE_S * RATE
            if ts >= minutes * 60 * RATE:
                break
            seq = h.seq + r * len(piece)
            packets.append(CapturedPacket(ts // 48, rewrite_rtp(data, seq=seq, ts=ts)))
    write_rtpdump(path, packets, start_unix=(T0_MS + join_s * 1000) / 1000)
    return path


@pytest.fixture(scope="session")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, bool], list[Path]]:
    folder = tmp_path_factory.mktemp("mix-core-bench")
    out: dict[tuple[int, bool], list[Path]] = {}
    for dtx in (False, True):
        pieces = [_piece(k, dtx=dtx) for k in range(PARTICIPANTS)]
        for minutes in (10, 60):
            out[(minutes, dtx)] = [
                _capture(folder / f"u{k}-{minutes}-{dtx}.rtpdump", pieces[k], minutes, 5 * k)
                for k in range(PARTICIPANTS)
            ]
    return out


def _mapped(path: Path) -> mmap.mmap:
    """The capture mapped read-only, as the CLI passes it (the core borrows it, never copies)."""
    with path.open("rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _mix(paths: list[Path], out: Path, fmt: str = "mp3") -> float:
    """Mix the captures; returns the mix's length in seconds."""
    tracks = [
        OpusTrack([(_mapped(p), 0, 0.0)], T0_MS + 5_000 * k, f"user_{k + 1}", 0.0, 111)
        for k, p in enumerate(paths)
    ]
    report = mix_opus(tracks, out, fmt=fmt)  # type: ignore[arg-type]
    return report.duration_ms / 1000


def _lame_ceiling(pcm: np.ndarray, out: Path) -> float:
    """Seconds for the mix's MP3 path alone (two LAME encoders on 20 s chunks, as `mix_opus`
    runs them) to encode the mix's own samples, handed over in the same 2 s blocks."""
    start = time.perf_counter()
    enc = Mp3Chunks(out, "mp3", RATE, 1, None, out.name)
    for pos in range(0, len(pcm), 2 * RATE):
        enc.write(pcm[pos : pos + 2 * RATE])
    enc.finish()
    return time.perf_counter() - start


def _read_pcm(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
    return (np.concatenate(chunks).astype(np.float32) / 32768).reshape(-1, 1)


def test_core_mix_4x10min_to_mp3(benchmark, captures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = captures[(10, False)]
    seconds = benchmark.pedantic(_mix, args=(paths, tmp_path / "mix.mp3"), rounds=3, iterations=1)
    _mix(paths, tmp_path / "mix.wav", "wav")
    pcm = _read_pcm(tmp_path / "mix.wav")
    ceiling = min(_lame_ceiling(pcm, tmp_path / f"lame{r}.mp3") for r in range(3))
    best = benchmark.stats.stats.min
    benchmark.extra_info.update(
        {
            "audio_s": seconds,
            "realtime_factor": round(seconds / best, 1),
            "lame_ceiling_s": round(ceiling, 2),
            "lame_ceiling_factor": round(seconds / ceiling, 1),
            "of_ceiling": round(ceiling / best, 3),
        }
    )
    print(
        f"\ncore mix 4x10 min -> MP3: {best:.2f} s ({seconds / best:.0f}x); LAME ceiling "
        f"{ceiling:.2f} s ({seconds / ceiling:.0f}x); {100 * ceiling / best:.1f} % of it"
    )


@pytest.mark.parametrize("fmt", ["opus", "flac"])
def test_core_mix_4x10min_to(benchmark, captures, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    paths = captures[(10, False)]
    out = tmp_path / f"mix.{fmt}"
    seconds = benchmark.pedantic(_mix, args=(paths, out, fmt), rounds=3, iterations=1)
    benchmark.extra_info["realtime_factor"] = round(seconds / benchmark.stats.stats.min, 1)
    print(f"\ncore mix 4x10 min -> {fmt}: {seconds / benchmark.stats.stats.min:.0f}x")


def test_core_mix_4x60min_dtx_to_mp3(benchmark, captures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = captures[(60, True)]
    seconds = benchmark.pedantic(_mix, args=(paths, tmp_path / "mix.mp3"), rounds=2, iterations=1)
    benchmark.extra_info["realtime_factor"] = round(seconds / benchmark.stats.stats.min, 1)
    print(f"\ncore mix 4x60 min DTX -> MP3: {benchmark.stats.stats.min:.2f} s")


def _gst_mix(paths: list[Path], out: Path) -> None:
    branches = []
    for p in paths:
        branches += [
            "filesrc",
            f"location={p}",
            "!",
            "matroskademux",
            "!",
            "opusdec",
            "!",
            "audioconvert",
            "!",
            "audioresample",
            "!",
            "m.",
        ]
    cmd = [
        "gst-launch-1.0",
        "-q",
        "audiomixer",
        "name=m",
        "!",
        "audioconvert",
        "!",
        "audio/x-raw,channels=1,rate=48000",
        "!",
        "lamemp3enc",
        "target=bitrate",
        "bitrate=64",
        "cbr=true",
        "quality=5",
        "!",
        "filesink",
        f"location={out}",
        *branches,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=1200)


def test_peer_gstreamer_mix_4x60min_dtx_to_mp3(benchmark, captures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same tracks extracted to Matroska by rawcore (not timed), mixed by GStreamer."""
    import rawcore
    from rawcore import _core

    if shutil.which("gst-launch-1.0") is None:
        pytest.skip("GStreamer is not installed")
    del rawcore
    tracks = []
    for k, p in enumerate(captures[(60, True)]):
        path = tmp_path / f"u{k}.mkv"
        _core.extract_audio([(p.read_bytes(), 0)], str(path), payload_type=111)
        tracks.append(path)
    out = tmp_path / "gst.mp3"
    benchmark.pedantic(_gst_mix, args=(tracks, out), rounds=2, iterations=1)
    print(f"\nGStreamer 4x60 min DTX -> MP3: {benchmark.stats.stats.min:.2f} s")


_RSS = """
import json, mmap, sys
from pathlib import Path
from rawcore.media.mix import OpusTrack, mix_opus
paths = [Path(p) for p in json.loads(sys.argv[1])]
def mapped(p):
    with p.open("rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
tracks = [OpusTrack([(mapped(p), 0, 0.0)], 1.7e12 + 5000 * k, str(k), 0.0, 111)
          for k, p in enumerate(paths)]
mix_opus(tracks, Path(sys.argv[2]), fmt="mp3")
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def test_core_mix_peak_rss(benchmark, captures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Peak RSS (kB) of a whole mix in a fresh process: 10 vs 60 minutes with DTX."""

    def peak(minutes: int) -> int:
        paths = json.dumps([str(p) for p in captures[(minutes, True)]])
        run = subprocess.run(
            [sys.executable, "-c", _RSS, paths, str(tmp_path / f"m{minutes}.mp3")],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        )
        return int(run.stdout.split()[-1])

    rss = benchmark.pedantic(lambda: (peak(10), peak(60)), rounds=1, iterations=1)
    benchmark.extra_info.update({"rss_10min_kb": rss[0], "rss_60min_kb": rss[1]})
    print(f"\npeak RSS: 10 min {rss[0] / 1024:.0f} MB, 60 min {rss[1] / 1024:.0f} MB")
