"""Whole raw call recordings, built from declarative specs, with their ground truth.

This module owns the on-disk contract rawcore reads: one folder per participant and user session,
each holding an rtpdump capture and an SDP file per track plus `timing_metadata.json`:

    <root>/[<top_folder>/]<participant_id>/<user_session_id>/<base>.rtpdump
                                                           /<base>.sdp
                                                           /timing_metadata.json

A `TrackSpec` says what a track carries (ready RTP packets, or an `OpusSource` / `VideoSource`
that `gst` turns into real packets), when it starts relative to the call, and what the network
does to it (`Impairments`, `SenderReports`). `build_recording` writes the tree and returns a
`RecordingInfo` holding what was actually written — packet counts, injected loss and duplicates,
first/last arrival times, the metadata segments — so tests compare rawcore against facts, not
against a second reading of the files. `pack_zip` / `pack_targz` make byte-stable archives.

Timing metadata conventions: `*_rtp_unix_timestamp` is the arrival time (Unix ms) of the first /
last RTP record in the capture; `*_rtcp_ntp_timestamp` is the wall-clock time a Sender Report
claims, converted to Unix ms; `first_key_frame_offset_ms` is how long after the first RTP arrival
the first keyframe began to arrive; `max_frame_dimension` is the largest picture,
`{"width": W, "height": H}`. The file is written as Stream's recorder writes it: Go's
`encoding/json` (`omitempty` fields left out when zero, the others written with their zero value).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from . import av1, gst
from .impair import (
    SenderReportInfo,
    inject_garbage,
    rewrite,
    schedule,
    with_sender_reports,
)
from .rtpdump import CapturedPacket, RtpHeader, parse_rtp_header, rtp_payload, write_rtpdump

__all__ = [
    "CLOCK_RATES",
    "DEFAULT_CALL_START",
    "DEFAULT_PT",
    "Impairments",
    "OpusSource",
    "RecordingInfo",
    "SenderReports",
    "SessionSpec",
    "SessionTruth",
    "TrackSpec",
    "TrackTruth",
    "VideoSource",
    "build_recording",
    "format_call_time",
    "is_keyframe_start",
    "multiparty_call",
    "pack_targz",
    "pack_zip",
    "sdp_for",
]

Kind = Literal["audio", "video", "screen_share", "screen_share_audio"]
Codec = Literal["opus", "vp8", "vp9", "h264", "av1", "pcmu", "pcma", "g722"]

DEFAULT_CALL_START = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)

TRACK_TYPES: dict[str, str] = {
    "audio": "TRACK_TYPE_AUDIO",
    "video": "TRACK_TYPE_VIDEO",
    "screen_share": "TRACK_TYPE_SCREEN_SHARE",
    "screen_share_audio": "TRACK_TYPE_SCREEN_SHARE_AUDIO",
}
AUDIO_KINDS = frozenset({"audio", "screen_share_audio"})
CLOCK_RATES: dict[str, int] = {
    "opus": 48_000,
    "pcmu": 8_000,
    "pcma": 8_000,
    # G.722 samples at 16 kHz but its RTP clock runs at 8 kHz (RFC 3551, 4.5.2).
    "g722": 8_000,
    "vp8": 90_000,
    "vp9": 90_000,
    "h264": 90_000,
    "av1": 90_000,
}
DEFAULT_PT: dict[str, int] = {
    "opus": 111,
    "pcmu": 0,
    "pcma": 8,
    "g722": 9,
    "vp8": 96,
    "vp9": 98,
    "h264": 102,
    "av1": 45,
}
_AUDIO_PORT, _VIDEO_PORT = 5004, 5006


@dataclass(frozen=True)
class OpusSource:
    """Generate the track with `gst.opus_packets`."""

    duration_s: float
    frame_ms: int = 20
    dtx: bool = False
    tone_bursts: tuple[tuple[float, float, float], ...] | None = None
    channels: int = 1
    bitrate: int = 32_000
    #: `(start_s, dur_s)` spans of speech-like sound (`gst.speech_like`), coded SILK or hybrid.
    speech: tuple[tuple[float, float], ...] | None = None
    #: In-band FEC, opusenc's bandwidth and audio type: see `gst.opus_packets`.
    fec: bool = False
    bandwidth: str | None = None
    audio_type: str | None = None


@dataclass(frozen=True)
class VideoSource:
    """Generate the track with `gst.<codec>_packets` (the codec comes from the `TrackSpec`)."""

    duration_s: float
    width: int = 320
    height: int = 180
    fps: int = 15
    flashes: tuple[float, ...] | None = None
    #: In frames; None means every 3 seconds.
    keyframe_interval: int | None = None
    bitrate_kbps: int = 150


@dataclass(frozen=True)
class Impairments:
    """What the network does to a track; see `impair.schedule` and `impair.inject_garbage`."""

    jitter_ms: int = 0
    loss: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    extra_delay_ms: int = 20
    garbage: int = 0
    seed: int = 0
    #: The sender's media clock runs off true time: media time t is sent at t·(1 + ppm/10⁶).
    clock_drift_ppm: float = 0.0


@dataclass(frozen=True)
class SenderReports:
    """RTCP Sender Reports in the capture; `ntp_offset_s` skews the sender's wall clock."""

    interval_s: float = 1.0
    ntp_offset_s: float = 0.0


