"""Write examples/sample-call.zip: a small three-person raw call recording for demos and docs.

The recording is the `multiparty_call` scenario from the test helpers (real Opus, VP8, VP9 and
H.264 RTP made by GStreamer, with Sender Reports, loss, duplicates, reordering, a rejoin, a screen
share and sequence-number / timestamp wraps), at low bitrates so the archive stays small. Same
arguments, same bytes: the archive has fixed timestamps and the encoders run deterministically.

    python scripts/make_sample.py [--out examples/sample-call.zip] [--duration 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from helpers.recording import multiparty_call, pack_zip  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "examples" / "sample-call.zip")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per full track")
    args = parser.parse_args(argv)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rawcore-sample-") as tmp:
        info = multiparty_call(
            Path(tmp) / "recording",
            duration_s=args.duration,
            width=320,
            height=180,
            fps=15,
            video_kbps=120,
        )
        pack_zip(info.root, args.out)
        for t in info.tracks():
            print(
                f"{t.participant_id}/{t.session_id}/{t.base_filename}: {t.codec} "
                f"{t.rtp_records} RTP records ({t.lost} lost, {t.duplicated} duplicated, "
                f"{t.reordered} swapped), {len(t.sender_reports)} SRs, "
                f"{t.rtpdump_path.stat().st_size} bytes"
            )
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size} bytes) in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
