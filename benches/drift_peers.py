"""Clock drift side by side: beep onsets against their true instants on a drifting call.

Builds the call of `tests/helpers/drift_call.py` (8 minutes, Opus without DTX, sound cards at
+300 and -250 ppm, a beep every 10 s, Sender Reports on), then for each drifting sender runs
janus-pp-rec (`.mjr`), the GStreamer depay pipeline (RFC 4571 stream) and rawcore's core call
with the segment's offset and fitted clock drift, optionally also another rawcore build (e.g.
main's venv, `--before PYTHON`), each as a child process. Every output is decoded with PyAV and
every beep onset compared with its true instant: for rawcore on the recorder clock (file start
plus onset minus the call start and the path delay), for the peers from their first packet
(they place audio by RTP time from there). Also reports the frames rawcore decoded to find
quiet spots and the extraction's wall time and peak RSS.

    .venv/bin/python benches/drift_peers.py [--before /work/main/.venv/bin/python]
    .venv/bin/python benches/drift_peers.py --memory   # peak RSS and cost, 10 vs 60 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
import rawcore  # noqa: E402
from helpers import audio_truth as at  # noqa: E402
from helpers.drift_call import BEEP_HZ, BEEPS, PATH_DELAY_MS, SENDERS, sessions  # noqa: E402
from helpers.recording import build_recording  # noqa: E402
from rawcore.media.audio import plan_audio  # noqa: E402
from rawcore.media.outputs import Selection, open_archive_of  # noqa: E402

RAWCORE_CALL = (
    "import mmap, sys, json; from rawcore import _core; "
    "f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ); "
    "r = _core.extract_audio([(m, int(sys.argv[3]), float(sys.argv[4]))], sys.argv[2], "
    "codec='opus'); "
    "print(json.dumps([r.drift_corrected_ms, len(getattr(r, 'drift_steps', [])), "
    "getattr(r, 'drift_measured', -1), r.packets_written]))"
)


def onsets_ms(path: Path) -> list[float]:
    audio = at.decode_audio(path)
    return [
        (o - at.OPUS_LOOKAHEAD_S) * 1000 for o in at.tone_onsets(audio.samples, audio.rate, BEEP_HZ)
    ]


def stats(errors: list[float]) -> dict[str, float]:
    e = np.array(errors)
    return {
        "beeps": len(errors),
        "median_ms": round(float(np.median(e)), 1),
        "median_abs_ms": round(float(np.median(np.abs(e))), 1),
        "max_abs_ms": round(float(np.abs(e).max()), 1),
    }


def memory_and_cost(root: Path) -> list[dict[str, object]]:
    """Peak RSS and wall time of the core call on 10- and 60-minute tracks (`peers.py`'s steady
    440 Hz tone: never quiet, so every watch runs to the 20 ms bound and decodes the most),
    with and without a 300 ppm drift; and how many frames the drift rule decoded."""
    rows: list[dict[str, object]] = []
    for minutes in (10, 60):
        track = peers.make_opus_track(root / f"m{minutes}", minutes)
        for ppm in (0.0, 300.0):
            out = root / f"m{minutes}-{ppm}.mka"
            argv_ = [sys.executable, "-c", RAWCORE_CALL, str(track.rtpdump), str(out), "0"]
            best = min(
                (peers.run_child([*argv_, str(ppm)]) for _ in range(3)), key=lambda r: r.wall_s
            )
            detail = peers.subprocess.run(
                [*argv_, str(ppm)], capture_output=True, text=True
            ).stdout.strip()
            rows.append(
                {
                    "track": f"Opus tone {minutes} min",
                    "ppm": ppm,
                    "wall_s": round(best.wall_s, 3),
                    "peak_rss_mb": round(best.peak_rss_mb, 1),
                    "report": detail,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", help="python of another rawcore build to run beside")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--memory", action="store_true", help="only the 10/60-minute RSS runs")
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.memory:
            for row in memory_and_cost(root):
                print(json.dumps(row))
            return 0
        info = build_recording(root / "rec", sessions())
        call_start_ms = info.call_start.timestamp() * 1000
        with rawcore.open_recording(root / "rec") as rec:
            jobs, _ = plan_audio(rec, Selection(), fmt="mkv", stitch=False)
            archive = open_archive_of(rec)
            placed = {}
            for job in jobs:
                with contextlib.ExitStack() as stack:
                    (seg,) = job.inputs(stack, archive)
                    placed[job.user_id] = (int(seg[1]), float(seg[2]), job.start_unix_ms or 0)
        for user, ppm in SENDERS.items():
            if ppm == 0.0:
                continue
            track = next(t for t in info.tracks() if t.participant_id == user and t.kind == "audio")
            records = at.read_rtpdump_packets(track.rtpdump_path)
            work = root / user
            inputs = peers._write_track(work, user, "audio", "opus", records)
            offset_ms, drift, start_ms = placed[user]
            builds = {"rawcore": sys.executable}
            if args.before:
                builds["rawcore (before)"] = args.before
            for tool, python in builds.items():
                out = work / f"{tool.replace(' ', '_')}.mka"
                argv_ = [python, "-c", RAWCORE_CALL, str(track.rtpdump_path), str(out)]
                run = peers.run_child([*argv_, str(offset_ms), str(drift)])
                detail = peers.subprocess.run(
                    [*argv_, str(offset_ms), str(drift)], capture_output=True, text=True
                ).stdout.strip()
                errors = [
                    start_ms + o - (call_start_ms + t * 1000 + PATH_DELAY_MS)
                    for o, t in zip(onsets_ms(out), BEEPS, strict=True)
                ]
                rows.append(
                    {
                        "tool": tool,
                        "ppm": ppm,
                        "fitted_ppm": round(drift, 1),
                        **stats(errors),
                        "wall_s": round(run.wall_s, 3),
                        "peak_rss_mb": round(run.peak_rss_mb, 1),
                        "report": detail,
                    }
                )
            for tool, argv_fn, ext in (
                ("janus-pp-rec", peers.janus_pp_rec, "opus"),
                ("gst rtpstream", peers.gst_rtpstream(False), "mka"),
            ):
                out = work / f"{tool.replace(' ', '_')}.{ext}"
                run = peers.run_child(argv_fn(inputs, out))
                found = onsets_ms(out) if run.returncode == 0 and out.exists() else []
                # Their output starts at the first packet, sent at true time 0.
                errors = [o - t * 1000 for o, t in zip(found, BEEPS, strict=False)]
                rows.append(
                    {"tool": tool, "ppm": ppm, **stats(errors), "wall_s": round(run.wall_s, 3)}
                )
    for row in rows:
        print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
