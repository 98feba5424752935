"""Deterministic network impairments: from RTP packets in send order to a capture's records.

This module owns *when* each packet reaches the recorder and what happens to it on the way.
`schedule` derives each packet's send time from its (unwrapped) RTP timestamp and the clock rate,
then applies seeded jitter, loss, duplication and adjacent reordering; `rewrite` renumbers a stream
(to force sequence-number or timestamp wraps); `with_sender_reports` interleaves RTCP Sender
Reports from a sender whose wall clock may be off; `inject_garbage` adds records that are not RTP.
Every function takes a seed or is pure, so the same arguments always give the same capture, and
each reports the ground truth (what was lost, duplicated, swapped, reported) for tests to compare.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .rtpdump import CapturedPacket, parse_rtp_header, rewrite_rtp, sender_report_compound

__all__ = [
    "ImpairmentStats",
    "Scheduled",
    "SenderReportInfo",
    "WithReports",
    "inject_garbage",
    "rewrite",
    "schedule",
    "unwrap_timestamps",
    "with_sender_reports",
]


@dataclass(frozen=True, slots=True)
class ImpairmentStats:
    """Ground truth of one `schedule` call."""

    sent: int
    lost: int
    duplicated: int
    reordered: int
    lost_seqs: tuple[int, ...]
    duplicated_seqs: tuple[int, ...]
    #: (RTP timestamp, send time in ms after capture start) of the first packet sent: the
    #: sender's clock mapping, which `with_sender_reports` needs to stamp its reports.
    anchor: tuple[int, int]


class Scheduled(NamedTuple):
    packets: list[CapturedPacket]
    stats: ImpairmentStats


def unwrap_timestamps(timestamps: Sequence[int]) -> list[int]:
    """Extend 32-bit RTP timestamps to a continuous count, each step taken as the nearest way
    round the circle (so wraps and mildly reordered input both come out right)."""
    out: list[int] = []
    for ts in timestamps:
        if not out:
            out.append(ts & 0xFFFFFFFF)
            continue
        prev = out[-1]
        delta = (ts - prev) & 0xFFFFFFFF
        if delta >= 0x8000_0000:
            delta -= 0x1_0000_0000
        out.append(prev + delta)
    return out


def schedule(
    packets: Sequence[bytes],
    clock_rate: int,
    *,
    start_offset_ms: int = 0,
    jitter_ms: int = 0,
    seed: int = 0,
    loss: float = 0.0,
    reorder: float = 0.0,
    duplicate: float = 0.0,
    extra_delay_ms: int = 0,
    clock_drift_ppm: float = 0.0,
) -> Scheduled:
    """Turn RTP packets (in send order) into captured packets in arrival order.

    Packet i is sent at `start_offset_ms + (ts_i - ts_0) / clock_rate` and arrives after
    `extra_delay_ms` plus a uniform 0..`jitter_ms` delay (enough jitter reorders packets by
    itself). Each packet is lost with probability `loss`, duplicated (the copy arriving 0-5 ms
    later) with probability `duplicate`, and each adjacent pair of arrivals swaps places with
    probability `reorder` (the earlier-sent packet is held up to the later one's arrival time, so
    arrivals stay causal and monotonic). `clock_drift_ppm` models a sender media clock (a sound
    card's) that runs off true time: media time t is sent at t · (1 + clock_drift_ppm / 10⁶).
    """
    if not packets:
        return Scheduled([], ImpairmentStats(0, 0, 0, 0, (), (), (0, start_offset_ms)))
    rng = random.Random(seed)
    headers = [parse_rtp_header(p) for p in packets]
    ext = unwrap_timestamps([h.ts for h in headers])
    arrivals: list[tuple[int, int, bytes]] = []  # (arrival_ms, tiebreak, data)
    lost_seqs: list[int] = []
    dup_seqs: list[int] = []
    for i, (data, hdr, ets) in enumerate(zip(packets, headers, ext, strict=True)):
        send_ms = start_offset_ms + (ets - ext[0]) * 1000 / clock_rate * (1 + clock_drift_ppm / 1e6)
        delay = extra_delay_ms + (rng.uniform(0, jitter_ms) if jitter_ms > 0 else 0.0)
        if loss > 0 and rng.random() < loss:
            lost_seqs.append(hdr.seq)
            continue
        at = max(0, int(send_ms + delay))
        arrivals.append((at, 2 * i, data))
        if duplicate > 0 and rng.random() < duplicate:
            dup_seqs.append(hdr.seq)
            arrivals.append((at + rng.randint(0, 5), 2 * i + 1, data))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    datas = [a[2] for a in arrivals]
    times = [a[0] for a in arrivals]
    swaps = 0
    if reorder > 0:
        i = 0
        while i + 1 < len(datas):
            if rng.random() < reorder and datas[i] != datas[i + 1]:
                # The earlier packet is held up behind the later one (never the later one
                # arriving before it was sent): both arrive at the later time.
                datas[i], datas[i + 1] = datas[i + 1], datas[i]
                times[i] = times[i + 1]
                swaps += 1
                i += 2
            else:
                i += 1
    captured = [CapturedPacket(t, d) for t, d in zip(times, datas, strict=True)]
    stats = ImpairmentStats(
        sent=len(packets),
        lost=len(lost_seqs),
        duplicated=len(dup_seqs),
        reordered=swaps,
        lost_seqs=tuple(lost_seqs),
        duplicated_seqs=tuple(dup_seqs),
        anchor=(headers[0].ts, start_offset_ms),
    )
    return Scheduled(captured, stats)


def rewrite(
    packets: Sequence[bytes],
    *,
    seq_offset: int | None = None,
    ts_offset: int | None = None,
    ssrc: int | None = None,
    pt: int | None = None,
) -> list[bytes]:
    """Renumber a stream: the first packet gets sequence number `seq_offset` and timestamp
    `ts_offset`, later ones keep their distance from it (mod 2**16 / 2**32), so e.g.
    `seq_offset=65500` or `ts_offset=2**32 - 90000` forces a wrap a little way in."""
    if not packets:
        return []
    first = parse_rtp_header(packets[0])
    out = []
    for p in packets:
        hdr = parse_rtp_header(p)
        out.append(
            rewrite_rtp(
                p,
                seq=None if seq_offset is None else seq_offset + (hdr.seq - first.seq),
                ts=None if ts_offset is None else ts_offset + (hdr.ts - first.ts),
                ssrc=ssrc,
                pt=pt,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class SenderReportInfo:
    """One Sender Report as written: where it sits and what it claims."""

    arrival_ms: int
    ntp_unix_ms: int
    rtp_ts: int
    packet_count: int
    octet_count: int


class WithReports(NamedTuple):
    packets: list[CapturedPacket]
    reports: list[SenderReportInfo]


def with_sender_reports(
    captured: Sequence[CapturedPacket],
    *,
    clock_rate: int,
    start_unix: float,
    anchor: tuple[int, int] | None = None,
    interval_s: float = 1.0,
    ntp_offset_s: float = 0.0,
    extra_delay_ms: int = 0,
    cname: str = "rawcore-test",
    clock_drift_ppm: float = 0.0,
) -> WithReports:
    """Interleave RTCP SR + SDES CNAME compounds every `interval_s` into a capture.

    `anchor` is the sender's (RTP timestamp, send ms after capture start) mapping, as returned in
    `ImpairmentStats.anchor`; without it the first RTP packet's arrival is used. Report k is sent
    at `anchor_ms + k * interval_s` (while RTP is still flowing) and claims the wall-clock time
    `start_unix + send time + ntp_offset_s`, so a non-zero offset models a sender clock that is
    off. Counts cover the RTP packets captured before the report. `clock_drift_ppm` is the media
    clock's drift given to `schedule`: the report pairs true (NTP) time with the drifting RTP time.
    """
    rtp = [(i, c) for i, c in enumerate(captured) if not c.is_rtcp and _is_rtp(c.data)]
    if not rtp:
        return WithReports(list(captured), [])
    first = parse_rtp_header(rtp[0][1].data)
    anchor_ts, anchor_ms = anchor if anchor is not None else (first.ts, rtp[0][1].arrival_ms)
    last_ms = max(c.arrival_ms for _, c in rtp)
    interval_ms = interval_s * 1000
    inserts: list[tuple[int, CapturedPacket]] = []  # (insert before index, packet)
    reports: list[SenderReportInfo] = []
    k = 0
    while anchor_ms + k * interval_ms <= last_ms:
        send_ms = anchor_ms + k * interval_ms
        arrival = int(send_ms + extra_delay_ms)
        seen: set[int] = set()
        octets = 0
        pos = 0
        for idx, c in enumerate(captured):
            if c.arrival_ms > arrival:
                break
            pos = idx + 1
            if c.is_rtcp or not _is_rtp(c.data):
                continue
            hdr = parse_rtp_header(c.data)
            if hdr.ssrc == first.ssrc and hdr.seq not in seen:
                seen.add(hdr.seq)
                octets += len(c.data) - hdr.header_len
        media_ms = (send_ms - anchor_ms) / (1 + clock_drift_ppm / 1e6)
        rtp_ts = (anchor_ts + round(media_ms * clock_rate / 1000)) & 0xFFFFFFFF
        ntp_unix_s = start_unix + send_ms / 1000 + ntp_offset_s
        data = sender_report_compound(
            ssrc=first.ssrc,
            ntp_unix_s=ntp_unix_s,
            rtp_ts=rtp_ts,
            packet_count=len(seen),
            octet_count=octets,
            cname=cname,
        )
        inserts.append((pos, CapturedPacket(arrival, data, is_rtcp=True)))
        reports.append(
            SenderReportInfo(arrival, round(ntp_unix_s * 1000), rtp_ts, len(seen), octets)
        )
        k += 1
    out = list(captured)
    for pos, pkt in reversed(inserts):
        out.insert(pos, pkt)
    return WithReports(out, reports)


def _is_rtp(data: bytes) -> bool:
    try:
        hdr = parse_rtp_header(data)
    except ValueError:
        return False
    # RTCP packet types 200-204 land on marker + PT 72-76 when read as RTP.
    return not (hdr.marker and 72 <= hdr.pt <= 76)


def inject_garbage(
    captured: Sequence[CapturedPacket],
    *,
    count: int,
    seed: int = 0,
    max_len: int = 64,
) -> list[CapturedPacket]:
    """Add `count` records that are not valid RTP (wrong version, or shorter than an RTP
    header) at seeded random times within the capture's span."""
    rng = random.Random(seed)
    lo = captured[0].arrival_ms if captured else 0
    hi = captured[-1].arrival_ms if captured else 1000
    out = list(captured)
    for _ in range(count):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 11)))
        else:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(12, max(12, max_len))))
            # Version bits 0, 1 or 3: never a valid RTP or RTCP packet.
            data = bytes([(body[0] & 0x3F) | (rng.choice((0, 1, 3)) << 6)]) + body[1:]
        if len(data) >= 1 and data[0] >> 6 == 2:
            data = bytes([data[0] & 0x3F]) + data[1:]
        at = rng.randint(lo, max(lo, hi))
        pos = next((i for i, c in enumerate(out) if c.arrival_ms > at), len(out))
        out.insert(pos, CapturedPacket(at, data))
    return out