@dataclass(frozen=True)
class TrackSpec:
    """One captured track. Give either `packets` (RTP bytes in send order) or `source`."""

    kind: Kind
    codec: Codec
    packets: Sequence[bytes] | None = None
    source: OpusSource | VideoSource | None = None
    start_offset_s: float = 0.0
    base_filename: str | None = None
    track_id: str | None = None
    ssrc: int | None = None
    pt: int | None = None
    #: Initial sequence number / RTP timestamp (e.g. 65500 or 2**32 - 90000 to force a wrap).
    seq_offset: int | None = None
    ts_offset: int | None = None
    impairments: Impairments = field(default_factory=Impairments)
    sender_reports: SenderReports | None = field(default_factory=SenderReports)
    #: Overrides what is derived from a `VideoSource` or a VP8 keyframe.
    max_frame_dimension: tuple[int, int] | None = None
    #: False leaves the capture on disk but out of timing_metadata.json.
    in_metadata: bool = True


@dataclass(frozen=True)
class SessionSpec:
    participant_id: str
    session_id: str
    tracks: Sequence[TrackSpec]


@dataclass(frozen=True)
class TrackTruth:
    """What `build_recording` wrote for one track."""

    participant_id: str
    session_id: str
    kind: str
    track_type: str
    codec: str
    base_filename: str
    track_id: str
    ssrc: int
    pt: int
    clock_rate: int
    rtpdump_path: Path
    sdp_path: Path
    capture_start_unix_ms: int
    #: RTP packets the sender produced, before the network touched them.
    packets_sent: int
    #: RTP records in the file, duplicates included (garbage and RTCP not).
    rtp_records: int
    #: Distinct sequence numbers in the file.
    unique_packets: int
    lost: int
    duplicated: int
    #: Explicit adjacent swaps injected (`Impairments.reorder`).
    reordered: int
    #: RTP records that arrived after a later-sent packet (swaps and jitter together).
    out_of_order: int
    garbage: int
    lost_seqs: tuple[int, ...]
    sender_reports: tuple[SenderReportInfo, ...]
    first_arrival_unix_ms: int | None
    last_arrival_unix_ms: int | None
    first_rtp_ts: int | None
    last_rtp_ts: int | None
    first_key_frame_offset_ms: int | None
    max_frame_dimension: tuple[int, int] | None
    #: Nominal media duration of a generated source, None for given packets.
    media_duration_s: float | None
    segment: dict[str, Any]


@dataclass(frozen=True)
class SessionTruth:
    participant_id: str
    session_id: str
    path: Path
    metadata_path: Path | None
    tracks: tuple[TrackTruth, ...]


