"""AV1 RTP packets for tests, from an encoder and a payloader rawcore shares no code with.

GStreamer 1.22 has no AV1 RTP payloader, so this module owns the AV1 side of `gst`'s job:
the same synthesised pictures (`gst.i420_frames`) are encoded with PyAV's SVT-AV1 (`libsvtav1`)
in its low-delay real-time mode (every temporal unit shown in order, as a WebRTC sender sends
them), and each temporal unit is payloaded by webrtc-rs' `Av1Payloader`, a port of libwebrtc's,
run as the `av1pay` binary of the workspace's dev-only `rawcore-testkit` crate (built with cargo
on first use). The RTP headers are added here: one timestamp per temporal unit, the marker on
its last packet. Results are cached like `gst`'s (`gst.cached`).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np

from . import gst

__all__ = [
    "Av1Unavailable",
    "av1_available",
    "av1_packets",
    "av1pay_binary",
    "encode_av1",
    "payload_av1",
]

REPO = Path(__file__).resolve().parents[2]
_VIDEO_RATE = 90_000


class Av1Unavailable(RuntimeError):
    """No AV1 encoder in PyAV, or no cargo to build the payloader; tests should skip."""


@cache
def av1_available() -> bool:
    """PyAV has SVT-AV1 and cargo is on PATH (to build the payloader)."""
    try:
        import av

        av.Codec("libsvtav1", "w")
    except Exception:
        return False
    return shutil.which("cargo") is not None


@cache
def av1pay_binary() -> Path:
    """The `av1pay` binary, built from the workspace (dev profile) on first use."""
    cargo = shutil.which("cargo")
    if cargo is None:
        raise Av1Unavailable("cargo not found: it builds the AV1 payloader the tests use")
    res = subprocess.run(
        [cargo, "build", "-q", "-p", "rawcore-testkit", "--bin", "av1pay",
         "--message-format=json-render-diagnostics"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if res.returncode != 0:
        raise RuntimeError(f"building av1pay failed:\n{res.stderr[-2000:]}")
    for line in res.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            return Path(msg["executable"])
    raise RuntimeError("cargo built av1pay but named no executable")


def encode_av1(
    duration_s: float,
    *,
    width: int,
    height: int,
    fps: int,
    flashes: Sequence[float] | None,
    keyframe_interval: int,
    bitrate_kbps: int,
) -> list[bytes]:
    """Temporal units (OBUs with size fields) of `gst.i420_frames`' pictures, one per frame,
    from SVT-AV1 in low-delay CBR (`pred-struct=1`, real-time), a keyframe every
    `keyframe_interval` frames, one thread."""
    import av

    # SVT-AV1 prints its banner and settings at its default log level; errors only.
    os.environ.setdefault("SVT_LOG", "1")
    try:
        ctx = av.CodecContext.create("libsvtav1", "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise Av1Unavailable(f"PyAV has no libsvtav1 encoder ({exc})") from None
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.gop_size = keyframe_interval
    ctx.bit_rate = bitrate_kbps * 1000
    ctx.options = {"preset": "12", "svtav1-params": "pred-struct=1:rc=2:rtc=1:lp=1"}
    raw = np.frombuffer(gst.i420_frames(duration_s, width, height, fps, flashes), np.uint8)
    pictures = raw.reshape(-1, height * 3 // 2, width)
    units: list[bytes] = []
    for i, picture in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = i
        units += [bytes(p) for p in ctx.encode(frame)]
    units += [bytes(p) for p in ctx.encode(None)]
    if len(units) != len(pictures):
        raise RuntimeError(f"SVT-AV1 gave {len(units)} temporal units for {len(pictures)} frames")
    return units


def payload_av1(units: Sequence[bytes], *, mtu: int = 1200) -> list[list[bytes]]:
    """The RTP payloads of each temporal unit, from webrtc-rs' `Av1Payloader`."""
    blob = b"".join(struct.pack(">I", len(u)) + u for u in units)
    res = subprocess.run(
        [str(av1pay_binary()), str(mtu)], input=blob, capture_output=True, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"av1pay failed: {res.stderr.decode(errors='replace').strip()}")
    out, pos = res.stdout, 0
    per_unit: list[list[bytes]] = []
    for _ in units:
        (count,) = struct.unpack_from(">H", out, pos)
        pos += 2
        payloads = []
        for _ in range(count):
            (n,) = struct.unpack_from(">H", out, pos)
            payloads.append(out[pos + 2 : pos + 2 + n])
            pos += 2 + n
        per_unit.append(payloads)
    if pos != len(out):
        raise RuntimeError(f"av1pay wrote {len(out) - pos} bytes more than it announced")
    return per_unit


def _rtp(pt: int, seq: int, ts: int, ssrc: int, marker: bool, payload: bytes) -> bytes:
    return (
        struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                    ts & 0xFFFFFFFF, ssrc)
        + payload
    )  # fmt: skip


def av1_packets(
    duration_s: float,
    *,
    width: int = 320,
    height: int = 180,
    fps: int = 30,
    flashes: Sequence[float] | None = None,
    keyframe_interval: int = 90,
    ssrc: int = 0x0B0D_5001,
    pt: int = 45,
    seq_offset: int | None = None,
    ts_offset: int | None = None,
    bitrate_kbps: int = 150,
) -> list[bytes]:
    """AV1 RTP packets for `duration_s` of video, in send order; the arguments are
    `gst.vp8_packets`' (the same pictures, flashes and keyframe spacing)."""
    if width % 2 or height % 2:
        raise ValueError("width and height must be even for I420")
    seq0 = 1000 if seq_offset is None else seq_offset & 0xFFFF
    ts0 = 90_000 * 10 if ts_offset is None else ts_offset & 0xFFFFFFFF
    args = {
        "duration_s": duration_s, "width": width, "height": height, "fps": fps,
        "flashes": None if flashes is None else [float(f) for f in flashes],
        "kfi": keyframe_interval, "ssrc": ssrc, "pt": pt, "seq": seq0, "ts": ts0,
        "bitrate_kbps": bitrate_kbps, "encoder": "libsvtav1-ld", "payloader": "webrtc-rs",
    }  # fmt: skip

    def make() -> list[bytes]:
        units = encode_av1(
            duration_s,
            width=width,
            height=height,
            fps=fps,
            flashes=flashes,
            keyframe_interval=max(1, keyframe_interval),
            bitrate_kbps=bitrate_kbps,
        )
        step = _VIDEO_RATE // fps
        packets: list[bytes] = []
        seq = seq0
        for k, payloads in enumerate(payload_av1(units)):
            for j, payload in enumerate(payloads):
                last = j + 1 == len(payloads)
                packets.append(_rtp(pt, seq, ts0 + k * step, ssrc, last, payload))
                seq += 1
        return packets

    if os.environ.get("RAWCORE_NO_AV1"):
        raise Av1Unavailable("RAWCORE_NO_AV1 is set")
    return gst.cached("av1", args, make)
