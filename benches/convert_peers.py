"""`rawcore convert` side by side with Debian's `ffmpeg` on the same inputs, in the same run.

Builds a long VP9 + Opus WebM (one minute encoded with libvpx-vp9/libopus through PyAV, its
packets repeated with shifted timestamps up to `--minutes`), then times, best of `--repeat`,
each as a child process:

- remux: `rawcore convert IN --mode remux` vs `ffmpeg -i IN -c copy -movflags +faststart`;
- editor (on the first `--editor-minutes`): `rawcore convert IN --mode editor --preset P` vs
  `ffmpeg` with the same libx264 preset and CRF, High profile, yuv420p, CFR at the same rate,
  the same scale-and-pad to the largest size, AAC 48 kHz.

    .venv/bin/python benches/convert_peers.py --minutes 60 --editor-minutes 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

RAWCORE = str(Path(sys.executable).with_name("rawcore"))


def one_minute(path: Path, width: int, height: int, fps: int) -> None:
    import av

    with av.open(str(path), "w", format="webm") as out:
        v = out.add_stream("libvpx-vp9", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.bit_rate = 600_000
        v.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "g": str(fps * 3)}
        a = out.add_stream("libopus", rate=48_000, layout="mono")
        a.bit_rate = 32_000
        n_frames = 60 * fps
        yy, xx = np.mgrid[0:height, 0:width]
        for n in range(n_frames):
            y = ((xx + yy + 4 * n) % 200 + 16).astype(np.uint8)
            img = np.concatenate([y, np.full((height // 2, width), 128, dtype=np.uint8)], axis=0)
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for p in v.encode(frame):
                out.mux(p)
        t = np.arange(60 * 48_000) / 48_000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(
            np.float32
        )
        for i in range(0, tone.size, 960):
            frame = av.AudioFrame.from_ndarray(tone[None, i : i + 960], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48_000, i
            for p in a.encode(frame):
                out.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                out.mux(p)


def repeat(src: Path, dst: Path, minutes: int) -> None:
    """`src` (one minute) `minutes` times in a row, packets copied, timestamps shifted."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="webm") as out:
        streams = [out.add_stream_from_template(s) for s in inp.streams]
        packets = [p for p in inp.demux() if p.size]
        first = min(p.dts * p.time_base for p in packets)
        last = max((p.dts + (p.duration or 0)) * p.time_base for p in packets)
        span = Fraction(int((last - first) * 10) + 1, 10)  # a copy starts after the last ends
        for m in range(minutes):
            for p in packets:
                shift = round(span * m / p.time_base)
                q = av.Packet(bytes(p))
                q.pts, q.dts = p.pts + shift, p.dts + shift
                q.time_base, q.is_keyframe = p.time_base, p.is_keyframe
                q.duration = p.duration
                q.stream = streams[p.stream.index]
                out.mux(q)


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall clock and CPU time (user + system, the child and its threads) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def best_pair(
    ours: list[str], theirs: list[str], runs: int
) -> tuple[float, float, float, float]:
    """Best-of-`runs` wall clock and CPU time of each (ours, theirs, ours' CPU, theirs' CPU),
    the two run alternately (a shared machine's load then weighs on both alike)."""
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    for _ in range(runs):
        a.append(_timed(ours))
        b.append(_timed(theirs))
    return (min(w for w, _ in a), min(w for w, _ in b), min(c for _, c in a),
            min(c for _, c in b))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--editor-minutes", type=int, default=5, help="0: remux only")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--presets", default="veryfast,ultrafast")
    ap.add_argument("--crf", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None,
                    help="leave the inputs (minute.webm, long.webm, short.webm) in this folder")
    args = ap.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("ffmpeg is not installed (scripts/install-system-deps.sh --bench)")
    width, height = (int(v) for v in args.size.split("x"))
    results: dict[str, object] = {
        "ffmpeg": subprocess.run(
            [ffmpeg, "-version"], capture_output=True, text=True
        ).stdout.splitlines()[0],
        "cpus": os.cpu_count(),
        "input": f"VP9 {args.size} {args.fps} fps + Opus mono",
    }
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) if args.keep is None else args.keep
        d.mkdir(parents=True, exist_ok=True)
        # Inputs left by an earlier `--keep` run with the same options are used again.
        tag = f"{args.size}-{args.fps}"
        if not (d / f"minute-{tag}.webm").exists():
            one_minute(d / f"minute-{tag}.webm", width, height, args.fps)
        shutil.copyfile(d / f"minute-{tag}.webm", d / "minute.webm")
        if not (d / f"long-{tag}-{args.minutes}.webm").exists():
            repeat(d / "minute.webm", d / f"long-{tag}-{args.minutes}.webm", args.minutes)
        shutil.copyfile(d / f"long-{tag}-{args.minutes}.webm", d / "long.webm")
        if args.editor_minutes > 0:
            if not (d / f"short-{tag}-{args.editor_minutes}.webm").exists():
                repeat(d / "minute.webm", d / f"short-{tag}-{args.editor_minutes}.webm",
                       args.editor_minutes)  # fmt: skip
            shutil.copyfile(d / f"short-{tag}-{args.editor_minutes}.webm", d / "short.webm")
        size_mb = (d / "long.webm").stat().st_size / 1e6
        long, short = str(d / "long.webm"), str(d / "short.webm")
        ours = [RAWCORE, "convert", long, "-o", str(d / "r.mp4"), "--mode", "remux", "-q"]
        theirs = [ffmpeg, "-y", "-v", "error", "-i", long, "-c", "copy",
                  "-movflags", "+faststart", str(d / "f.mp4")]  # fmt: skip
        rc, ff, rc_cpu, ff_cpu = best_pair(ours, theirs, args.repeat)
        results["remux"] = {
            "minutes": args.minutes,
            "input_mb": round(size_mb, 1),
            "rawcore_s": round(rc, 2),
            "ffmpeg_s": round(ff, 2),
            "speedup": round(ff / rc, 2),
            "rawcore_cpu_s": round(rc_cpu, 2),
            "ffmpeg_cpu_s": round(ff_cpu, 2),
            "commands": [" ".join(ours), " ".join(theirs)],
        }
        print(json.dumps(results["remux"]))
        editor = {}
        vf = (
            f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,fps={args.fps}"
        )
        for preset in args.presets.split(",") if args.editor_minutes > 0 else []:
            ours = [RAWCORE, "convert", short, "-o", str(d / "e.mp4"), "--preset", preset,
                    "--crf", str(args.crf), "-q"]  # fmt: skip
            theirs = [ffmpeg, "-y", "-v", "error", "-i", short, "-vf", vf, "-c:v", "libx264",
                      "-preset", preset, "-crf", str(args.crf), "-profile:v", "high",
                      "-pix_fmt", "yuv420p", "-g", str(2 * args.fps), "-c:a", "aac",
                      "-ar", "48000", "-b:a", "96k", "-movflags", "+faststart",
                      str(d / "g.mp4")]  # fmt: skip
            rc, ff, rc_cpu, ff_cpu = best_pair(ours, theirs, args.repeat)
            editor[preset] = {
                "minutes": args.editor_minutes,
                "rawcore_s": round(rc, 2),
                "ffmpeg_s": round(ff, 2),
                "speedup": round(ff / rc, 2),
                "rawcore_cpu_s": round(rc_cpu, 2),
                "ffmpeg_cpu_s": round(ff_cpu, 2),
                "rawcore_x_realtime": round(args.editor_minutes * 60 / rc, 1),
                "commands": [" ".join(ours), " ".join(theirs)],
            }
            print(preset, json.dumps(editor[preset]))
        results["editor"] = editor
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
