"""The test-data generators are right on their own terms, without rawcore.

Captures are read back with a reference rtpdump reader written here from the format description,
and media is checked by decoding it with GStreamer, so a test of rawcore that fails points at
rawcore, not at its inputs.
"""

from __future__ import annotations

import itertools
import json
import struct
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import gst
from helpers.impair import inject_garbage, rewrite, schedule, unwrap_timestamps, with_sender_reports
from helpers.recording import DEFAULT_CALL_START, multiparty_call, pack_targz, pack_zip
from helpers.rtpdump import (
    NTP_UNIX_EPOCH_DELTA,
    CapturedPacket,
    parse_rtp_header,
    rtp_payload,
    write_rtpdump,
)

needs_gst = pytest.mark.skipif(
    not gst.gst_available("opusenc", "vp8enc", "vp9enc", "x264enc", "rtpstreampay"),
    reason="GStreamer with opus/vpx/x264 plugins is not installed",
)


# ---------------------------------------------------------------------------------------------
# A reference rtpdump reader, independent of the writer under test


@dataclass
class Record:
    offset_ms: int
    plen: int
    data: bytes


def read_rtpdump(blob: bytes) -> tuple[str, int, int, list[Record]]:
    newline = blob.index(b"\n")
    first_line = blob[:newline].decode("ascii")
    pos = newline + 1
    start_sec, start_usec, _source, _port, _pad = struct.unpack_from(">IIIHH", blob, pos)
    pos += 16
    records = []
    while pos < len(blob):
        length, plen, offset = struct.unpack_from(">HHI", blob, pos)
        records.append(Record(offset, plen, blob[pos + 8 : pos + length]))
        pos += length
    assert pos == len(blob), "records must end exactly at the end of the file"
    return first_line, start_sec, start_usec, records


def rtp_fields(data: bytes) -> tuple[int, int, int, int]:
    """(pt, seq, ts, ssrc) read straight from the fixed header."""
    _b0, b1, seq, ts, ssrc = struct.unpack_from(">BBHII", data)
    return b1 & 0x7F, seq, ts, ssrc


def decode_frames(packets: list[bytes], caps: str, depay_dec: str, tmp_path: Path) -> int:
    """Decode RTP with GStreamer and return the raw output size in bytes."""
    src = tmp_path / "in.rfc4571"
    out = tmp_path / "out.raw"
    src.write_bytes(b"".join(struct.pack(">H", len(p)) + p for p in packets))
    cmd = (
        f"gst-launch-1.0 -q filesrc location={src} ! application/x-rtp-stream,{caps} ! "
        f"rtpstreamdepay ! {depay_dec} ! filesink location={out}"
    )
    subprocess.run(cmd.split(), check=True, capture_output=True)
    return out.stat().st_size


# ---------------------------------------------------------------------------------------------
# rtpdump writer


def test_rtpdump_round_trips_through_reference_reader(tmp_path: Path) -> None:
    rtp = bytes([0x80, 111, 0x12, 0x34]) + (1000).to_bytes(4, "big") + (7).to_bytes(4, "big")
    rtcp = bytes([0x80, 200, 0, 6]) + bytes(24)
    path = tmp_path / "x.rtpdump"
    n = write_rtpdump(
        path,
        [CapturedPacket(0, rtp + b"abc"), CapturedPacket(25, rtcp, is_rtcp=True)],
        start_unix=1_772_359_200.25,
        address="10.0.0.1",
        port=40000,
    )
    first_line, sec, usec, records = read_rtpdump(path.read_bytes())
    assert n == 2
    assert first_line == "#!rtpplay1.0 10.0.0.1/40000"
    assert (sec, usec) == (1_772_359_200, 250_000)
    assert [(r.offset_ms, r.plen, r.data) for r in records] == [
        (0, 15, rtp + b"abc"),
        (25, 0, rtcp),
    ]


