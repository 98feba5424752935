"""Side by side: rawcore and the tools people use today, on the very same RTP packets.

This script owns the comparison with peers, not rawcore's own micro-benchmarks (those are
`make bench`). It builds one long Opus track (and one VP8 track) from real GStreamer-encoded
packets, writes it in each tool's input format (rtpdump + SDP for rawcore, Janus `.mjr` for
janus-pp-rec, an RFC 4571 stream or a pcap for GStreamer), runs every tool best-of-N as a child
process (wall clock and that child's own peak RSS, from `os.wait4`), and then decodes every
output with PyAV to report the duration it really plays, next to the true span of the input.
A 30 s DTX capture checks the same thing where tools are known to disagree: whether the
silences the sender did not send come back as time.

    .venv/bin/python benches/peers.py --minutes 60 --out benches/results.json

See benches/README.md for what each peer runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from helpers import audio_truth as at  # noqa: E402
from helpers import gst  # noqa: E402
from helpers.impair import unwrap_timestamps  # noqa: E402
from helpers.mjr import write_mjr, write_pcap, write_rfc4571  # noqa: E402
from helpers.recording import sdp_for  # noqa: E402
from helpers.rtpdump import CapturedPacket, parse_rtp_header, rewrite_rtp, write_rtpdump  # noqa: E402

OPUS_PT, VP8_PT = 111, 96
START_UNIX_US = 1_772_359_200_000_000


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Track:
    """One track in every peer's input format."""

    name: str
    kind: str  # "audio" | "video"
    codec: str
    packets: int
    true_span_s: float
    rtpdump: Path
    sdp: Path
    mjr: Path
    rfc4571: Path
    pcap: Path


def _arrivals(count: int, step_ms: float) -> list[int]:
    # A little deterministic jitter (0-3 ms), never reordering: arrival order is send order.
    return [int(i * step_ms) + (i * 7919) % 4 for i in range(count)]


def _vp8_bump_picture_id(data: bytes, add: int) -> bytes:
    hdr = parse_rtp_header(data)
    off = hdr.header_len
    if len(data) >= off + 4 and data[off] & 0x80 and data[off + 1] & 0x80 and data[off + 2] & 0x80:
        pid = (((data[off + 2] & 0x7F) << 8) | data[off + 3]) + add
        pid &= 0x7FFF
        return data[: off + 2] + bytes([0x80 | (pid >> 8), pid & 0xFF]) + data[off + 4 :]
    return data


def _repeat(
    base: Sequence[bytes], total: int, *, ts_step: int, vp8_frames: int | None = None
) -> list[bytes]:
    """`total` packets made by repeating `base` with sequence numbers and timestamps continuing
    (and, for VP8, picture IDs), as if the sender had kept going."""
    first = parse_rtp_header(base[0])
    last = parse_rtp_header(base[-1])
    cycle_ts = ((last.ts - first.ts) & 0xFFFFFFFF) + ts_step
    out: list[bytes] = []
    for i in range(total):
        rep, k = divmod(i, len(base))
        pkt = base[k]
        hdr = parse_rtp_header(pkt)
        ts = hdr.ts + rep * cycle_ts
        pkt = rewrite_rtp(pkt, seq=first.seq + i, ts=ts)
        if vp8_frames is not None and rep:
            pkt = _vp8_bump_picture_id(pkt, rep * vp8_frames)
        out.append(pkt)
    return out


