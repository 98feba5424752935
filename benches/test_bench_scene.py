"""The scene step on a four-participant, 60-minute call (audio: Opus, 2-6 s of talk in turns).

What the post-process job adds after its stitched step: `build_scene_project` with the
stitched tracks already in `tracks/` (reused), i.e. voice activity for every participant, the
clip, the layout, `scene.json` and `scene.otio`. Beside it, voice activity of one hour-long
track alone (`_core.voice_activity`: the walk plus libopus at 8 kHz), and the naive way to the
same numbers as a peer: decoding the stitched file with PyAV (FFmpeg's Opus decoder, 48 kHz)
and taking the RMS of every 20 ms with NumPy.

Run with `.venv/bin/python -m pytest benches/test_bench_scene.py --benchmark-enable
--benchmark-only`. The first run generates the call with GStreamer (a few minutes; cached).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

import rawcore  # noqa: E402
from helpers.gst import gst_available  # noqa: E402
from helpers.recording import OpusSource, SessionSpec, TrackSpec, build_recording  # noqa: E402
from rawcore import _core  # noqa: E402
from rawcore.media.audio import plan_audio  # noqa: E402
from rawcore.media.outputs import Selection, open_archive_of  # noqa: E402
from rawcore.pipeline.scene.build import build_scene_project  # noqa: E402

pytestmark = pytest.mark.skipif(not gst_available(), reason="needs GStreamer")

MINUTES = 60
PARTICIPANTS = 4


@pytest.fixture(scope="session")
def hour_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scene-bench") / "rec"
    seconds = MINUTES * 60
    # Everyone talks in 3 s turns every 5 s (one encode, cached, shared by the four captures).
    bursts = tuple((s + 0.5, 3.0, 440.0) for s in range(0, seconds - 10, 5))
    source = OpusSource(float(seconds), tone_bursts=bursts)
    spec = TrackSpec("audio", "opus", source=source, ssrc=0x1234)
    build_recording(
        root, [SessionSpec(f"user_{k + 1}", "s1", [spec]) for k in range(PARTICIPANTS)]
    )  # fmt: skip
    return root


@pytest.fixture(scope="session")
def project(hour_call: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project folder with its stitched tracks written once."""
    out = tmp_path_factory.mktemp("scene-bench-out") / "project"
    with rawcore.open_recording(hour_call) as rec:
        build_scene_project(rec, out)
    return out


def test_scene_step_4x60min_tracks_reused(benchmark, hour_call: Path, project: Path) -> None:
    def run() -> None:
        with rawcore.open_recording(hour_call) as rec:
            result = build_scene_project(rec, project)
        assert result.scene.clip is not None

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["call_seconds"] = MINUTES * 60 * PARTICIPANTS


def test_voice_activity_one_60min_track(benchmark, hour_call: Path) -> None:
    with rawcore.open_recording(hour_call) as rec:
        jobs, _ = plan_audio(rec, Selection(), fmt="mkv", stitch=True)
        job = jobs[0]

        def run() -> int:
            with contextlib.ExitStack() as stack:
                levels, _ = _core.voice_activity(job.inputs(stack, open_archive_of(rec)))
            return len(levels)

        slots = benchmark.pedantic(run, rounds=3, iterations=1)
    assert slots >= MINUTES * 60 * 50
    benchmark.extra_info["realtime_factor"] = MINUTES * 60 / benchmark.stats.stats.min


def test_peer_pyav_decode_and_rms_one_60min_track(benchmark, project: Path) -> None:
    path = next((project / "tracks").glob("*user_1_audio_only*.mkv"))

    def run() -> int:
        slots: list[np.ndarray] = []
        rest = np.zeros(0, dtype=np.float32)
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                x = np.concatenate((rest, frame.to_ndarray().mean(axis=0)))
                n = len(x) // 960 * 960
                slots.append(np.sqrt(np.mean(x[:n].reshape(-1, 960) ** 2, axis=1)))
                rest = x[n:]
        return sum(len(s) for s in slots)

    slots = benchmark.pedantic(run, rounds=3, iterations=1)
    assert slots >= MINUTES * 60 * 50
    benchmark.extra_info["realtime_factor"] = MINUTES * 60 / benchmark.stats.stats.min
