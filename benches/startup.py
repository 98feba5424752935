"""Start-up and process-to-process timing of the CLI, with hyperfine, beside the peers.

This script owns the whole-process comparison (BENCHMARKS.md, "Start-up"): `rawcore --version`,
`rawcore list-tracks` on the sample call, and `rawcore extract-audio` on a recording of four
60-minute Opus tracks, then the same four tracks through janus-pp-rec and GStreamer's depay
pipeline (one process per track, as each tool is run per file), all in one hyperfine run so
they share the machine's load. Inputs come from `peers.py` (the same packets in each tool's
format) and are kept in `--workdir` between runs.

    .venv/bin/python benches/startup.py                        # needs hyperfine, janus-tools
    .venv/bin/python benches/startup.py --before /tmp/old/python  # also an older python/ tree

`--before` runs a second copy of the Python layer (e.g. `git archive <rev> python | tar -x`,
with the built `_core*.so` copied in) in the same run, for before/after figures.

    .venv/bin/python benches/startup.py --video --only-calls   # the 4 x 60 min VP8 call too

`--video` adds `extract-video` on four 60-minute VP8 tracks (640x360, ~100 kbit/s, a keyframe
every 10 s, `--loss` of the packets lost, seeded per participant: about 170 MB of captures),
with default options and with `--fill-gaps=false`, beside janus-pp-rec and GStreamer's depay
pipeline on the same tracks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402


def recording_of_four(workdir: Path, minutes: float) -> tuple[Path, peers.Track]:
    """A recording folder of four participants, each one `minutes` Opus track (the same
    packets, hard-linked), and the track in every peer's format."""
    track = peers.make_opus_track(workdir, minutes)
    rec = workdir / "four"
    for user in range(1, 5):
        session = rec / f"user_{user}" / "session_1"
        session.mkdir(parents=True, exist_ok=True)
        for src, name in ((track.rtpdump, "audio_1.rtpdump"), (track.sdp, "audio_1.sdp")):
            if not (session / name).exists():
                os.link(src, session / name)
    return rec, track


