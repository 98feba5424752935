"""The compiled core through its Python boundary: buffers, stats, columns, SDP, errors."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest
from helpers.gst import gst_available, opus_packets, vp8_packets
from helpers.impair import inject_garbage, rewrite, schedule, with_sender_reports
from helpers.rtpdump import CapturedPacket, parse_rtp_header, write_rtpdump
from rawcore import _core
from rawcore.errors import CaptureError, InputError, SdpError

needs_gst = pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed")
START = 1_772_359_200.0


def capture(tmp_path: Path, packets: list[CapturedPacket], name: str = "c.rtpdump") -> Path:
    path = tmp_path / name
    write_rtpdump(path, packets, start_unix=START)
    return path


@needs_gst
@pytest.mark.parametrize(
    ("case", "loss", "reorder", "duplicate", "seq_offset", "ts_offset"),
    [
        ("clean stream", 0.0, 0.0, 0.0, None, None),
        ("5% loss", 0.05, 0.0, 0.0, None, None),
        ("reordering only loses nothing", 0.0, 0.1, 0.0, None, None),
        ("duplicates are not packets", 0.0, 0.0, 0.05, None, None),
        ("sequence wrap", 0.02, 0.05, 0.02, 65_400, None),
        ("timestamp wrap", 0.0, 0.0, 0.0, None, (1 << 32) - 48_000),
    ],
)
def test_opus_stats_match_injected_impairments(
    tmp_path: Path,
    case: str,
    loss: float,
    reorder: float,
    duplicate: float,
    seq_offset: int | None,
    ts_offset: int | None,
) -> None:
    sent = rewrite(opus_packets(5.0), seq_offset=seq_offset, ts_offset=ts_offset)
    sched = schedule(
        sent, 48_000, seed=3, loss=loss, reorder=reorder, duplicate=duplicate, jitter_ms=5
    )
    path = capture(tmp_path, sched.packets)
    report = _core.analyze_capture(path.read_bytes(), clock_rates=[(111, 48_000)])
    (stream,) = report.streams
    received = {parse_rtp_header(p.data).seq for p in sched.packets}
    first, last = parse_rtp_header(sent[0]).seq, parse_rtp_header(sent[-1]).seq
    interior_lost = len(sched.stats.lost_seqs) - (first not in received) - (last not in received)
    assert stream.packets - stream.duplicates == len(received), case
    assert stream.duplicates == sched.stats.duplicated, case
    assert stream.lost == interior_lost, case
    assert stream.clock_rate == 48_000
    # 5 s of audio: the unwrapped RTP span covers it, across any wrap.
    assert stream.rtp_duration_s == pytest.approx(5.0, abs=0.1), case
    if reorder:
        assert stream.reordered > 0, case
    assert stream.jitter_ms is not None and 0 <= stream.jitter_ms < 20


@needs_gst
def test_sender_reports_and_cname_are_collected(tmp_path: Path) -> None:
    sched = schedule(vp8_packets(3.0), 90_000, seed=1)
    with_srs = with_sender_reports(
        sched.packets,
        clock_rate=90_000,
        start_unix=START,
        anchor=sched.stats.anchor,
        interval_s=1.0,
        ntp_offset_s=1.5,
    )
    report = _core.analyze_capture(capture(tmp_path, with_srs.packets).read_bytes())
    assert report.rtcp_records == len(with_srs.reports) > 0
    assert len(report.sender_reports) == len(with_srs.reports)
    for got, want in zip(report.sender_reports, with_srs.reports, strict=True):
        assert got.rtp_ts == want.rtp_ts
        assert got.ntp_unix_ms == pytest.approx(want.ntp_unix_ms, abs=1)
    assert report.cnames and report.cnames[0][0] == report.streams[0].ssrc
    assert report.streams[0].sender_reports == len(with_srs.reports)


@needs_gst
def test_garbage_records_are_counted_not_fatal(tmp_path: Path) -> None:
    sched = schedule(opus_packets(2.0), 48_000, seed=2)
    dirty = inject_garbage(sched.packets, count=7, seed=5)
    report = _core.analyze_capture(capture(tmp_path, dirty).read_bytes())
    assert report.invalid_records == 7
    assert report.streams[0].packets == len(sched.packets)
    assert report.warnings


@needs_gst
@pytest.mark.parametrize("kind", ["bytes", "mmap", "memoryview", "bytearray"])
def test_any_bytes_like_buffer_is_accepted(tmp_path: Path, kind: str) -> None:
    packets = schedule(opus_packets(1.0), 48_000).packets
    path = capture(tmp_path, packets)
    raw = path.read_bytes()
    with path.open("rb") as f:
        buffers = {
            "bytes": lambda: raw,
            "mmap": lambda: mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ),
            "memoryview": lambda: memoryview(raw),
            "bytearray": lambda: bytearray(raw),
        }
        report = _core.analyze_capture(buffers[kind]())
    assert report.streams[0].packets == len(packets)


@needs_gst
def test_columns_are_numpy_arrays_in_file_order(tmp_path: Path) -> None:
    sched = schedule(opus_packets(1.0), 48_000, seed=4, reorder=0.2)
    cols = _core.capture_columns(capture(tmp_path, sched.packets).read_bytes())
    assert set(cols) == {
        "arrival_ms",
        "ssrc",
        "payload_type",
        "seq",
        "ext_seq",
        "timestamp",
        "marker",
        "payload_len",
    }
    assert all(isinstance(a, np.ndarray) and len(a) == len(sched.packets) for a in cols.values())
    assert cols["seq"].dtype == np.uint16 and cols["ext_seq"].dtype == np.uint64
    assert cols["seq"].tolist() == [parse_rtp_header(p.data).seq for p in sched.packets]
    assert cols["arrival_ms"].tolist() == [p.arrival_ms for p in sched.packets]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "rtpplay"),
        (b"GET / HTTP/1.1\r\n\r\n", "rtpplay"),
        (b"#!rtpplay1.0 127.0.0.1/5004\n\x00\x01", "header"),
    ],
    ids=["empty", "not-a-capture", "truncated-header"],
)
def test_unusable_captures_raise_capture_error(data: bytes, message: str) -> None:
    with pytest.raises(CaptureError, match=message) as info:
        _core.analyze_capture(data)
    # A capture error is an input error, and a ValueError for callers that catch built-ins.
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_truncated_tail_is_a_warning_with_the_byte_offset(tmp_path: Path) -> None:
    pkt = bytes([0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]) + b"x" * 40
    path = capture(tmp_path, [CapturedPacket(i * 20, pkt) for i in range(3)])
    data = path.read_bytes()[:-10]
    report = _core.analyze_capture(data)
    assert report.records == 2
    assert any(
        str(len(data) - (len(pkt) + 8 - 10)) in msg or off > 0 for off, msg in report.warnings
    )


def test_non_buffer_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _core.analyze_capture("not bytes")  # type: ignore[arg-type]


SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=extmap:3/sendonly urn:3gpp:video-orientation\r\na=ssrc:42 cname:abc\r\n"
    "m=audio 9 RTP/AVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
)


def test_sdp_is_parsed_completely() -> None:
    video, audio = _core.parse_sdp(SDP).media
    assert (video.kind, video.formats) == ("video", [96, 97])
    assert [(r.payload_type, r.encoding, r.clock_rate) for r in video.rtpmaps] == [
        (96, "VP8", 90_000),
        (97, "rtx", 90_000),
    ]
    assert video.rtx == [(97, 96)]
    assert [(e.id, e.direction, e.uri) for e in video.extmaps] == [
        (3, "sendonly", "urn:3gpp:video-orientation")
    ]
    assert video.ssrcs == [(42, "cname:abc")]
    assert audio.rtpmaps[0].channels == 2
    assert audio.fmtps == [(111, "minptime=10;useinbandfec=1")]


def test_bad_sdp_raises_sdp_error() -> None:
    with pytest.raises(SdpError):
        _core.parse_sdp("m=audio notaport RTP/AVP 0\r\n")
