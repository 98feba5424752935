"""`rawcore compose` throughput: two cameras and a screen share into 720p30, beside the same
composition by `ffmpeg -filter_complex` (scale + crop + overlay, amix) on the same files.

Inputs are made once per session with FFmpeg's test sources (`testsrc2`, moving pictures, so
the encoder has real work; `sine` for the voices): two 640x360 30 fps cameras and a 1920x1080
10 fps screen share as H.264 in Matroska, and two Opus voices, each `RAWCORE_BENCH_MINUTES`
long (default 10). The layout is rectangles only (the peer has no shapes): the screen on the
left three quarters, the cameras stacked on the right. Both use x264 `veryfast` (rawcore's
default `balanced`) at CRF 23 and AAC at 160 kbit/s, and write a fast-start MP4. The figure is
the realtime factor (call seconds per wall second, `extra_info`); the README of BENCHMARKS.md
has the command:

    .venv/bin/python -m pytest benches/test_bench_compose.py --benchmark-enable \
        --benchmark-only -q
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("av")

from rawcore.pipeline.compose import compose

MINUTES = float(os.environ.get("RAWCORE_BENCH_MINUTES", "10"))
W, H, FPS = 1280, 720, 30
BG = "#202020"
SCREEN = {"x": 0.0, "y": 0.0, "w": 0.75, "h": 1.0}
CAM_A = {"x": 0.75, "y": 0.0, "w": 0.25, "h": 0.5}
CAM_B = {"x": 0.75, "y": 0.5, "w": 0.25, "h": 0.5}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to make the inputs and as the peer")
    d = tmp_path_factory.mktemp("compose-bench")
    secs = str(MINUTES * 60)
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-g", "60"]
    for name, size, rate in [
        ("cam_a", "640x360", 30),
        ("cam_b", "640x360", 30),
        ("screen", "1920x1080", 10),
    ]:
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-t", secs, *x264,
                str(d / f"{name}.mkv"))  # fmt: skip
    for name, freq in [("voice_a", 300), ("voice_b", 500)]:
        _ffmpeg("-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=48000", "-t", secs,
                "-c:a", "libopus", "-b:a", "32k", str(d / f"{name}.mkv"))  # fmt: skip
    dur = round(MINUTES * 60_000)

    def track(pid: str, kind: str, source: str, path: str) -> dict[str, Any]:
        return {"participant_id": pid, "kind": kind, "source": source, "path": path,
                "start_ms": 0, "duration_ms": dur}  # fmt: skip

    doc = {
        "schema": "rawcore.scene/1",
        "recording_id": "bench",
        "start_unix_ms": 0,
        "duration_ms": dur,
        "canvas": {"width": W, "height": H, "fps": FPS},
        "backgrounds": [{"t_ms": 0, "color": BG}],
        "tracks": [
            track("a", "video", "camera", "cam_a.mkv"),
            track("b", "video", "camera", "cam_b.mkv"),
            track("a", "video", "screen", "screen.mkv"),
            track("a", "audio", "camera", "voice_a.mkv"),
            track("b", "audio", "camera", "voice_b.mkv"),
        ],
        "layout": [
            {
                "t_ms": 0,
                "hosts": [
                    {"participant_id": "a", "source": "screen", **SCREEN},
                    {"participant_id": "a", "source": "camera", **CAM_A, "z": 1},
                    {"participant_id": "b", "source": "camera", **CAM_B, "z": 1},
                ],
            }
        ],
    }
    path = d / "scene.json"
    path.write_text(json.dumps(doc))
    return path


def _cpu_children() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def _cpu_self() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _px(box: dict[str, float]) -> tuple[int, int, int, int]:
    x0, y0 = round(box["x"] * W), round(box["y"] * H)
    return x0, y0, round((box["x"] + box["w"]) * W) - x0, round((box["y"] + box["h"]) * H) - y0


def _peer(scene: Path, out: Path) -> None:
    d = scene.parent
    parts = [f"color=c=0x{BG[1:]}:s={W}x{H}:r={FPS}:d={MINUTES * 60}[bg]"]
    labels = []
    for i, box in enumerate([SCREEN, CAM_A, CAM_B]):
        _, _, w, h = _px(box)
        parts.append(
            f"[{i}:v]fps={FPS},scale={w}:{h}:force_original_aspect_ratio=increase,"
            f"crop={w}:{h}[v{i}]"
        )
        labels.append(f"v{i}")
    last = "bg"
    for i, box in enumerate([SCREEN, CAM_A, CAM_B]):
        x, y, _, _ = _px(box)
        parts.append(f"[{last}][v{i}]overlay={x}:{y}:shortest=1[o{i}]")
        last = f"o{i}"
    parts.append("[3:a][4:a]amix=inputs=2:normalize=0[aout]")
    _ffmpeg(
        *[a for f in ("screen", "cam_a", "cam_b", "voice_a", "voice_b")
          for a in ("-i", str(d / f"{f}.mkv"))],
        "-filter_complex", ";".join(parts), "-map", f"[{last}]", "-map", "[aout]",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", str(out),
    )  # fmt: skip


def test_compose_720p30_two_cameras_and_a_screen(benchmark: Any, scene: Path) -> None:
    out = scene.parent / "rawcore.mp4"
    cpu0, t0 = _cpu_self(), time.perf_counter()
    benchmark.pedantic(compose, args=(scene, out), rounds=1, iterations=1)
    wall, cpu = time.perf_counter() - t0, _cpu_self() - cpu0
    benchmark.extra_info.update(
        realtime=round(MINUTES * 60 / wall, 2), wall_s=round(wall, 1), cpu_s=round(cpu, 1)
    )


def test_peer_ffmpeg_filter_complex_same_layout(benchmark: Any, scene: Path) -> None:
    out = scene.parent / "ffmpeg.mp4"
    cpu0, t0 = _cpu_children(), time.perf_counter()
    benchmark.pedantic(_peer, args=(scene, out), rounds=1, iterations=1)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    benchmark.extra_info.update(
        realtime=round(MINUTES * 60 / wall, 2), wall_s=round(wall, 1), cpu_s=round(cpu, 1)
    )


@pytest.mark.parametrize("where", ["start", "end"])
def test_compose_a_30s_clip_costs_the_same_wherever_it_sits(
    benchmark: Any, scene: Path, where: str
) -> None:
    """30 s of the scene from its start or ending at its end: every track seeks to the range,
    so both cost the same (`extra_info` has the frames and audio decoded)."""
    clip_ms = 30_000
    dur = round(MINUTES * 60_000)
    start = 0 if where == "start" else dur - clip_ms
    out = scene.parent / f"clip-{where}.mp4"
    report = benchmark.pedantic(
        compose, args=(scene, out), kwargs={"range_ms": (start, start + clip_ms)}, rounds=1,
        iterations=1,
    )  # fmt: skip
    benchmark.extra_info.update(
        range_ms=f"{start}-{start + clip_ms}",
        decoded_video_frames=report.decoded_video_frames,
        decoded_audio_s=round(report.decoded_audio_samples / 48_000, 1),
    )


@pytest.mark.parametrize("reuse", [False, True], ids=["every-picture-new", "pictures-held"])
def test_compositor_one_720p_frame(benchmark: Any, scene: Path, reuse: bool) -> None:
    """The core's share of a frame: background, the screen (1920x1080 into 960x720) and two
    cameras (640x360 into 320x360), cover-scaled and blended; with every picture new (each
    scaled) and with all of them held (blended from the scaled pixels kept)."""
    import av
    from rawcore._core import Compositor
    from rawcore.pipeline.compose.feeds import picture_of

    pictures = []
    for name, box in [("screen", SCREEN), ("cam_a", CAM_A), ("cam_b", CAM_B)]:
        with av.open(str(scene.parent / f"{name}.mkv")) as c:
            pictures.append((picture_of(next(c.decode(video=0))), box))
    comp = Compositor(W, H)
    ids = iter(range(1, 1 << 62))

    def frame() -> None:
        comp.fill(30, 128, 128)
        for p, b in pictures:
            box = (b["x"], b["y"], b["w"], b["h"])
            comp.draw(p.planes, p.strides, p.width, p.height, box, "rect", 0.0,
                      p.ident if reuse else next(ids))  # fmt: skip
        comp.frame()

    benchmark(frame)