def vp8_call_of_four(workdir: Path, minutes: float, loss: float) -> tuple[Path, list[peers.Track]]:
    """A recording folder of four participants, each a `minutes` VP8 track at 640x360, 30 fps,
    about 100 kbit/s (a keyframe every 10 s) that lost `loss` of its packets (seeded, one seed
    per participant), and each track in every peer's format."""
    base = peers.gst.vp8_packets(
        30.0,
        width=640,
        height=360,
        fps=30,
        keyframe_interval=300,
        bitrate_kbps=100,
        seq_offset=2000,
        ts_offset=7_000_000,
    )
    reps = max(1, round(minutes * 2))
    packets = peers._repeat(base, reps * len(base), ts_step=3000, vp8_frames=900)
    first_ts = peers.parse_rtp_header(packets[0]).ts
    rec = workdir / f"vp8-four-{minutes:g}-{loss:g}"
    tracks = []
    for user in range(1, 5):
        rng = random.Random(user)
        records = [
            (((peers.parse_rtp_header(p).ts - first_ts) & 0xFFFFFFFF) // 90, p)
            for p in packets
            if rng.random() >= loss
        ]
        track = peers._write_track(workdir / f"vp8-{user}", "vp8", "video", "vp8", records)
        session = rec / f"user_{user}" / "session_1"
        session.mkdir(parents=True, exist_ok=True)
        for src, name in ((track.rtpdump, "video_1.rtpdump"), (track.sdp, "video_1.sdp")):
            if not (session / name).exists():
                os.link(src, session / name)
        tracks.append(track)
    return rec, tracks


def per_track_script(workdir: Path, name: str, argvs: list[list[str]]) -> Path:
    script = workdir / f"{name}.sh"
    script.write_text("set -e\n" + "\n".join(shlex.join(a) for a in argvs) + "\n")
    return script


def video_commands(
    work: Path,
    outs: Path,
    minutes: float,
    loss: float,
    layers: dict[str, Path],
    rawcore: Callable[[Path], str],
) -> list[tuple[str, str]]:
    """extract-video on the four VP8 tracks (defaults, then --fill-gaps=false) and the peers,
    one process per track."""
    rec, tracks = vp8_call_of_four(work, minutes, loss)
    label = f"4 x {minutes:g} min VP8, {loss:.1%} loss"
    commands = []
    for tag, tree in layers.items():
        out = outs / f"video{tag.strip(' ()').replace(' ', '-')}"
        commands.append(
            (
                f"rawcore extract-video {label}{tag}",
                f"{rawcore(tree)} extract-video {rec} -o {out} -q",
            )
        )
        commands.append(
            (f"rawcore extract-video --fill-gaps=false {label}{tag}",
             f"{rawcore(tree)} extract-video {rec} -o {out}-nofill -q --fill-gaps=false")
        )  # fmt: skip
    if shutil.which("janus-pp-rec"):
        argvs = [peers.janus_pp_rec(t, outs / f"janus-v{i}.webm") for i, t in enumerate(tracks)]
        commands.append(
            ("janus-pp-rec VP8, 4 processes", f"sh {per_track_script(work, 'janus-v', argvs)}")
        )
    if shutil.which("gst-launch-1.0"):
        depay = peers.gst_rtpstream(False)
        argvs = [depay(t, outs / f"gst-v{i}.mkv") for i, t in enumerate(tracks)]
        commands.append(
            ("GStreamer depay VP8, 4 processes", f"sh {per_track_script(work, 'gst-v', argvs)}")
        )
    return commands


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/rawcore-startup-bench"))
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--before", type=Path, help="an older python/ tree to time beside this one")
    ap.add_argument("--out", type=Path, default=HERE / "startup.json")
    ap.add_argument(
        "--video",
        action="store_true",
        help="also extract-video on four 60-minute VP8 tracks with --loss (defaults and "
        "--fill-gaps=false) beside janus-pp-rec and GStreamer on the same tracks",
    )
    ap.add_argument("--loss", type=float, default=0.003, help="packet loss of the VP8 tracks")
    ap.add_argument("--only-calls", action="store_true", help="leave out --version/list-tracks")
    args = ap.parse_args()
    if shutil.which("hyperfine") is None:
        print("needs hyperfine (apt-get install hyperfine)", file=sys.stderr)
        return 1
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    rec, track = recording_of_four(work, args.minutes)
    outs = work / "out"
    outs.mkdir(exist_ok=True)
    python = sys.executable
    sample = REPO / "examples" / "sample-call.zip"
    # An installed wheel carries compiled bytecode (pip compiles at install); a source tree run
    # with PYTHONDONTWRITEBYTECODE would compile every module in every process instead.
    for tree in {REPO / "python", *([args.before] if args.before else [])}:
        subprocess.run([python, "-m", "compileall", "-q", str(tree)], check=True)

    def rawcore(tree: Path) -> str:
        return f"env PYTHONPATH={tree} {python} -m rawcore"

    layers = {"": REPO / "python"}
    if args.before is not None:
        layers = {" (before)": args.before.resolve(), " (after)": REPO / "python"}
    commands: list[tuple[str, str]] = [("python -c pass", f"{python} -c pass")]
    for tag, tree in layers.items() if not args.only_calls else ():
        commands.append((f"rawcore --version{tag}", f"{rawcore(tree)} --version"))
    for tag, tree in layers.items() if not args.only_calls else ():
        listing = f"{rawcore(tree)} list-tracks {sample}"
        commands.append((f"rawcore list-tracks sample{tag}", listing))
    for tag, tree in layers.items():
        out = outs / f"rawcore{tag.strip(' ()').replace(' ', '-') or 'now'}"
        commands.append(
            (f"rawcore extract-audio 4 x {args.minutes:g} min{tag}",
             f"{rawcore(tree)} extract-audio {rec} -o {out} -q")
        )  # fmt: skip
    if shutil.which("janus-pp-rec"):
        argvs = [peers.janus_pp_rec(track, outs / f"janus{i}.opus") for i in range(4)]
        script = per_track_script(work, "janus", argvs)
        commands.append(("janus-pp-rec, 4 processes", f"sh {script}"))
    if shutil.which("gst-launch-1.0"):
        depay = peers.gst_rtpstream(False)
        argvs = [depay(track, outs / f"gst{i}.mka") for i in range(4)]
        script = per_track_script(work, "gst", argvs)
        commands.append(("GStreamer depay, 4 processes", f"sh {script}"))
    if args.video:
        commands += video_commands(work, outs, args.minutes, args.loss, layers, rawcore)
    argv = ["hyperfine", "-N", "--warmup", "2", "--runs", str(args.runs)]
    argv += ["--export-json", str(args.out), "--export-markdown", str(args.out.with_suffix(".md"))]
    for name, command in commands:
        argv += ["-n", name, command]
    subprocess.run(argv, check=True)
    results = json.loads(args.out.read_text())["results"]
    print("\n| command | mean ms | sd ms | min ms | user+sys ms |\n|---|---:|---:|---:|---:|")
    for r in results:
        cpu = (r["user"] + r["system"]) * 1000
        print(
            f"| {r['command']} | {r['mean'] * 1000:.0f} | {r['stddev'] * 1000:.0f} | "
            f"{r['min'] * 1000:.0f} | {cpu:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
