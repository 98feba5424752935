"""Our captures in the file formats other recorders write, so their tools can read the same packets.

This module owns three layouts, each written from packets given as `(arrival_ms, rtp_bytes)`:

- Janus `.mjr` (version 2), what `janus-pp-rec` post-processes. Verified byte for byte against
  `pcap2mjr` from janus-tools 1.1.2 and by `janus-pp-rec --parse`:

      b"MJR00002"
      u16 big-endian length N, then N bytes of JSON:
          {"t": "a"|"v"|"d", "c": <codec>, "s": <created, Unix µs>, "u": <first packet, Unix µs>}
      per packet:
          b"MEET"
          u32 big-endian: ms from "u" to this packet's arrival
          u16 big-endian: length L of the RTP packet
          L bytes: the RTP packet

- classic pcap (Ethernet / IPv4 / UDP), which `pcap2mjr` and GStreamer's `pcapparse` read; the
  latter stamps each buffer with its capture time, so DTX gaps survive into a decoder;
- RFC 4571 framing (u16 big-endian length before each packet), what `rtpstreampay` writes and
  `rtpstreamdepay` reads.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

__all__ = ["MJR_MAGIC", "write_mjr", "write_pcap", "write_rfc4571"]

MJR_MAGIC = b"MJR00002"
_MEET = b"MEET"
#: The codec names `janus-pp-rec` recognises in the header's "c" field.
_MJR_CODECS = frozenset(
    {"opus", "multiopus", "pcmu", "pcma", "g722", "l16", "l16-48", "vp8", "vp9", "h264", "av1",
     "h265", "text", "binary"}
)  # fmt: skip

Packets = Iterable[tuple[int, bytes]]


def write_mjr(
    path: str | Path,
    rtp_packets: Packets,
    *,
    kind: Literal["a", "v", "d"] = "a",
    codec: str = "opus",
    start_unix_us: int = 1_772_359_200_000_000,
    fmtp: str | None = None,
) -> int:
    """Write `rtp_packets` (`(arrival_ms, bytes)` in file order) as a Janus .mjr recording.

    `start_unix_us` is the wall-clock time of arrival offset 0; the header's "u" (first packet
    written) is that plus the first packet's `arrival_ms`, and each packet's stored offset is its
    arrival relative to "u" (never negative: a packet stamped before the first one is stored at
    0, as a recorder whose clock only moves forward would). Returns the packet count.
    """
    if codec not in _MJR_CODECS:
        raise ValueError(f"janus-pp-rec does not know codec {codec!r}")
    packets = list(rtp_packets)
    first_ms = packets[0][0] if packets else 0
    first_us = start_unix_us + first_ms * 1000
    info: dict[str, object] = {"t": kind, "c": codec, "s": start_unix_us, "u": first_us}
    if fmtp is not None:
        info["f"] = fmtp
    header = json.dumps(info).encode()
    if len(header) > 0xFFFF:
        raise ValueError("mjr header too long")
    chunks = [MJR_MAGIC, struct.pack(">H", len(header)), header]
    for arrival_ms, data in packets:
        if len(data) > 0xFFFF:
            raise ValueError(f"packet of {len(data)} bytes does not fit an mjr record")
        offset = max(0, arrival_ms - first_ms)
        chunks.append(_MEET + struct.pack(">IH", offset & 0xFFFFFFFF, len(data)))
        chunks.append(data)
    Path(path).write_bytes(b"".join(chunks))
    return len(packets)


def write_rfc4571(path: str | Path, rtp_packets: Packets) -> int:
    """Write the packets as an RFC 4571 stream (`rtpstreamdepay` input); arrival times are
    dropped, which is the point of the format. Returns the packet count."""
    count = 0
    with Path(path).open("wb") as fh:
        for _, data in rtp_packets:
            if len(data) > 0xFFFF:
                raise ValueError(f"packet of {len(data)} bytes does not fit RFC 4571 framing")
            fh.write(struct.pack(">H", len(data)))
            fh.write(data)
            count += 1
    return count


_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_LINKTYPE_ETHERNET = 1


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_pcap(
    path: str | Path,
    rtp_packets: Packets,
    *,
    start_unix_us: int = 1_772_359_200_000_000,
    src: tuple[str, int] = ("127.0.0.1", 40_000),
    dst: tuple[str, int] = ("127.0.0.1", 5004),
) -> int:
    """Write the packets as UDP datagrams in a microsecond pcap, each stamped
    `start_unix_us + arrival_ms * 1000`. UDP checksums are left 0 (allowed over IPv4)."""
    src_ip = bytes(int(o) for o in src[0].split("."))
    dst_ip = bytes(int(o) for o in dst[0].split("."))
    count = 0
    with Path(path).open("wb") as fh:
        fh.write(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 0xFFFF, _LINKTYPE_ETHERNET))
        for arrival_ms, data in rtp_packets:
            udp = struct.pack(">HHHH", src[1], dst[1], 8 + len(data), 0) + data
            ip = struct.pack(
                ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), count & 0xFFFF, 0x4000, 64, 17, 0,
                src_ip, dst_ip,
            )  # fmt: skip
            ip = ip[:10] + struct.pack(">H", _ip_checksum(ip)) + ip[12:]
            frame = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
            frame += ip + udp
            at_us = start_unix_us + arrival_ms * 1000
            fh.write(
                _PCAP_RECORD.pack(at_us // 1_000_000, at_us % 1_000_000, len(frame), len(frame))
            )
            fh.write(frame)
            count += 1
    return count
