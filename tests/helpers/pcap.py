"""Our rtpdump captures re-written as packet captures by an independent writer (dpkt).

`rtpdump_records` reads a capture's records back (RTP and RTCP, with the capture start), and
`write_capture` writes them as classic pcap (micro- or nanosecond) or pcapng, over Ethernet
(optionally 802.1Q / QinQ tagged) with IPv4 or IPv6, as UDP datagrams or as RFC 4571 frames over
one TCP connection. dpkt builds every header and file block; nothing here is rawcore's.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import dpkt

__all__ = ["Record", "rtpdump_records", "write_capture"]

#: (arrival ms after the capture start, packet bytes, is RTCP)
Record = tuple[int, bytes, bool]


def rtpdump_records(source: str | Path | bytes) -> tuple[int, list[Record]]:
    """The capture start (Unix µs) and every record of an rtpdump file (or its bytes)."""
    blob = source if isinstance(source, bytes) else Path(source).read_bytes()
    line_end = blob.index(b"\n") + 1
    sec, usec = struct.unpack_from(">II", blob, line_end)
    pos = line_end + 16
    out: list[Record] = []
    while pos + 8 <= len(blob):
        length, plen, offset = struct.unpack_from(">HHI", blob, pos)
        out.append((offset, blob[pos + 8 : pos + length], plen == 0))
        pos += length
    return sec * 1_000_000 + usec, out


def _ip(src: str, dst: str, proto: int, body: bytes) -> tuple[object, int]:
    if ":" in src:
        ip6 = dpkt.ip6.IP6(
            src=socket.inet_pton(socket.AF_INET6, src),
            dst=socket.inet_pton(socket.AF_INET6, dst),
            nxt=proto,
            hlim=64,
            data=body,
            plen=len(body),
        )
        return ip6, dpkt.ethernet.ETH_TYPE_IP6
    ip4 = dpkt.ip.IP(
        src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=body
    )
    ip4.len = 20 + len(body)
    return ip4, dpkt.ethernet.ETH_TYPE_IP


def write_capture(
    path: str | Path,
    records: Sequence[Record],
    *,
    start_unix_us: int,
    fmt: Literal["pcap", "pcap-ns", "pcapng"] = "pcap",
    src: tuple[str, int] = ("192.0.2.10", 40_000),
    dst: tuple[str, int] = ("192.0.2.1", 5004),
    vlans: Sequence[int] = (),
    tcp: bool = False,
) -> int:
    """Write `records` (RTCP to the port above the RTP one over UDP) and return the count."""
    frames: list[tuple[float, bytes]] = []
    seq = 1000
    for arrival_ms, data, rtcp in records:
        sport, dport = (src[1] + 1, dst[1] + 1) if rtcp and not tcp else (src[1], dst[1])
        if tcp:
            seg = dpkt.tcp.TCP(
                sport=src[1],
                dport=dst[1],
                seq=seq,
                flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                data=struct.pack(">H", len(data)) + data,
            )
            seq += len(seg.data)
            body, proto = bytes(seg), dpkt.ip.IP_PROTO_TCP
        else:
            udp = dpkt.udp.UDP(sport=sport, dport=dport, data=data)
            udp.ulen = 8 + len(data)
            body, proto = bytes(udp), dpkt.ip.IP_PROTO_UDP
        ip, ethertype = _ip(src[0], dst[0], proto, body)
        eth = dpkt.ethernet.Ethernet(
            src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02", type=ethertype,
            data=ip,
        )  # fmt: skip
        if vlans:
            eth.vlan_tags = [dpkt.ethernet.VLANtag8021Q(id=v) for v in vlans]
        at_us = start_unix_us + arrival_ms * 1000
        frames.append((at_us / 1e6, bytes(eth)))
    with Path(path).open("wb") as fh:
        writer: dpkt.pcap.Writer | dpkt.pcapng.Writer
        if fmt == "pcapng":
            writer = dpkt.pcapng.Writer(fh, snaplen=65_535)
        else:
            writer = dpkt.pcap.Writer(fh, snaplen=65_535, nano=fmt == "pcap-ns")
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
    return len(frames)