def test_sender_report_carries_wallclock_and_rtp_time() -> None:
    packets = [
        bytes([0x80, 111]) + i.to_bytes(2, "big") + (960 * i).to_bytes(4, "big") + b"\0\0\0\x05"
        for i in range(150)
    ]
    sched = schedule(packets, 48_000)
    out, reports = with_sender_reports(
        sched.packets, clock_rate=48_000, start_unix=1000.0, anchor=sched.stats.anchor,
        interval_s=1.0, ntp_offset_s=2.0,
    )  # fmt: skip
    srs = [c for c in out if c.is_rtcp]
    assert len(srs) == len(reports) == 3  # at 0, 1 and 2 s of a 2.98 s stream
    sr = srs[1].data
    assert sr[1] == 200 and sr[1 + 28] == 202  # SR then SDES
    ssrc, ntp_sec, ntp_frac, rtp_ts, count, _octets = struct.unpack_from(">IIIIII", sr, 4)
    assert ssrc == 5
    assert ntp_sec - NTP_UNIX_EPOCH_DELTA == 1000 + 1 + 2 and ntp_frac == 0
    assert rtp_ts == 48_000
    assert count == 51  # packets 0..50 were captured by the 1 s mark
    assert reports[1].ntp_unix_ms == 1_003_000


# ---------------------------------------------------------------------------------------------
# impairments


def test_rewrite_forces_a_sequence_and_timestamp_wrap() -> None:
    packets = [
        bytes([0x80, 96]) + i.to_bytes(2, "big") + (3000 * i).to_bytes(4, "big") + bytes(4)
        for i in range(100)
    ]
    out = rewrite(packets, seq_offset=65_500, ts_offset=2**32 - 3000 * 10, ssrc=9)
    seqs = [rtp_fields(p)[1] for p in out]
    tss = [rtp_fields(p)[2] for p in out]
    assert seqs[0] == 65_500 and seqs[36] == 0 and seqs[-1] == 63
    assert tss[10] == 0
    assert unwrap_timestamps(tss) == [2**32 - 30_000 + 3000 * i for i in range(100)]
    assert {rtp_fields(p)[3] for p in out} == {9}


def test_schedule_is_seeded_and_reports_what_it_did() -> None:
    packets = [
        bytes([0x80, 111]) + i.to_bytes(2, "big") + (960 * i).to_bytes(4, "big") + bytes(4)
        for i in range(500)
    ]
    a = schedule(packets, 48_000, seed=7, loss=0.05, duplicate=0.05, reorder=0.05, jitter_ms=5)
    b = schedule(packets, 48_000, seed=7, loss=0.05, duplicate=0.05, reorder=0.05, jitter_ms=5)
    assert a == b
    assert a.stats.lost > 0 and a.stats.duplicated > 0 and a.stats.reordered > 0
    assert len(a.packets) == 500 - a.stats.lost + a.stats.duplicated
    seqs = {rtp_fields(c.data)[1] for c in a.packets}
    assert seqs.isdisjoint(a.stats.lost_seqs)
    times = [c.arrival_ms for c in a.packets]
    assert times == sorted(times)
    garbage = inject_garbage(a.packets, count=5, seed=1)
    bad = [c for c in garbage if len(c.data) < 12 or c.data[0] >> 6 != 2]
    assert len(bad) == 5


# ---------------------------------------------------------------------------------------------
# GStreamer captures


