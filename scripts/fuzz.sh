#!/usr/bin/env bash
# Run every cargo-fuzz target of rawcore-core for N seconds (default 60) each, seeded with real
# captures made by the test helpers.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 300             # every target, 5 minutes each
#   scripts/fuzz.sh 120 mux reorder # only these targets
#
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the sanitizer
# flags it needs. Seeds go to rust/rawcore-core/fuzz/corpus/<target>/ (git-ignored) and are
# regenerated only when that folder is empty; crashes land in fuzz/artifacts/<target>/ and make
# the script exit non-zero. A summary line per target (runs, coverage, crashes) ends the output.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/rust/rawcore-core/fuzz"
seconds="${1:-60}"
shift || true
python="${PYTHON:-$root/.venv/bin/python}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Seeds: real packets, captures and SDPs from the GStreamer-backed test helpers, written in the
# byte layouts each target reads (see the comment at the top of each target).
"$python" - "$fuzz_dir/corpus" <<'PY'
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd().parents[2] / "tests"))
from helpers import gst  # noqa: E402
from helpers.recording import sdp_for  # noqa: E402
from helpers.rtpdump import (  # noqa: E402
    CapturedPacket,
    parse_rtp_header,
    rtp_payload,
    sender_report_compound,
    write_rtpdump,
)

corpus = Path(sys.argv[1])


def seeds(target, items):
    folder = corpus / target
    if folder.is_dir() and any(folder.iterdir()):
        return
    folder.mkdir(parents=True, exist_ok=True)
    for i, blob in enumerate(items):
        (folder / f"seed-{i:03d}").write_bytes(blob)


def body(packets, step_ms=20, rtcp=()):
    """rtpdump records (no file header) of `packets`, one every `step_ms`."""
    out = bytearray()
    for i, p in enumerate(packets):
        out += struct.pack(">HHI", 8 + len(p), len(p), i * step_ms) + p
    for at, p in rtcp:
        out += struct.pack(">HHI", 8 + len(p), 0, at) + p
    return bytes(out)


streams = {
    "opus": gst.opus_packets(1.0),
    "opus_dtx": gst.opus_packets(2.0, dtx=True, tone_bursts=[(0.5, 0.4, 440.0)]),
    "opus_60": gst.opus_packets(1.0, frame_ms=60, channels=2),
    "opus_wrap": gst.opus_packets(1.0, seq_offset=65_500, ts_offset=2**32 - 24_000),
}
pcm = {codec: gst.pcm_packets(codec, 0.5) for codec in ("pcmu", "pcma", "g722")}
video = gst.vp8_packets(0.5, width=160, height=90, fps=10)
sr = sender_report_compound(ssrc=1, ntp_unix_s=1.77e9, rtp_ts=1000, packet_count=5,
                            octet_count=500, cname="abc")

opus_all = [p for s in streams.values() for p in s]
seeds("rtp", opus_all[:20] + video[:20] + pcm["g722"][:5])
seeds("rtcp", [sr, sr[:28], sr + sr])
seeds("sdp", [sdp_for(c, pt=pt, ssrc=7, cname="x").encode() for c, pt in
              (("opus", 111), ("vp8", 96), ("h264", 102), ("pcmu", 0), ("g722", 9))])
seeds("capture", [body(s[:60], rtcp=[(100, sr)]) for s in streams.values()] + [body(video[:40])])
seeds("opus_packet", sorted({rtp_payload(p) for p in opus_all}, key=len)[:: max(1, len(opus_all) // 60)])


def timeline_ops(packets, flags=0x03, window=16):
    out = bytearray([flags, window])
    for i, p in enumerate(packets):
        h = parse_rtp_header(p)
        out += bytes([0x81]) + struct.pack(">HII", h.seq, h.ts, i * 20) + rtp_payload(p)[:2]
    return bytes(out)


seeds("audio_timeline", [timeline_ops(s[:80], flags=f) for s, f in
                         zip(streams.values(), (0, 1, 2, 3), strict=True)])
seeds("extract_opus", [bytes([f]) + body(s[:60]) for s in streams.values()
                       for f in (0x0F, 0x1E, 0x2D, 0x4F)])
seeds("decode_pcm", [bytes([f + i]) + body(pcm[c][:25]) for i, c in enumerate(pcm)
                     for f in (0x18, 0x1B, 0x0C)])


def reorder_ops(packets, window):
    out = bytearray([window])
    for i, p in enumerate(packets):
        out += bytes([0x80]) + struct.pack(">H", parse_rtp_header(p).seq)
        if i % 3 == 2:
            out += b"\x00\x00\x00"
    return bytes(out + b"\x02\x00\x00")


seeds("reorder", [reorder_ops(s[:60], w) for s, w in zip(streams.values(), (0, 4, 16, 64), strict=True)])


def mux_ops(packets, flags):
    out = bytearray([flags]) + struct.pack(">H", 312)
    if flags & 4:
        out += struct.pack(">HH", 160, 90)
    for i, p in enumerate(packets):
        data = rtp_payload(p)[:255]
        out += bytes([i % 2 * 5]) + struct.pack(">HB", 20, len(data)) + data
        if i % 2:
            out += bytes([3])
    return bytes(out)


seeds("mux", [mux_ops(s[:40], f) for s, f in zip(streams.values(), (0, 1, 2, 5), strict=True)])


def foreign(write, packets, **kw):
    """A whole pcap or .mjr file of `packets`, written by the test helper that janus-pp-rec
    and GStreamer's pcapparse read."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed"
        write(path, [(i * 20, p) for i, p in enumerate(packets)], **kw)
        return path.read_bytes()


from helpers.mjr import write_mjr, write_pcap  # noqa: E402

def webm_seed(video_codec, fmt):
    """A short WebM/Matroska of `video_codec` and Opus written by FFmpeg (PyAV): an independent
    writer's element layout, for the `remux` target (two leading bytes pick the chunk size)."""
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        v = out.add_stream(video_codec, rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("libopus", rate=48_000, layout="mono")
        for n in range(6):
            frame = av.VideoFrame.from_ndarray(
                np.full((72, 64), 16 + 30 * n, dtype=np.uint8), format="yuv420p")
            frame.pts = n
            for p in v.encode(frame):
                out.mux(p)
        for i in range(0, 48_000 // 2, 960):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), dtype=np.float32),
                                               format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48_000, i
            for p in a.encode(frame):
                out.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                out.mux(p)
    return buf.getvalue()


seeds("remux", [b"\x00\x10" + webm_seed("libvpx-vp9", "webm"),
                b"\x07\x00" + webm_seed("libx264", "matroska")])
seeds("pictures", [b"\x00\x10" + webm_seed("libvpx-vp9", "webm"),
                   b"\x07\x00" + webm_seed("libx264", "matroska")])
seeds("split", [foreign(write_pcap, streams["opus"][:30]),
                foreign(write_pcap, video[:30]),
                foreign(write_mjr, streams["opus_dtx"][:30]),
                foreign(write_mjr, video[:30], kind="v", codec="vp8")])
PY

summary=()
status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="$(mktemp)"
    echo "== $target: ${seconds}s" >&2
    if ! cargo fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=1
    fi
    tail -n 30 "$log" >&2
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || true)"
    crashes="$(find "artifacts/$target" -type f | wc -l)"
    summary+=("$target: ${seconds}s, ${execs:-?} runs, cov ${cov:-?}, ${crashes} artifact(s)")
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
exit "$status"
