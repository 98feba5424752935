"""Process CPU of one core extraction call per capture, the way the CLI makes it.

Reads a capture into memory and times `_core.extract_audio` (Opus, payload type 111) or
`_core.extract_video` (VP8, payload type 96) on it: `time.process_time` around the call, best
of `--runs`, each into a new file in `--out-dir` (deleted after), through the same 1 MiB
buffered file the CLI writes. `--named` hands the core the stream the analysis chose
(`ssrcs=`, `opus_stereo=`), as `extract-audio` and `extract-video` do; without it the core
chooses by itself (a pass over the capture first).

    .venv/bin/python benches/extract_calls.py audio CAPTURE.rtpdump --named
    .venv/bin/python benches/extract_calls.py video CAPTURE.rtpdump --named

Inputs: the captures of `benches/startup.py --video` (its `--workdir`). An older `python/`
tree (with its own built `_core*.so`) runs the same calls via `PYTHONPATH=DIR` (without
`--named`, which older builds lack).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rawcore import _core


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["audio", "video"])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--named", action="store_true", help="pass the analysis' stream")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    data = args.capture.read_bytes()
    report = _core.analyze_capture(data)
    ssrcs = [report.primary_ssrc]
    stereo = report.primary_opus_stereo if args.named else False
    best = float("inf")
    for run in range(args.runs):
        out = args.out_dir / f"extract-calls-{os.getpid()}-{run}.mkv"
        start = time.process_time()
        if args.kind == "audio" and args.named:
            _core.extract_audio([(data, 0)], out, payload_type=111, ssrcs=ssrcs, opus_stereo=stereo)
        elif args.kind == "audio":
            _core.extract_audio([(data, 0)], out, payload_type=111)
        elif args.named:
            _core.extract_video(
                [(data, 0)], out, codec="vp8", payload_type=96, container="matroska", ssrcs=ssrcs
            )
        else:
            _core.extract_video(
                [(data, 0)], out, codec="vp8", payload_type=96, container="matroska"
            )
        best = min(best, time.process_time() - start)
        out.unlink()
    mode = "stream given" if args.named else "core chooses"
    print(f"{args.kind} ({mode}): best {best * 1000:.1f} ms of CPU per call, {args.runs} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