@dataclass(frozen=True)
class RecordingInfo:
    """Ground truth of a built recording. `root` is what gets archived; `tree` is where the
    participant folders are (`root / top_folder`, or `root`)."""

    root: Path
    tree: Path
    call_type: str
    call_id: str
    call_session_id: str
    call_start: datetime
    sessions: tuple[SessionTruth, ...]

    def tracks(self) -> list[TrackTruth]:
        return [t for s in self.sessions for t in s.tracks]

    def track(
        self, participant_id: str, base_filename: str, session_id: str | None = None
    ) -> TrackTruth:
        found = [
            t
            for t in self.tracks()
            if t.participant_id == participant_id
            and t.base_filename == base_filename
            and (session_id is None or t.session_id == session_id)
        ]
        if len(found) != 1:
            where = f"{participant_id}/{session_id or '*'}/{base_filename}"
            raise KeyError(f"{len(found)} tracks match {where}")
        return found[0]

    def files(self) -> list[str]:
        """Every file under `root`, as sorted POSIX paths relative to it."""
        return [name for name, _ in _archive_members(self.root)]


def format_call_time(when: datetime) -> str:
    """RFC 3339 UTC as Go's `time.Time` marshals it (RFC 3339 with nanoseconds, trailing zeros
    of the fraction left out, `Z`)."""
    utc = when.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}000".rstrip("0")
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


#: The segment fields Stream's recorder writes without `omitempty`: present even when zero.
_ALWAYS_WRITTEN = frozenset(
    {"base_filename", "codec", "track_id", "track_type", "first_rtp_rtp_timestamp",
     "first_rtp_unix_timestamp"}
)  # fmt: skip


def go_segment_json(segment: dict[str, Any]) -> dict[str, Any]:
    """A segment as Go's `encoding/json` writes the recorder's struct: an `omitempty` field
    with a zero value is left out, any other is written (0 or "" for unknown)."""
    out: dict[str, Any] = {}
    for key, value in segment.items():
        if key in _ALWAYS_WRITTEN:
            out[key] = value if value is not None else (0 if "timestamp" in key else "")
        elif value:
            out[key] = value
    return out