def _write_track(
    root: Path,
    name: str,
    kind: str,
    codec: str,
    records: list[tuple[int, bytes]],
    *,
    frame_s: float = 0.0,
) -> Track:
    """Write every input format; the true span comes from the packets' own timestamps (the
    Opus TOC gives the last packet's length, `frame_s` a video frame's)."""
    root.mkdir(parents=True, exist_ok=True)
    pt = OPUS_PT if codec == "opus" else VP8_PT
    ssrc = parse_rtp_header(records[0][1]).ssrc
    rtpdump = root / f"{name}.rtpdump"
    write_rtpdump(
        rtpdump,
        (CapturedPacket(ms, data) for ms, data in records),
        start_unix=START_UNIX_US / 1e6,
    )
    sdp = root / f"{name}.sdp"
    sdp.write_text(sdp_for(codec, pt=pt, ssrc=ssrc, cname="bench"), newline="")
    mjr = root / f"{name}.mjr"
    write_mjr(mjr, records, kind="a" if kind == "audio" else "v", codec=codec)
    stream = root / f"{name}.rtpstream"
    write_rfc4571(stream, records)
    pcap = root / f"{name}.pcap"
    write_pcap(pcap, records, start_unix_us=START_UNIX_US)
    if codec == "opus":
        true_span_s = at.capture_truth(rtpdump).span_s
    else:
        ext = unwrap_timestamps([parse_rtp_header(d).ts for _, d in records])
        true_span_s = (max(ext) - min(ext)) / 90_000 + frame_s
    return Track(name, kind, codec, len(records), true_span_s, rtpdump, sdp, mjr, stream, pcap)


def make_opus_track(root: Path, minutes: float) -> Track:
    # 10 s of real Opus (a 440 Hz tone at 48 kb/s: 100-130 byte payloads, about what a voice
    # call sends), repeated to length. The GStreamer capture skips one 20 ms frame (sequence
    # number and timestamp both jump) 6.8 s in, so every 10 s carries one real 20 ms hole: the
    # true span counts it, and a tool that fills holes decodes to it.
    base = gst.opus_packets(10.0, bitrate=48_000, seq_offset=1000, ts_offset=5_000_000)
    total = round(minutes * 60 * 50)
    packets = _repeat(base, total, ts_step=960)
    records = list(zip(_arrivals(total, 20.0), packets, strict=True))
    return _write_track(root, "opus", "audio", "opus", records)


