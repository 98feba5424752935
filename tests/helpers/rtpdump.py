"""Independent rtpdump writer and RTP/RTCP byte helpers, used only to make test inputs.

This module owns the bytes on disk of a capture as the rtptools `rtpdump` format lays them out:
the `#!rtpplay1.0 ADDRESS/PORT` text line, the 16-byte binary file header and one record per
captured packet. It also knows just enough RTP to read and rewrite the fixed header fields tests
care about (sequence number, timestamp, SSRC, payload type, marker) and to build an RTCP Sender
Report with an SDES CNAME chunk. It is written from the format description, not from rawcore's
reader, so the two can check each other.
"""

from __future__ import annotations

import io
import ipaddress
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "NTP_UNIX_EPOCH_DELTA",
    "CapturedPacket",
    "RtpHeader",
    "build_sdes_cname",
    "build_sender_report",
    "parse_rtp_header",
    "rewrite_rtp",
    "rtp_payload",
    "sender_report_compound",
    "unix_to_ntp64",
    "write_rtpdump",
]

#: Seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01).
NTP_UNIX_EPOCH_DELTA = 2_208_988_800

_FILE_HEADER = struct.Struct(">IIIHH")
_RECORD_HEADER = struct.Struct(">HHI")
_RTP_FIXED = struct.Struct(">BBHII")


@dataclass(frozen=True, slots=True)
class CapturedPacket:
    """One packet as a capture saw it: when it arrived (ms after capture start) and its bytes."""

    arrival_ms: int
    data: bytes
    is_rtcp: bool = False


def write_rtpdump(
    dest: str | Path | BinaryIO,
    packets: Iterable[CapturedPacket],
    *,
    start_unix: float,
    address: str = "127.0.0.1",
    port: int = 5004,
) -> int:
    """Write `packets` (in the given order) as an rtpdump file; return the number of records.

    `start_unix` is the capture start (the file header's timestamp); each record's offset is the
    packet's `arrival_ms`. RTCP records carry `plen == 0`, as rtpdump itself writes them.
    """
    out = io.BytesIO()
    out.write(f"#!rtpplay1.0 {address}/{port}\n".encode("ascii"))
    start_sec = math.floor(start_unix)
    start_usec = round((start_unix - start_sec) * 1_000_000)
    if start_usec == 1_000_000:
        start_sec, start_usec = start_sec + 1, 0
    source = int(ipaddress.IPv4Address(address))
    out.write(_FILE_HEADER.pack(start_sec, start_usec, source, port, 0))
    count = 0
    for pkt in packets:
        record_len = _RECORD_HEADER.size + len(pkt.data)
        if record_len > 0xFFFF:
            raise ValueError(f"packet of {len(pkt.data)} bytes does not fit an rtpdump record")
        if pkt.arrival_ms < 0:
            raise ValueError(f"negative arrival offset {pkt.arrival_ms} ms")
        plen = 0 if pkt.is_rtcp else len(pkt.data)
        out.write(_RECORD_HEADER.pack(record_len, plen, pkt.arrival_ms & 0xFFFFFFFF))
        out.write(pkt.data)
        count += 1
    blob = out.getvalue()
    if isinstance(dest, str | Path):
        Path(dest).write_bytes(blob)
    else:
        dest.write(blob)
    return count


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """The RTP fixed-header fields tests look at, plus where the payload starts."""

    marker: bool
    pt: int
    seq: int
    ts: int
    ssrc: int
    padding: bool
    extension: bool
    csrc_count: int
    header_len: int


def parse_rtp_header(data: bytes) -> RtpHeader:
    """Parse an RTP header (version 2), including CSRCs and a header extension's length."""
    if len(data) < _RTP_FIXED.size:
        raise ValueError(f"{len(data)} bytes is too short for an RTP header")
    b0, b1, seq, ts, ssrc = _RTP_FIXED.unpack_from(data)
    if b0 >> 6 != 2:
        raise ValueError(f"RTP version {b0 >> 6}, expected 2")
    cc = b0 & 0x0F
    header_len = _RTP_FIXED.size + 4 * cc
    extension = bool(b0 & 0x10)
    if extension:
        if len(data) < header_len + 4:
            raise ValueError("truncated RTP header extension")
        (ext_words,) = struct.unpack_from(">H", data, header_len + 2)
        header_len += 4 + 4 * ext_words
    if len(data) < header_len:
        raise ValueError("truncated RTP header")
    return RtpHeader(
        marker=bool(b1 & 0x80),
        pt=b1 & 0x7F,
        seq=seq,
        ts=ts,
        ssrc=ssrc,
        padding=bool(b0 & 0x20),
        extension=extension,
        csrc_count=cc,
        header_len=header_len,
    )


