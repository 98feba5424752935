"""What a viewer sees of a video track under packet loss, for every --on-loss and next to
GStreamer's depayloaders, on the very same capture.

This script owns the video-under-loss figures in BENCHMARKS.md. Per codec it makes one
call (`helpers.video_truth.lossy_call`: the scrolling test pattern, a keyframe every 3 s, a
seeded share of the packets lost), writes it with `rawcore extract-video` in each `--on-loss`
mode and with GStreamer (`pcapparse ! rtpjitterbuffer mode=none ! rtp<codec>depay !
matroskamux`, packets stamped with their arrival time; no AV1 depayloader in GStreamer 1.22),
and measures each output with `helpers.video_truth.screen_time`: every decoded picture against
the source picture that should be on screen at its time (luma PSNR; below 22 dB is damaged).

    .venv/bin/python benches/video_loss.py            # 20 s, 640x360, 30 fps, 2 % loss
    .venv/bin/python benches/video_loss.py --loss 0.05 --seconds 60 --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import rawcore  # noqa: E402
from helpers.audio_truth import read_rtpdump_packets  # noqa: E402
from helpers.mjr import write_pcap  # noqa: E402
from helpers.video_truth import VideoTruth, lossy_call, screen_time  # noqa: E402
from rawcore.media.video import ON_LOSS, extract_video  # noqa: E402

_GST = {
    "vp8": ("VP8", "rtpvp8depay"),
    "vp9": ("VP9", "rtpvp9depay"),
    "h264": ("H264", "rtph264depay ! h264parse"),
}


def gstreamer(truth: VideoTruth, work: Path) -> Path | None:
    """GStreamer's depayloader on the capture's packets at their arrival times, or None."""
    if truth.codec not in _GST:
        return None
    name, depay = _GST[truth.codec]
    pcap, out = work / "capture.pcap", work / "gst.mkv"
    write_pcap(pcap, read_rtpdump_packets(truth.track.rtpdump_path))
    caps = f"media=video,clock-rate=90000,encoding-name={name},payload={truth.track.pt}"
    pipeline = (
        f"filesrc location={pcap} ! pcapparse ts-offset=0 ! application/x-rtp,{caps} ! "
        f"rtpjitterbuffer mode=none ! {depay} ! matroskamux ! filesink location={out}"
    )
    res = subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], capture_output=True)
    return out if res.returncode == 0 and out.exists() else None


def measure(codec: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    truth = lossy_call(
        work / "rec",
        codec,
        loss=args.loss,
        seed=args.seed,
        duration_s=args.seconds,
        fps=args.fps,
        flashes=None,
        keyframe_interval=3 * args.fps,
        width=args.width,
        height=args.height,
        bitrate_kbps=args.bitrate,
    )
    rows = []
    frames = len(truth.frames_sent)
    for mode in ON_LOSS:
        with rawcore.open_recording(truth.recording.root) as rec:
            (entry,), _, _ = extract_video(rec, work / mode, on_loss=mode)
        st = screen_time(work / mode / entry.path, truth)
        rows.append({"codec": codec, "tool": f"rawcore --on-loss {mode}", **st.row()})
    gst = gstreamer(truth, work)
    if gst is not None:
        st = screen_time(gst, truth)
        rows.append({"codec": codec, "tool": "GStreamer depay", **st.row()})
    for row in rows:
        row["frames"], row["incomplete"] = frames, truth.incomplete
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    head = ("codec", "tool", "correct_s", "held_s", "black_s", "damaged_s", "missing_s",
            "shown_pct", "end_s", "true_end_s")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codecs", default="vp8,vp9,h264,av1")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=300, help="kb/s")
    ap.add_argument("--loss", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rawcore-video-loss-") as tmp:
        for codec in args.codecs.split(","):
            work = Path(tmp) / codec
            work.mkdir()
            rows += measure(codec, args, work)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": None}, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