def make_vp8_track(root: Path, minutes: float) -> Track:
    # 30 s of 640x360 at 30 fps, ~800 kb/s, keyframe every 3 s: packets of about 1.1 KB.
    seconds, fps = 30.0, 30
    base = gst.vp8_packets(
        seconds,
        width=640,
        height=360,
        fps=fps,
        keyframe_interval=3 * fps,
        bitrate_kbps=800,
        seq_offset=2000,
        ts_offset=7_000_000,
    )
    frames = round(seconds * fps)
    reps = max(1, round(minutes * 60 / seconds))
    packets = _repeat(base, reps * len(base), ts_step=90_000 // fps, vp8_frames=frames)
    # Arrival follows the RTP clock: packets of one frame arrive together.
    first_ts = parse_rtp_header(packets[0]).ts
    records = []
    for pkt in packets:
        rel = (parse_rtp_header(pkt).ts - first_ts) & 0xFFFFFFFF
        records.append((rel // 90, pkt))
    return _write_track(root, "vp8", "video", "vp8", records, frame_s=1 / fps)


def make_dtx_track(root: Path) -> Track:
    truth = at.dtx_call(root / "dtx-recording", duration_s=30.0)
    records = at.read_rtpdump_packets(truth.rtpdump_path)
    return _write_track(root, "dtx", "audio", "opus", records)


# ---------------------------------------------------------------------------------------------
# Peers


@dataclass
class Run:
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stderr_tail: str


_GNU_TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").is_file() else None)


def run_child(argv: Sequence[str]) -> Run:
    """Run one child to completion; its wall time and its own peak RSS (not the harness's).

    Linux carries a process's peak RSS across exec, so a child forked straight from this
    (large) harness would report the harness's memory. GNU time is a small process that forks
    the peer itself and reports the peer's own peak; without it, `os.wait4` is the fallback.
    """
    with tempfile.NamedTemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        cmd = list(argv)
        if _GNU_TIME:
            cmd = [_GNU_TIME, "-f", "%M", "-o", rss.name, *cmd]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-400:].decode(errors="replace")
        peak_kib = float(usage.ru_maxrss)
        if _GNU_TIME:
            text = rss.read().strip().splitlines()
            if text and text[-1].isdigit():
                peak_kib = float(text[-1])
    return Run(wall, peak_kib / 1024, proc.returncode, tail)


@dataclass
class Peer:
    """A tool invocation: how to build its command from a track and an output path."""

    tool: str
    input_kind: str  # which of the Track's files it reads
    out_ext: str
    argv: Callable[[Track, Path], list[str] | None]
    note: str = ""


def _gst_launch(pipeline: str) -> list[str]:
    return ["gst-launch-1.0", "-q", *pipeline.split()]


_OPUS_CAPS = "media=audio,clock-rate=48000,encoding-name=OPUS,payload=111"
_VP8_CAPS = "media=video,clock-rate=90000,encoding-name=VP8,payload=96"


def _caps(track: Track) -> str:
    return _OPUS_CAPS if track.codec == "opus" else _VP8_CAPS


def _depay(track: Track) -> str:
    return "rtpopusdepay ! opusparse" if track.codec == "opus" else "rtpvp8depay"


def gst_rtpstream(jitterbuffer: bool) -> Callable[[Track, Path], list[str]]:
    def argv(track: Track, out: Path) -> list[str]:
        jb = "rtpjitterbuffer ! " if jitterbuffer else ""
        return _gst_launch(
            f"filesrc location={track.rfc4571} ! application/x-rtp-stream,{_caps(track)} ! "
            f"rtpstreamdepay ! {jb}{_depay(track)} ! matroskamux ! filesink location={out}"
        )

    return argv


def gst_pcap(track: Track, out: Path) -> list[str]:
    # pcapparse stamps each packet with its arrival time, so the depayloader sees real time.
    return _gst_launch(
        f"filesrc location={track.pcap} ! pcapparse ts-offset=0 ! application/x-rtp,{_caps(track)} "
        f"! rtpjitterbuffer mode=none ! {_depay(track)} ! matroskamux ! filesink location={out}"
    )


def janus_pp_rec(track: Track, out: Path) -> list[str]:
    return ["janus-pp-rec", str(track.mjr), str(out)]


def rawcore_argv(track: Track, out: Path) -> list[str] | None:
    """rawcore in a child process (so its RSS is measured like the others'), or None."""
    if rawcore_extract_audio() is None:
        return None
    # A bare interpreter that imports only the core, like a backend worker calling the API.
    call = (
        "_core.extract_audio([(m, 0)], sys.argv[2], container='matroska')"
        if track.kind == "audio"
        else f"_core.extract_video([(m, 0)], sys.argv[2], codec={track.codec!r}, "
        "container='matroska')"
    )
    code = (
        "import mmap, sys; from rawcore import _core; "
        "f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ); "
        + call
    )
    return [sys.executable, "-c", code, str(track.rtpdump), str(out)]


def rawcore_cli_argv(track: Track, out: Path) -> list[str] | None:
    """The whole `rawcore extract-audio` command on a one-track recording folder: archive
    scan, capture analysis, planning, extraction and manifest, as a user runs it."""
    if rawcore_extract_audio() is None:
        return None
    command = "extract-audio" if track.kind == "audio" else "extract-video"
    rec = out.parent / f"{track.name}-recording"
    session = rec / "user" / "session"
    if not session.is_dir():
        session.mkdir(parents=True)
        base = "audio_1" if track.kind == "audio" else "video_1"
        os.link(track.rtpdump, session / f"{base}.rtpdump")
        os.link(track.sdp, session / f"{base}.sdp")
    cli = Path(sys.executable).with_name("rawcore")
    return [str(cli), command, "--input-dir", str(rec), "--output", str(out) + ".d", "-q"]


def rawcore_extract_audio() -> Callable[[Path, Path], Any] | None:
    """The rawcore call that turns an rtpdump's Opus track into a file, if this build has one.

    Integrator: point this at the real API once `extract-audio` lands; `run_rawcore` passes
    (rtpdump path, output path) and expects the output file written.
    """
    try:
        from rawcore import _core
    except ImportError:
        return None
    fn = getattr(_core, "extract_audio", None)
    if fn is None:
        return None

    def call(rtpdump: Path, out: Path) -> Any:
        import mmap

        with rtpdump.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return fn([(mm, 0)], str(out), container="matroska")

    return call


def run_rawcore(rtpdump_path: Path, out_path: Path) -> str:
    """Run rawcore's audio extraction; returns "ok" or "not available"."""
    fn = rawcore_extract_audio()
    if fn is None:
        return "not available"
    fn(rtpdump_path, out_path)
    return "ok"


PEERS = [
    Peer("janus-pp-rec", "mjr", "", janus_pp_rec),
    Peer("gst rtpstream", "rtpstream", "mka", gst_rtpstream(False)),
    Peer("gst rtpstream+jitterbuffer", "rtpstream", "mka", gst_rtpstream(True)),
    Peer("gst pcap (arrival clock)", "pcap", "mka", gst_pcap),
    Peer("rawcore (core call)", "rtpdump", "mka", rawcore_argv),
    Peer("rawcore CLI (extract-audio/-video)", "rtpdump", "mka", rawcore_cli_argv),
]


def _input_path(track: Track, kind: str) -> Path:
    return {
        "mjr": track.mjr,
        "rtpstream": track.rfc4571,
        "pcap": track.pcap,
        "rtpdump": track.rtpdump,
    }[kind]


# ---------------------------------------------------------------------------------------------
# Validating outputs


def output_duration(path: Path, kind: str) -> tuple[float | None, float | None, str]:
    """Seconds the output plays, measured by FFmpeg (PyAV): decoded samples for audio, the
    demuxed frame timestamps for video (decoding an hour of video would dwarf the runs)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None, None, "no output"
    try:
        if kind == "audio":
            dec = at.decode_audio(path)
            note = f"{dec.errors} decode errors" if dec.errors else ""
            if dec.timestamp_gaps_s > 0.05:
                note = (note + "; " if note else "") + f"{dec.timestamp_gaps_s:.2f} s pts gaps"
            return dec.duration_s, dec.duration_s + dec.timestamp_gaps_s, note
        seconds, note = _video_duration(path)
        return seconds, seconds, note
    except Exception as exc:  # a broken output is a result, not a harness crash
        return None, None, f"undecodable: {type(exc).__name__}: {str(exc)[:80]}"


def _video_duration(path: Path) -> tuple[float | None, str]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = last = None
        frames = keyframes = 0
        step = 0.0
        decoded_ok = 0
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            t = float(packet.pts * packet.time_base)
            first = t if first is None else min(first, t)
            if last is not None and t > last:
                step = t - last
            last = t if last is None else max(last, t)
            frames += 1
            keyframes += bool(packet.is_keyframe)
            if frames <= 30:  # prove the start decodes
                with contextlib.suppress(av.error.FFmpegError):
                    decoded_ok += len(packet.decode())
        if first is None or last is None:
            return None, "no frames"
        return last - first + step, f"{frames} frames, {keyframes} key, {decoded_ok}/30 decoded"


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class Result:
    tool: str
    track: str
    input: str
    input_mb: float
    packets: int
    wall_s: float | None = None
    packets_per_s: float | None = None
    mb_per_s: float | None = None
    peak_rss_mb: float | None = None
    output_mb: float | None = None
    decoded_s: float | None = None
    #: decoded_s plus the gaps in the output's timestamps: what a timestamp-driven player shows.
    timeline_s: float | None = None
    true_span_s: float = 0.0
    status: str = ""
    runs: list[float] = field(default_factory=list)


def measure(peer: Peer, track: Track, workdir: Path, repeats: int) -> Result:
    src = _input_path(track, peer.input_kind)
    size_mb = src.stat().st_size / 1e6
    res = Result(peer.tool, track.name, src.name, round(size_mb, 2), track.packets)
    res.true_span_s = round(track.true_span_s, 3)
    ext = peer.out_ext or ("opus" if track.codec == "opus" else "webm")
    out = workdir / f"{track.name}.{peer.tool.split()[0]}.{abs(hash(peer.tool)) % 1000}.{ext}"
    argv = peer.argv(track, out)
    if argv is None:
        res.status = "not available"
        return res
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        res.status = f"{argv[0]} not installed"
        return res
    best: Run | None = None
    for _ in range(repeats):
        out.unlink(missing_ok=True)
        run = run_child(argv)
        if run.returncode != 0:
            res.status = f"exit {run.returncode}: {run.stderr_tail.strip()[-200:]}"
            return res
        res.runs.append(round(run.wall_s, 3))
        if best is None or run.wall_s < best.wall_s:
            best = run
    assert best is not None
    res.wall_s = round(best.wall_s, 3)
    res.packets_per_s = round(track.packets / best.wall_s)
    res.mb_per_s = round(size_mb / best.wall_s, 1)
    res.peak_rss_mb = round(max(1.0, best.peak_rss_mb), 1)
    folder = Path(str(out) + ".d")  # a CLI run writes a folder of outputs and a manifest
    if not out.is_file() and folder.is_dir():
        written = sorted(folder.glob("*.mkv"))
        if len(written) == 1:
            written[0].replace(out)
        shutil.rmtree(folder)
    res.output_mb = round(out.stat().st_size / 1e6, 3) if out.is_file() else 0.0
    decoded, timeline, note = output_duration(out, track.kind)
    res.decoded_s = None if decoded is None else round(decoded, 3)
    res.timeline_s = None if timeline is None else round(timeline, 3)
    res.status = note or "ok"
    out.unlink(missing_ok=True)
    return res


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if v < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(results: Sequence[Result]) -> str:
    head = (
        "| tool | track | input | packets | wall s | packets/s | MB/s | peak RSS MB "
        "| decoded s | timeline s | true s | status |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in results:
        cells = [
            r.tool,
            r.track,
            f"{r.input} ({r.input_mb} MB)",
            r.packets,
            r.wall_s,
            r.packets_per_s,
            r.mb_per_s,
            r.peak_rss_mb,
            r.decoded_s,
            r.timeline_s,
            r.true_span_s,
            r.status,
        ]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            res = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "not installed"
        text = (res.stdout + res.stderr).strip().splitlines()
        return next((ln for ln in text if "version" in ln.lower()), text[0] if text else "?")

    try:
        import av

        av_version = av.__version__
    except ImportError:
        av_version = "not installed"
    try:
        import rawcore

        rawcore_version = getattr(rawcore, "__version__", "?")
    except ImportError:
        rawcore_version = "not installed"
    return {
        "janus-pp-rec": first_line(["janus-pp-rec", "-V"]),
        "gstreamer": first_line(["gst-launch-1.0", "--version"]),
        "pyav": av_version,
        "rawcore": rawcore_version,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the Opus track")
    ap.add_argument("--video-minutes", type=float, default=10.0, help="length of the VP8 track")
    ap.add_argument("--repeats", type=int, default=3, help="runs per peer; the best counts")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    ap.add_argument("--workdir", type=Path, default=None, help="keep inputs here (default: tmp)")
    ap.add_argument("--skip-video", action="store_true")
    ap.add_argument("--run-rawcore", nargs=2, metavar=("RTPDUMP", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_rawcore:
        status = run_rawcore(Path(args.run_rawcore[0]), Path(args.run_rawcore[1]))
        return 0 if status == "ok" else 3
    if not gst.gst_available("opusenc", "rtpopuspay", "vp8enc", "rtpstreampay"):
        print("GStreamer with opus and vpx is needed to make the inputs", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rawcore-peers-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        tracks = [make_opus_track(work / "in", args.minutes), make_dtx_track(work / "in")]
        if not args.skip_video:
            tracks.insert(1, make_vp8_track(work / "in", args.video_minutes))
        print(f"inputs ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        results: list[Result] = []
        for track in tracks:
            for peer in PEERS:
                if peer.tool == "gst pcap (arrival clock)" and track.name == "opus":
                    # Same work as the rtpstream runs, plus parsing pcap framing: only the DTX
                    # capture needs arrival times.
                    continue
                repeats = args.repeats if track.name != "dtx" else 1
                r = measure(peer, track, work, repeats)
                print(
                    f"  {r.tool:28} {r.track:5} {_fmt(r.wall_s):>8} s  {r.status}", file=sys.stderr
                )
                results.append(r)
    table = markdown(results)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "python benches/peers.py " + " ".join(sys.argv[1:]),
                "versions": _versions(),
                "minutes": args.minutes,
                "video_minutes": None if args.skip_video else args.video_minutes,
                "repeats": args.repeats,
                "results": [asdict(r) for r in results],
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