@needs_gst
@pytest.mark.parametrize(("frame_ms", "step"), [(20, 960), (10, 480), (60, 2880)])
def test_opus_timestamps_advance_one_frame_per_packet(frame_ms: int, step: int) -> None:
    packets = gst.opus_packets(2.0, frame_ms=frame_ms, ssrc=1234, seq_offset=10, ts_offset=500)
    fields = [rtp_fields(p) for p in packets]
    assert fields[0][:3] == (111, 10, 500)
    assert [f[1] for f in fields] == [(10 + i) & 0xFFFF for i in range(len(fields))]
    assert {b[2] - a[2] for a, b in itertools.pairwise(fields)} == {step}
    assert abs(len(packets) - 2000 // frame_ms) <= 1
    assert {f[3] for f in fields} == {1234}


@needs_gst
def test_dtx_sends_far_fewer_packets_in_silence() -> None:
    bursts = [(0.0, 1.0, 440.0), (3.0, 1.0, 440.0)]
    plain = gst.opus_packets(4.0, tone_bursts=bursts, ts_offset=0)
    dtx = gst.opus_packets(4.0, tone_bursts=bursts, dtx=True, ts_offset=0)

    def in_silence(packets: list[bytes]) -> int:
        return sum(1 for p in packets if 1.2 <= rtp_fields(p)[2] / 48_000 < 2.8)

    assert in_silence(plain) >= 75
    assert in_silence(dtx) <= 10
    # Speech spans are sent in full either way, and timestamps stay on the 20 ms grid.
    assert sum(1 for p in dtx if rtp_fields(p)[2] < 48_000) >= 49
    assert all(rtp_fields(p)[2] % 960 == 0 for p in dtx)


@needs_gst
def test_vp8_starts_with_a_keyframe_and_repeats_it() -> None:
    packets = gst.vp8_packets(3.0, fps=15, keyframe_interval=15)
    key_ts = []
    for p in packets:
        payload = rtp_payload(p)
        s_bit, pid = payload[0] & 0x10, payload[0] & 0x07
        assert payload[0] & 0x80 and payload[1] & 0x80  # X, then I: 15-bit picture ID follows
        header = payload[4:]
        if s_bit and pid == 0 and header[0] & 0x01 == 0:
            key_ts.append(parse_rtp_header(p).ts)
            assert header[3:6] == b"\x9d\x01\x2a"  # keyframe start code
    first = parse_rtp_header(packets[0]).ts
    assert key_ts[0] == first
    assert [(t - first) // 6000 for t in key_ts] == [0, 15, 30]


@needs_gst
def test_flashes_are_the_only_big_frames() -> None:
    packets = gst.vp8_packets(2.0, fps=10, flashes=[0.5, 1.5], keyframe_interval=100)
    sizes: dict[int, int] = {}
    for p in packets:
        hdr = parse_rtp_header(p)
        sizes[hdr.ts] = sizes.get(hdr.ts, 0) + len(p) - hdr.header_len
    first = min(sizes)
    by_frame = {(ts - first) // 9000: n for ts, n in sizes.items()}
    inter = {i: n for i, n in by_frame.items() if i != 0}
    big = sorted(i for i, n in inter.items() if n > 4 * min(inter.values()))
    assert big == [5, 6, 15, 16]  # each flash frame and the frame that leaves it


@needs_gst
def test_vp9_and_h264_start_with_keyframes() -> None:
    vp9 = rtp_payload(gst.vp9_packets(1.0, fps=15)[0])
    assert vp9[0] & 0x08 and not vp9[0] & 0x40  # B (start of frame), not P (inter)
    h264 = rtp_payload(gst.h264_packets(1.0, fps=15)[0])
    nal = h264[0] & 0x1F
    inner = h264[3] & 0x1F if nal == 24 else nal
    assert inner == 7  # SPS first, in-band


@needs_gst
@pytest.mark.parametrize(
    ("codec", "caps", "decoder"),
    [
        ("vp8", "encoding-name=VP8,payload=96", "rtpvp8depay ! vp8dec"),
        ("vp9", "encoding-name=VP9,payload=98", "rtpvp9depay ! vp9dec"),
        ("h264", "encoding-name=H264,payload=102", "rtph264depay ! avdec_h264"),
    ],
)
def test_video_decodes_to_every_frame(codec: str, caps: str, decoder: str, tmp_path: Path) -> None:
    make = {"vp8": gst.vp8_packets, "vp9": gst.vp9_packets, "h264": gst.h264_packets}[codec]
    packets = make(2.0, width=160, height=90, fps=15)
    size = decode_frames(
        packets, f"media=video,clock-rate=90000,{caps}", f"{decoder} ! video/x-raw,format=I420",
        tmp_path,
    )  # fmt: skip
    assert size == 30 * 160 * 90 * 3 // 2


@needs_gst
def test_generation_is_deterministic_across_cache_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = gst.h264_packets(1.0, fps=15, ssrc=99)
    monkeypatch.setenv("RAWCORE_TEST_CACHE", str(tmp_path))
    monkeypatch.setattr(gst, "_memo", {})
    again = gst.h264_packets(1.0, fps=15, ssrc=99)
    assert again == first
    assert list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# Whole recordings


@needs_gst
def test_multiparty_archive_has_the_expected_tree(tmp_path: Path) -> None:
    info = multiparty_call(tmp_path / "rec", duration_s=4.0)
    expected = {
        "user_1/session_1": {"audio_1", "video_1"},
        "user_1/session_2": {"audio_1"},
        "user_2/session_1": {"audio_1", "video_1", "screen_share_1", "screen_share_audio_1"},
        "user_3/session_1": {"audio_1", "video_1"},
    }
    want = sorted(
        [f"{d}/{b}.{ext}" for d, bs in expected.items() for b in bs for ext in ("rtpdump", "sdp")]
        + [f"{d}/timing_metadata.json" for d in expected]
    )
    zpath = pack_zip(info.root, tmp_path / "call.zip")
    with zipfile.ZipFile(zpath) as zf:
        assert sorted(zf.namelist()) == want
        meta = json.loads(zf.read("user_2/session_1/timing_metadata.json"))
        dump = zf.read("user_2/session_1/audio_1.rtpdump")
    with tarfile.open(pack_targz(info.root, tmp_path / "call.tar.gz")) as tf:
        assert sorted(tf.getnames()) == want
    assert pack_zip(info.root, tmp_path / "again.zip").read_bytes() == zpath.read_bytes()

    assert meta["call_start_time"] == "2026-03-01T10:00:00Z"  # Go: no zero fraction
    assert [s["track_type"] for s in meta["segments"]["video"]] == [
        "TRACK_TYPE_VIDEO",
        "TRACK_TYPE_SCREEN_SHARE",
    ]
    audio = meta["segments"]["audio"][0]
    assert [s["track_type"] for s in meta["segments"]["audio"]] == [
        "TRACK_TYPE_AUDIO",
        "TRACK_TYPE_SCREEN_SHARE_AUDIO",
    ]

    # The metadata agrees with what the reference reader finds in the capture.
    _line, sec, usec, records = read_rtpdump(dump)
    start_ms = sec * 1000 + usec // 1000
    rtp = [r for r in records if r.plen]
    assert audio["first_rtp_rtp_timestamp"] == rtp_fields(rtp[0].data)[2]
    assert audio["last_rtp_rtp_timestamp"] == rtp_fields(rtp[-1].data)[2]
    assert audio["first_rtp_unix_timestamp"] == start_ms + rtp[0].offset_ms
    assert audio["last_rtp_unix_timestamp"] == start_ms + rtp[-1].offset_ms
    assert audio["first_rtcp_rtp_timestamp"] is not None
    seqs = [rtp_fields(r.data)[1] for r in rtp]
    assert 65_535 in seqs and 0 in seqs  # the planned sequence-number wrap

    truth = info.track("user_2", "audio_1")
    assert truth.rtp_records == len(rtp) == truth.packets_sent + truth.duplicated
    assert len(records) - len(rtp) == len(truth.sender_reports)
    assert info.track("user_1", "video_1").lost > 0
    # user_3 joins at half time; its packets take 20 ms plus up to 30 ms of jitter.
    late_join_ms = int(DEFAULT_CALL_START.timestamp() * 1000) + 2000
    first_arrival = info.track("user_3", "video_1").first_arrival_unix_ms
    assert first_arrival is not None and 20 <= first_arrival - late_join_ms <= 50
    assert info.track("user_1", "video_1").segment["max_frame_dimension"] == {
        "width": 320,
        "height": 180,
    }