def _stable_int(*parts: str, bits: int = 32) -> int:
    digest = hashlib.blake2b("/".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (1 << bits) or 1


def _unix_ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


# ---------------------------------------------------------------------------------------------
# Codec knowledge the metadata needs


def is_keyframe_start(codec: str, payload: bytes) -> bool:
    """True if an RTP payload begins a keyframe (for H.264: an SPS or the start of an IDR)."""
    if not payload:
        return False
    if codec == "vp8":
        return _vp8_keyframe_header(payload) is not None
    if codec == "vp9":
        b0 = payload[0]
        return bool(b0 & 0x08) and not b0 & 0x40  # B (frame start) and not P (inter-predicted)
    if codec == "h264":
        nal = payload[0] & 0x1F
        if nal in (5, 7):
            return True
        if nal == 24:  # STAP-A: u16 size + NAL, repeated
            pos = 1
            while pos + 3 <= len(payload):
                size = int.from_bytes(payload[pos : pos + 2], "big")
                if payload[pos + 2] & 0x1F in (5, 7):
                    return True
                pos += 2 + size
            return False
        if nal == 28 and len(payload) >= 2:  # FU-A: start bit and the fragmented NAL's type
            return bool(payload[1] & 0x80) and payload[1] & 0x1F == 5
        return False
    if codec == "av1":
        return bool(payload[0] & 0x08)  # N: first packet of a coded video sequence
    return False


def _vp8_keyframe_header(payload: bytes) -> bytes | None:
    """The VP8 frame header if the payload starts a keyframe partition, else None."""
    b0 = payload[0]
    if not b0 & 0x10 or b0 & 0x07:  # S must be set, partition index 0
        return None
    pos = 1
    if b0 & 0x80:
        if len(payload) < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:
            pos += 2 if len(payload) > pos and payload[pos] & 0x80 else 1
        if ext & 0x40:
            pos += 1
        if ext & 0x30:
            pos += 1
    header = payload[pos:]
    if len(header) < 10 or header[0] & 0x01:  # P bit 0 means keyframe
        return None
    return header


def _max_dimension(codec: str, captured: Sequence[CapturedPacket]) -> tuple[int, int] | None:
    if codec != "vp8":
        return None
    for c in captured:
        try:
            header = _vp8_keyframe_header(rtp_payload(c.data))
        except ValueError:
            continue
        if header is not None and header[3:6] == b"\x9d\x01\x2a":
            width = int.from_bytes(header[6:8], "little") & 0x3FFF
            height = int.from_bytes(header[8:10], "little") & 0x3FFF
            return width, height
    return None


def sdp_for(
    codec: str,
    *,
    pt: int,
    ssrc: int,
    cname: str,
    session_id: int = 1,
    channels: int = 1,
) -> str:
    """An SDP like a WebRTC SFU stores beside each capture: one m-line for the track."""
    lines = [
        "v=0",
        f"o=- {session_id} 2 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
    ]
    if codec in AUDIO_CODECS:
        lines.append(f"m=audio {_AUDIO_PORT} RTP/AVPF {pt}")
        if codec == "opus":
            fmtp = "minptime=10;useinbandfec=1" + (";stereo=1" if channels == 2 else "")
            lines += [f"a=rtpmap:{pt} opus/48000/2", f"a=fmtp:{pt} {fmtp}"]
        else:
            name = {"pcmu": "PCMU", "pcma": "PCMA", "g722": "G722"}[codec]
            lines.append(f"a=rtpmap:{pt} {name}/8000")
        lines += [
            f"a=rtcp-fb:{pt} transport-cc",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        ]
    else:
        rtx = pt + 1
        name = {"vp8": "VP8", "vp9": "VP9", "h264": "H264", "av1": "AV1"}[codec]
        lines += [f"m=video {_VIDEO_PORT} RTP/AVPF {pt} {rtx}", f"a=rtpmap:{pt} {name}/90000"]
        if codec == "vp9":
            lines.append(f"a=fmtp:{pt} profile-id=0")
        elif codec == "h264":
            lines.append(
                f"a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;"
                "profile-level-id=42e01f"
            )
        lines += [
            f"a=rtcp-fb:{pt} goog-remb",
            f"a=rtcp-fb:{pt} transport-cc",
            f"a=rtcp-fb:{pt} ccm fir",
            f"a=rtcp-fb:{pt} nack",
            f"a=rtcp-fb:{pt} nack pli",
            f"a=rtpmap:{rtx} rtx/90000",
            f"a=fmtp:{rtx} apt={pt}",
            "a=extmap:3 urn:3gpp:video-orientation",
            "a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        ]
    lines += ["a=recvonly", "a=rtcp-mux", f"a=ssrc:{ssrc} cname:{cname}"]
    return "\r\n".join(lines) + "\r\n"


AUDIO_CODECS = frozenset({"opus", "pcmu", "pcma", "g722"})


# ---------------------------------------------------------------------------------------------
# Building


def _generate(spec: TrackSpec, ssrc: int, pt: int) -> tuple[list[bytes], float | None]:
    src = spec.source
    if spec.packets is not None:
        if src is not None:
            raise ValueError("give a TrackSpec either packets or a source, not both")
        packets = list(spec.packets)
        if any(v is not None for v in (spec.ssrc, spec.pt, spec.seq_offset, spec.ts_offset)):
            packets = rewrite(
                packets,
                seq_offset=spec.seq_offset,
                ts_offset=spec.ts_offset,
                ssrc=spec.ssrc,
                pt=spec.pt,
            )
        return packets, None
    if isinstance(src, OpusSource):
        if spec.codec != "opus":
            raise ValueError(f"an OpusSource cannot make {spec.codec}")
        packets = gst.opus_packets(
            src.duration_s,
            frame_ms=src.frame_ms,
            dtx=src.dtx,
            tone_bursts=None if src.tone_bursts is None else list(src.tone_bursts),
            ssrc=ssrc,
            pt=pt,
            seq_offset=spec.seq_offset,
            ts_offset=spec.ts_offset,
            channels=src.channels,
            bitrate=src.bitrate,
            speech=src.speech,
            fec=src.fec,
            bandwidth=src.bandwidth,
            audio_type=src.audio_type,
        )
        return packets, src.duration_s
    if isinstance(src, VideoSource):
        makers = {
            "vp8": gst.vp8_packets,
            "vp9": gst.vp9_packets,
            "h264": gst.h264_packets,
            "av1": av1.av1_packets,
        }
        if spec.codec not in makers:
            raise ValueError(f"a VideoSource cannot make {spec.codec}")
        packets = makers[spec.codec](
            src.duration_s,
            width=src.width,
            height=src.height,
            fps=src.fps,
            flashes=None if src.flashes is None else list(src.flashes),
            keyframe_interval=src.keyframe_interval or 3 * src.fps,
            ssrc=ssrc,
            pt=pt,
            seq_offset=spec.seq_offset,
            ts_offset=spec.ts_offset,
            bitrate_kbps=src.bitrate_kbps,
        )
        return packets, src.duration_s
    raise ValueError("a TrackSpec needs packets or a source")


def _build_track(
    spec: TrackSpec,
    *,
    session_dir: Path,
    participant_id: str,
    session_id: str,
    base: str,
    call_id: str,
    call_start_ms: int,
) -> TrackTruth:
    pt = spec.pt if spec.pt is not None else DEFAULT_PT[spec.codec]
    if spec.ssrc is not None:
        ssrc = spec.ssrc
    elif spec.packets:
        ssrc = parse_rtp_header(spec.packets[0]).ssrc
    else:
        ssrc = _stable_int(call_id, participant_id, session_id, base)
    packets, media_duration = _generate(spec, ssrc, pt)
    clock_rate = CLOCK_RATES[spec.codec]
    imp = spec.impairments
    capture_start_ms = call_start_ms + round(spec.start_offset_s * 1000)
    scheduled = schedule(
        packets,
        clock_rate,
        jitter_ms=imp.jitter_ms,
        seed=imp.seed,
        loss=imp.loss,
        reorder=imp.reorder,
        duplicate=imp.duplicate,
        extra_delay_ms=imp.extra_delay_ms,
        clock_drift_ppm=imp.clock_drift_ppm,
    )
    captured = scheduled.packets
    cname = f"{_stable_int(participant_id, session_id, 'cname', bits=48):012x}"
    reports: list[SenderReportInfo] = []
    if spec.sender_reports is not None and captured:
        captured, reports = with_sender_reports(
            captured,
            clock_rate=clock_rate,
            start_unix=capture_start_ms / 1000,
            anchor=scheduled.stats.anchor,
            interval_s=spec.sender_reports.interval_s,
            ntp_offset_s=spec.sender_reports.ntp_offset_s,
            extra_delay_ms=imp.extra_delay_ms,
            cname=cname,
            clock_drift_ppm=imp.clock_drift_ppm,
        )
    if imp.garbage:
        captured = inject_garbage(captured, count=imp.garbage, seed=imp.seed + 1)

    rtp_path = session_dir / f"{base}.rtpdump"
    sdp_path = session_dir / f"{base}.sdp"
    port = _AUDIO_PORT if spec.codec in AUDIO_CODECS else _VIDEO_PORT
    write_rtpdump(rtp_path, captured, start_unix=capture_start_ms / 1000, port=port)
    channels = spec.source.channels if isinstance(spec.source, OpusSource) else 1
    sdp_path.write_text(
        sdp_for(spec.codec, pt=pt, ssrc=ssrc, cname=cname, session_id=ssrc, channels=channels),
        newline="",
    )

    rtp_records = _track_rtp(captured, ssrc)
    first = rtp_records[0] if rtp_records else None
    last = rtp_records[-1] if rtp_records else None
    key_offset: int | None = None
    video = spec.codec not in AUDIO_CODECS
    if video and first is not None:
        for c, hdr in rtp_records:
            if is_keyframe_start(spec.codec, c.data[hdr.header_len :]):
                key_offset = c.arrival_ms - first[0].arrival_ms
                break
    max_dim: tuple[int, int] | None = None
    if video:
        if spec.max_frame_dimension is not None:
            max_dim = spec.max_frame_dimension
        elif isinstance(spec.source, VideoSource):
            max_dim = (spec.source.width, spec.source.height)
        else:
            max_dim = _max_dimension(spec.codec, [c for c, _ in rtp_records])
    track_id = spec.track_id or f"trk-{_stable_int(call_id, participant_id, session_id, base):08x}"
    segment: dict[str, Any] = {
        "base_filename": base,
        "codec": spec.codec,
        "track_id": track_id,
        "track_type": TRACK_TYPES[spec.kind],
        "first_rtp_rtp_timestamp": first[1].ts if first else None,
        "last_rtp_rtp_timestamp": last[1].ts if last else None,
        "first_rtp_unix_timestamp": capture_start_ms + first[0].arrival_ms if first else None,
        "last_rtp_unix_timestamp": capture_start_ms + last[0].arrival_ms if last else None,
        "first_rtcp_rtp_timestamp": reports[0].rtp_ts if reports else None,
        "last_rtcp_rtp_timestamp": reports[-1].rtp_ts if reports else None,
        "first_rtcp_ntp_timestamp": reports[0].ntp_unix_ms if reports else None,
        "last_rtcp_ntp_timestamp": reports[-1].ntp_unix_ms if reports else None,
        "first_key_frame_offset_ms": key_offset,
        "max_frame_dimension": None
        if max_dim is None
        else {"width": max_dim[0], "height": max_dim[1]},
    }
    stats = scheduled.stats
    return TrackTruth(
        participant_id=participant_id,
        session_id=session_id,
        kind=spec.kind,
        track_type=TRACK_TYPES[spec.kind],
        codec=spec.codec,
        base_filename=base,
        track_id=track_id,
        ssrc=ssrc,
        pt=pt,
        clock_rate=clock_rate,
        rtpdump_path=rtp_path,
        sdp_path=sdp_path,
        capture_start_unix_ms=capture_start_ms,
        packets_sent=stats.sent,
        rtp_records=len(rtp_records),
        unique_packets=len({h.seq for _, h in rtp_records}),
        lost=stats.lost,
        duplicated=stats.duplicated,
        reordered=stats.reordered,
        out_of_order=_count_out_of_order([h.seq for _, h in rtp_records]),
        garbage=imp.garbage,
        lost_seqs=stats.lost_seqs,
        sender_reports=tuple(reports),
        first_arrival_unix_ms=segment["first_rtp_unix_timestamp"],
        last_arrival_unix_ms=segment["last_rtp_unix_timestamp"],
        first_rtp_ts=segment["first_rtp_rtp_timestamp"],
        last_rtp_ts=segment["last_rtp_rtp_timestamp"],
        first_key_frame_offset_ms=key_offset,
        max_frame_dimension=max_dim,
        media_duration_s=media_duration,
        segment=segment,
    )


def _track_rtp(
    captured: Sequence[CapturedPacket], ssrc: int
) -> list[tuple[CapturedPacket, RtpHeader]]:
    """The records that are RTP of this track (not RTCP, not garbage), in file order."""
    out: list[tuple[CapturedPacket, RtpHeader]] = []
    for c in captured:
        if c.is_rtcp:
            continue
        try:
            hdr = parse_rtp_header(c.data)
        except ValueError:
            continue
        if hdr.ssrc == ssrc:
            out.append((c, hdr))
    return out


def _count_out_of_order(seqs: Sequence[int]) -> int:
    """Records whose (wrap-extended) sequence number is below one already seen."""
    count = 0
    highest: int | None = None
    for seq in seqs:
        if highest is None:
            highest = seq
            continue
        delta = (seq - highest) & 0xFFFF
        if delta >= 0x8000:
            count += 1
        else:
            highest += delta
    return count


_BASE_PREFIX = {
    "audio": "audio",
    "video": "video",
    "screen_share": "screen_share",
    "screen_share_audio": "screen_share_audio",
}


def build_recording(
    root: Path,
    sessions: Sequence[SessionSpec],
    *,
    call_type: str = "default",
    call_id: str = "call-123",
    call_session_id: str = "cs-1",
    call_start: datetime = DEFAULT_CALL_START,
    with_metadata: bool = True,
    top_folder: str | None = None,
) -> RecordingInfo:
    """Write a raw recording tree under `root` (created if needed) and return its ground truth."""
    root = Path(root)
    tree = root / top_folder if top_folder else root
    call_start_ms = _unix_ms(call_start)
    session_truths: list[SessionTruth] = []
    for sess in sessions:
        session_dir = tree / sess.participant_id / sess.session_id
        session_dir.mkdir(parents=True, exist_ok=True)
        counters: dict[str, int] = {}
        truths: list[TrackTruth] = []
        specs: list[TrackSpec] = []
        for spec in sess.tracks:
            counters[spec.kind] = counters.get(spec.kind, 0) + 1
            base = spec.base_filename or f"{_BASE_PREFIX[spec.kind]}_{counters[spec.kind]}"
            truths.append(
                _build_track(
                    spec,
                    session_dir=session_dir,
                    participant_id=sess.participant_id,
                    session_id=sess.session_id,
                    base=base,
                    call_id=call_id,
                    call_start_ms=call_start_ms,
                )
            )
            specs.append(spec)
        metadata_path: Path | None = None
        if with_metadata:
            metadata = {
                "call_type": call_type,
                "call_id": call_id,
                "call_session_id": call_session_id,
                "call_start_time": format_call_time(call_start),
                "participant_id": sess.participant_id,
                "user_session_id": sess.session_id,
                "segments": {
                    "audio": [
                        go_segment_json(t.segment)
                        for t, s in zip(truths, specs, strict=True)
                        if s.in_metadata and t.kind in AUDIO_KINDS
                    ],
                    "video": [
                        go_segment_json(t.segment)
                        for t, s in zip(truths, specs, strict=True)
                        if s.in_metadata and t.kind not in AUDIO_KINDS
                    ],
                },
            }
            metadata_path = session_dir / "timing_metadata.json"
            metadata_path.write_text(json.dumps(metadata, indent=2) + "\n")
        session_truths.append(
            SessionTruth(
                participant_id=sess.participant_id,
                session_id=sess.session_id,
                path=session_dir,
                metadata_path=metadata_path,
                tracks=tuple(truths),
            )
        )
    return RecordingInfo(
        root=root,
        tree=tree,
        call_type=call_type,
        call_id=call_id,
        call_session_id=call_session_id,
        call_start=call_start,
        sessions=tuple(session_truths),
    )


# ---------------------------------------------------------------------------------------------
# Archives

_ARCHIVE_TIME = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _archive_members(root: Path) -> list[tuple[str, Path]]:
    return sorted((p.relative_to(root).as_posix(), p) for p in Path(root).rglob("*") if p.is_file())


def pack_zip(root: Path, dest: Path) -> Path:
    """Zip every file under `root` (paths relative to it), deflated, with fixed timestamps."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    stamp = _ARCHIVE_TIME.timetuple()[:6]
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, path in _archive_members(root):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return dest


def pack_targz(root: Path, dest: Path) -> Path:
    """tar.gz every file under `root` (paths relative to it), with fixed owners and times."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    mtime = int(_ARCHIVE_TIME.timestamp())
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, path in _archive_members(root):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    with dest.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return dest


# ---------------------------------------------------------------------------------------------
# Ready-made scenario


def multiparty_call(
    root: Path,
    *,
    duration_s: float = 6.0,
    width: int = 320,
    height: int = 180,
    fps: int = 15,
    video_kbps: int = 120,
    sender_reports: bool = True,
    with_metadata: bool = True,
    top_folder: str | None = None,
    call_id: str = "call-123",
    call_start: datetime = DEFAULT_CALL_START,
) -> RecordingInfo:
    """A three-person call exercising what real recordings throw at rawcore.

    - user_1 / session_1: opus (440 Hz bursts) + VP8 from the start, 2 % loss and some
      reordering on video; then user_1 rejoins as session_2 two seconds after session_1 ends,
      audio only, with DTX.
    - user_2 / session_1: opus (660 Hz) whose sequence numbers wrap, with duplicates; VP9 whose
      RTP timestamps wrap; from 1/3 of the call a VP8 screen share (5 fps) and its opus audio
      (1 kHz tone).
    - user_3 / session_1 joins at half time: opus (880 Hz) + H.264 with 30 ms jitter and a sender
      clock 1.5 s fast in its Sender Reports.
    """
    d = duration_s
    srs = SenderReports(interval_s=1.0) if sender_reports else None

    def bursts(freq: float, length: float) -> tuple[tuple[float, float, float], ...]:
        return tuple((t + 0.25, 0.75, freq) for t in range(int(length)) if t + 1.0 <= length)

    video = VideoSource(d, width=width, height=height, fps=fps, bitrate_kbps=video_kbps)
    share_len = round(d * 2 / 3, 3)
    late = round(d / 2, 3)
    rejoin_len = max(2.0, round(d / 2, 3))
    sessions = [
        SessionSpec(
            "user_1",
            "session_1",
            [
                TrackSpec(
                    "audio",
                    "opus",
                    source=OpusSource(d, tone_bursts=bursts(440.0, d)),
                    impairments=Impairments(loss=0.01, seed=11),
                    sender_reports=srs,
                ),
                TrackSpec(
                    "video",
                    "vp8",
                    source=video,
                    start_offset_s=0.2,
                    impairments=Impairments(loss=0.02, reorder=0.03, seed=12),
                    sender_reports=srs,
                ),
            ],
        ),
        SessionSpec(
            "user_1",
            "session_2",
            [
                TrackSpec(
                    "audio",
                    "opus",
                    source=OpusSource(rejoin_len, dtx=True, tone_bursts=bursts(440.0, rejoin_len)),
                    start_offset_s=d + 2.0,
                    sender_reports=srs,
                ),
            ],
        ),
        SessionSpec(
            "user_2",
            "session_1",
            [
                TrackSpec(
                    "audio",
                    "opus",
                    source=OpusSource(d, tone_bursts=bursts(660.0, d)),
                    start_offset_s=0.5,
                    seq_offset=65_500,
                    impairments=Impairments(duplicate=0.02, seed=21),
                    sender_reports=srs,
                ),
                TrackSpec(
                    "video",
                    "vp9",
                    source=video,
                    start_offset_s=0.6,
                    ts_offset=(1 << 32) - 90_000,
                    impairments=Impairments(loss=0.01, seed=22),
                    sender_reports=srs,
                ),
                TrackSpec(
                    "screen_share",
                    "vp8",
                    source=VideoSource(
                        share_len, width=width, height=height, fps=5, bitrate_kbps=video_kbps // 2
                    ),
                    start_offset_s=round(d / 3, 3),
                    sender_reports=srs,
                ),
                TrackSpec(
                    "screen_share_audio",
                    "opus",
                    source=OpusSource(share_len, tone_bursts=((0.5, share_len - 1.0, 1000.0),)),
                    start_offset_s=round(d / 3, 3),
                    sender_reports=srs,
                ),
            ],
        ),
        SessionSpec(
            "user_3",
            "session_1",
            [
                TrackSpec(
                    "audio",
                    "opus",
                    source=OpusSource(d - late, tone_bursts=bursts(880.0, d - late)),
                    start_offset_s=late,
                    impairments=Impairments(jitter_ms=30, seed=31),
                    sender_reports=None
                    if srs is None
                    else SenderReports(interval_s=1.0, ntp_offset_s=1.5),
                ),
                TrackSpec(
                    "video",
                    "h264",
                    source=VideoSource(
                        d - late, width=width, height=height, fps=fps, bitrate_kbps=video_kbps
                    ),
                    start_offset_s=late,
                    impairments=Impairments(jitter_ms=30, seed=32),
                    sender_reports=None
                    if srs is None
                    else SenderReports(interval_s=1.0, ntp_offset_s=1.5),
                ),
            ],
        ),
    ]
    return build_recording(
        root,
        sessions,
        call_id=call_id,
        call_start=call_start,
        with_metadata=with_metadata,
        top_folder=top_folder,
    )