def rtp_payload(data: bytes) -> bytes:
    """The payload of an RTP packet, without header, extension or padding."""
    hdr = parse_rtp_header(data)
    end = len(data)
    if hdr.padding and end > hdr.header_len:
        end -= data[-1]
    return data[hdr.header_len : end]


def rewrite_rtp(
    data: bytes,
    *,
    seq: int | None = None,
    ts: int | None = None,
    ssrc: int | None = None,
    pt: int | None = None,
    marker: bool | None = None,
) -> bytes:
    """Return `data` with the given fixed-header fields replaced (values are wrapped to width)."""
    parse_rtp_header(data)
    b0, b1, old_seq, old_ts, old_ssrc = _RTP_FIXED.unpack_from(data)
    if pt is not None:
        b1 = (b1 & 0x80) | (pt & 0x7F)
    if marker is not None:
        b1 = (b1 & 0x7F) | (0x80 if marker else 0)
    head = _RTP_FIXED.pack(
        b0,
        b1,
        old_seq if seq is None else seq & 0xFFFF,
        old_ts if ts is None else ts & 0xFFFFFFFF,
        old_ssrc if ssrc is None else ssrc & 0xFFFFFFFF,
    )
    return head + data[_RTP_FIXED.size :]


def unix_to_ntp64(unix_s: float) -> int:
    """A Unix time in seconds as a 64-bit NTP timestamp (32.32 fixed point since 1900)."""
    whole = math.floor(unix_s)
    frac = round((unix_s - whole) * (1 << 32))
    if frac == 1 << 32:
        whole, frac = whole + 1, 0
    return ((whole + NTP_UNIX_EPOCH_DELTA) & 0xFFFFFFFF) << 32 | frac


def build_sender_report(
    *, ssrc: int, ntp_unix_s: float, rtp_ts: int, packet_count: int, octet_count: int
) -> bytes:
    """An RTCP Sender Report (PT 200) with no report blocks."""
    ntp = unix_to_ntp64(ntp_unix_s)
    body = struct.pack(
        ">IIIIII",
        ssrc & 0xFFFFFFFF,
        ntp >> 32,
        ntp & 0xFFFFFFFF,
        rtp_ts & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )
    length_words = (4 + len(body)) // 4 - 1
    return struct.pack(">BBH", 0x80, 200, length_words) + body


def build_sdes_cname(*, ssrc: int, cname: str) -> bytes:
    """An RTCP SDES packet (PT 202) with a single chunk carrying a CNAME item."""
    text = cname.encode("utf-8")
    if len(text) > 255:
        raise ValueError("CNAME longer than 255 bytes")
    chunk = struct.pack(">IBB", ssrc & 0xFFFFFFFF, 1, len(text)) + text
    # The item list ends with a null octet, then pads the chunk to a 32-bit boundary.
    chunk += b"\x00" * (4 - len(chunk) % 4)
    length_words = (4 + len(chunk)) // 4 - 1
    return struct.pack(">BBH", 0x81, 202, length_words) + chunk


def sender_report_compound(
    *,
    ssrc: int,
    ntp_unix_s: float,
    rtp_ts: int,
    packet_count: int,
    octet_count: int,
    cname: str,
) -> bytes:
    """A compound RTCP packet as senders emit it: SR followed by SDES CNAME."""
    sr = build_sender_report(
        ssrc=ssrc,
        ntp_unix_s=ntp_unix_s,
        rtp_ts=rtp_ts,
        packet_count=packet_count,
        octet_count=octet_count,
    )
    return sr + build_sdes_cname(ssrc=ssrc, cname=cname)


def with_one_byte_extension(data: bytes, ext_id: int, value: bytes) -> bytes:
    """`data` (an RTP packet without a header extension or CSRCs) with one RFC 8285 one-byte
    header extension element added, as a WebRTC sender adds video orientation (CVO)."""
    hdr = parse_rtp_header(data)
    if hdr.extension or hdr.csrc_count:
        raise ValueError("packet already has an extension or CSRCs")
    if not 1 <= ext_id <= 14 or not 1 <= len(value) <= 16:
        raise ValueError("one-byte extension ids are 1-14, values 1-16 bytes")
    element = bytes([ext_id << 4 | (len(value) - 1)]) + value
    element += b"\0" * (-len(element) % 4)
    block = struct.pack(">HH", 0xBEDE, len(element) // 4) + element
    return bytes([data[0] | 0x10]) + data[1:12] + block + data[12:]
