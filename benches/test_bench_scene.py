"""The scene step on a four-participant, 60-minute call (audio: Opus, 2-6 s of talk in turns).

What the post-process job adds after its stitched step: `build_scene_project` with the
stitched tracks already in `tracks/` (reused), i.e. voice activity for every participant, the
clip, the layout, `scene.json` and `scene.otio`. Beside it, voice activity of one hour-long
track alone (`_core.voice_activity`: the walk plus libopus at 8 kHz), and the naive way to the
same numbers as a peer: decoding the stitched file with PyAV (FFmpeg's Opus decoder, 48 kHz)
and taking the RMS of every 20 ms with NumPy.

Run with `.venv/bin/python -m pytest benches/test_bench_scene.py --benchmark-enable
--benchmark-only`. The call is one minute of GStreamer-encoded Opus per participant, continued
to an hour.
"""

from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

import rawcore  # noqa: E402
from helpers import gst  # noqa: E402
from helpers.recording import DEFAULT_CALL_START, sdp_for  # noqa: E402
from helpers.rtpdump import CapturedPacket, parse_rtp_header, rewrite_rtp, write_rtpdump  # noqa: E402
from rawcore import _core  # noqa: E402
from rawcore.media.audio import plan_audio  # noqa: E402
from rawcore.media.outputs import Selection, open_archive_of  # noqa: E402
from rawcore.pipeline.scene.build import build_scene_project  # noqa: E402

pytestmark = pytest.mark.skipif(not gst.gst_available(), reason="needs GStreamer")

MINUTES = int(os.environ.get("SCENE_BENCH_MINUTES", "60"))
PARTICIPANTS = 4


def _continued(base: list[bytes], total: int, step: int) -> list[bytes]:
    """`total` packets: `base` repeated with sequence numbers and timestamps running on."""
    first, last = parse_rtp_header(base[0]), parse_rtp_header(base[-1])
    cycle = ((last.ts - first.ts) & 0xFFFFFFFF) + step
    out = []
    for i in range(total):
        rep, k = divmod(i, len(base))
        ts = (parse_rtp_header(base[k]).ts + rep * cycle) & 0xFFFFFFFF
        out.append(rewrite_rtp(base[k], seq=(first.seq + i) & 0xFFFF, ts=ts))
    return out


@pytest.fixture(scope="session")
def hour_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four participants, each an hour of real Opus (one minute of 3 s talk turns every 5 s,
    encoded by GStreamer and continued to an hour), captured without timing metadata (the
    recording is placed by arrival times)."""
    root = tmp_path_factory.mktemp("scene-bench") / "rec"
    bursts = tuple((s + 0.5, 3.0, 440.0) for s in range(0, 60, 5))
    base = gst.opus_packets(60.0, tone_bursts=bursts, ssrc=0x5CE, pt=111)
    packets = _continued(base, MINUTES * 60 * 50, 960)
    start = DEFAULT_CALL_START.timestamp()
    for k in range(PARTICIPANTS):
        folder = root / f"user_{k + 1}" / "s1"
        folder.mkdir(parents=True)
        write_rtpdump(
            folder / "audio_1.rtpdump",
            (CapturedPacket(20 * i + (i * 7919) % 4, p) for i, p in enumerate(packets)),
            start_unix=start + k * 0.25,
        )
        (folder / "audio_1.sdp").write_text(sdp_for("opus", pt=111, ssrc=0x5CE, cname=f"u{k}"))
    return root


@pytest.fixture(scope="session")
def project(hour_call: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project folder with its stitched tracks written once."""
    out = tmp_path_factory.mktemp("scene-bench-out") / "project"
    with rawcore.open_recording(hour_call) as rec:
        build_scene_project(rec, out)
    return out


def _cpu_s() -> float:
    """CPU time of this process, every thread: steadier than wall time on a shared host."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_scene_step_4x60min_tracks_reused(benchmark, hour_call: Path, project: Path) -> None:
    cpu: list[float] = []

    def run() -> None:
        before = _cpu_s()
        with rawcore.open_recording(hour_call) as rec:
            result = build_scene_project(rec, project)
        cpu.append(_cpu_s() - before)
        assert result.scene.clip is not None

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["call_seconds"] = MINUTES * 60 * PARTICIPANTS
    benchmark.extra_info["cpu_s_min"] = min(cpu)


def test_voice_activity_one_60min_track(benchmark, hour_call: Path) -> None:
    with rawcore.open_recording(hour_call) as rec:
        jobs, _ = plan_audio(rec, Selection(), fmt="mkv", stitch=True)
        job = jobs[0]

        cpu: list[float] = []

        def run() -> int:
            before = _cpu_s()
            with contextlib.ExitStack() as stack:
                levels, _ = _core.voice_activity(job.inputs(stack, open_archive_of(rec)))
            cpu.append(_cpu_s() - before)
            return len(levels)

        slots = benchmark.pedantic(run, rounds=3, iterations=1)
    assert slots >= MINUTES * 60 * 50
    benchmark.extra_info["cpu_s_min"] = min(cpu)
    benchmark.extra_info["realtime_factor"] = MINUTES * 60 / benchmark.stats.stats.min


def test_peer_pyav_decode_and_rms_one_60min_track(benchmark, project: Path) -> None:
    path = next((project / "tracks").glob("*user_1_audio_only*.mkv"))

    cpu: list[float] = []

    def run() -> int:
        before = _cpu_s()
        slots: list[np.ndarray] = []
        rest = np.zeros(0, dtype=np.float32)
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                x = np.concatenate((rest, frame.to_ndarray().mean(axis=0)))
                n = len(x) // 960 * 960
                slots.append(np.sqrt(np.mean(x[:n].reshape(-1, 960) ** 2, axis=1)))
                rest = x[n:]
        cpu.append(_cpu_s() - before)
        return sum(len(s) for s in slots)

    slots = benchmark.pedantic(run, rounds=3, iterations=1)
    assert slots >= MINUTES * 60 * 50
    benchmark.extra_info["realtime_factor"] = MINUTES * 60 / benchmark.stats.stats.min
    benchmark.extra_info["cpu_s_min"] = min(cpu)
