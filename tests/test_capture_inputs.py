"""pcap, pcapng and Janus .mjr files as recordings, checked on DECODED output.

Captures start as GStreamer-payloaded rtpdump recordings with known truth (loss, reordering,
DTX, lost video frames); the same records are then re-written by independent writers: dpkt
for pcap and pcapng (IPv4, IPv6, VLAN/QinQ tags, RFC 4571 over TCP), and the test helper that
writes `.mjr` v2 byte for byte as `pcap2mjr` does, which `janus-pp-rec` itself reads back. The
extracted audio and video are decoded with PyAV and held against the same truth as the
rtpdump path: exact duration, onsets within 20 ms, flashes within one frame, complete frames.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rawcore
from helpers.audio_truth import (
    OPUS_LOOKAHEAD_S,
    AudioTruth,
    av_available,
    decode_audio,
    impaired_call,
    tone_onsets,
)
from helpers.gst import gst_available, opus_packets
from helpers.mjr import write_mjr, write_pcap
from helpers.pcap import rtpdump_records, write_capture
from helpers.rtpdump import parse_rtp_header
from helpers.video_truth import decode_video, flash_times, lossy_call
from rawcore import _core
from rawcore.errors import CaptureError, InputError
from rawcore.media.audio import extract_audio
from rawcore.media.video import extract_video
from rawcore.source.captures import RtpMapping, parse_pt_option

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

TOL_S = 0.020
#: A capture start half a millisecond past a whole one, so the float seconds dpkt takes never
#: round an arrival across a millisecond boundary.
START_US = 1_772_359_200_000_500

VARIANTS: dict[str, dict[str, Any]] = {
    "pcap, IPv4, microseconds": {"fmt": "pcap"},
    "pcap, nanoseconds": {"fmt": "pcap-ns"},
    "pcapng": {"fmt": "pcapng"},
    "pcap, IPv6 with a VLAN tag": {
        "fmt": "pcap", "src": ("2001:db8::10", 40_000), "dst": ("2001:db8::1", 5004), "vlans": [5],
    },
    "pcapng, QinQ": {"fmt": "pcapng", "vlans": [5, 6]},
    "pcap, RFC 4571 over TCP": {"fmt": "pcap", "tcp": True},
}  # fmt: skip


def as_capture(rtpdump: Path, dest: Path, **kwargs: Any) -> tuple[Path, list[Any]]:
    """The rtpdump's records re-written by dpkt; returns the file and the records."""
    _, records = rtpdump_records(rtpdump)
    write_capture(dest, records, start_unix_us=START_US, **kwargs)
    return dest, records


def as_mjr(rtpdump: Path, dest: Path, **kwargs: Any) -> tuple[Path, list[Any]]:
    """The rtpdump's RTP records as a Janus .mjr v2 (a recorder keeps no RTCP)."""
    _, records = rtpdump_records(rtpdump)
    rtp = [(ms, data) for ms, data, rtcp in records if not rtcp]
    write_mjr(dest, rtp, start_unix_us=START_US, **kwargs)
    return dest, rtp


def assert_audio_truth(path: Path, truth: AudioTruth, *, skip_lost: bool) -> None:
    dec = decode_audio(path)
    assert dec.errors == 0
    assert dec.duration_s == pytest.approx(truth.span_s, abs=TOL_S)
    for want, (_, _, freq) in zip(truth.onsets_s, truth.bursts, strict=True):
        found = tone_onsets(dec.samples, dec.rate, freq)
        near = [f for f in found if abs(f - (want + OPUS_LOOKAHEAD_S)) < 0.25]
        if skip_lost:
            if near:  # a burst whose first packets were lost starts late, never early
                assert want + OPUS_LOOKAHEAD_S - TOL_S <= near[0] <= want + 0.15
            continue
        assert near, f"{freq} Hz burst expected at {want:.3f}s, found {found}"
        assert near[0] == pytest.approx(want + OPUS_LOOKAHEAD_S, abs=TOL_S)


# --- the split: every variant gives back the records it was written from ----------------------


@pytest.fixture(scope="module")
def opus_rtpdump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    truth = impaired_call(
        tmp_path_factory.mktemp("opus"), duration_s=4.0, loss=0.05, reorder=0.1, seed=7
    )
    return truth.rtpdump_path


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_capture_variant_splits_back_to_the_same_records(
    tmp_path: Path, opus_rtpdump: Path, variant: str
) -> None:
    path, records = as_capture(opus_rtpdump, tmp_path / "call.pcap", **VARIANTS[variant])
    split = _core.split_capture(path.read_bytes())
    (stream,) = split.streams
    assert split.format == ("pcapng" if VARIANTS[variant]["fmt"] == "pcapng" else "pcap")
    assert stream.transport == ("tcp" if VARIANTS[variant].get("tcp") else "udp")
    assert stream.src == VARIANTS[variant].get("src", ("192.0.2.10",))[0]
    _, got = rtpdump_records(stream.capture)
    first = records[0][0]
    assert got == [(ms - first, data, rtcp) for ms, data, rtcp in records]
    assert (stream.codec, stream.clock_rate, stream.channels) == ("opus", 48_000, 2)


def test_streams_are_split_by_source_address_into_participants(
    tmp_path: Path, opus_rtpdump: Path
) -> None:
    _, records = rtpdump_records(opus_rtpdump)
    other = [
        (ms, data[:8] + b"\x00\x00\xbe\xef" + data[12:], rtcp)
        for ms, data, rtcp in records
        if not rtcp
    ]
    write_capture(tmp_path / "a.pcap", records, start_unix_us=START_US)
    write_capture(tmp_path / "b.pcap", other, start_unix_us=START_US, src=("192.0.2.20", 41_000))
    merged = tmp_path / "call.pcap"
    # Two writers' records interleaved by time into one capture, as one tap would see them.
    blob_a, blob_b = (tmp_path / "a.pcap").read_bytes(), (tmp_path / "b.pcap").read_bytes()
    merged.write_bytes(blob_a[:24] + _interleave(blob_a[24:], blob_b[24:]))
    with rawcore.open_recording(merged) as rec:
        users = sorted(p.participant_id for p in rec.participants)
        assert users == ["192.0.2.10", "192.0.2.20"]
        assert all(t.codec == "opus" for t in rec.tracks)
        assert sum(1 for w in rec.warnings if "guessed" in w) == 1


def _interleave(a: bytes, b: bytes) -> bytes:
    def records(blob: bytes) -> list[tuple[int, bytes]]:
        out, pos = [], 0
        while pos < len(blob):
            sec, usec, incl, _ = struct.unpack_from("<IIII", blob, pos)
            out.append((sec * 1_000_000 + usec, blob[pos : pos + 16 + incl]))
            pos += 16 + incl
        return out

    both = sorted(records(a) + records(b), key=lambda r: r[0])
    return b"".join(r for _, r in both)


@pytest.mark.parametrize(
    ("how", "codec", "guessed"),
    [
        ("guessed from the payloads", "opus", True),
        ("named by --pt", "opus", False),
        ("named by an SDP beside the capture", "opus", False),
        ("named by --pt even when the guess would differ", "g722", False),
    ],
)
def test_codecs_come_from_the_sdp_or_pt_else_a_guess_with_one_warning(
    tmp_path: Path, opus_rtpdump: Path, how: str, codec: str, guessed: bool
) -> None:
    path, _ = as_capture(opus_rtpdump, tmp_path / "call.pcap")
    kwargs: dict[str, Any] = {}
    if "--pt" in how:
        kwargs["payload_types"] = dict([parse_pt_option(f"111={codec}/48000/2")])
    if "SDP" in how:
        (tmp_path / "call.sdp").write_text(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
        )
    with rawcore.open_recording(path, **kwargs) as rec:
        (track,) = rec.tracks
        assert track.codec == codec, how
        assert any("guessed" in w for w in rec.warnings) == guessed, rec.warnings


def test_pt_options_are_checked() -> None:
    assert parse_pt_option("96=VP8/90000") == (96, RtpMapping("vp8", 90_000, None))
    for bad in ("opus", "111=opus", "300=opus/48000", "111=opus/x"):
        with pytest.raises(InputError):
            parse_pt_option(bad)


# --- decoded output -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("container", "impairment"),
    [
        ("pcap, IPv4, microseconds", {"loss": 0.05, "seed": 3}),
        ("pcapng", {"reorder": 0.1, "duplicate": 0.05, "jitter_ms": 15}),
        ("pcap, IPv6 with a VLAN tag", {"loss": 0.05, "dtx": True, "seed": 4}),
        ("pcap, RFC 4571 over TCP", {"reorder": 0.1, "jitter_ms": 15}),
        ("mjr", {"loss": 0.05, "dtx": True, "seed": 4}),
        ("mjr", {"reorder": 0.1, "duplicate": 0.05, "jitter_ms": 15}),
    ],
)
def test_extract_audio_from_a_capture_keeps_duration_and_onsets(
    tmp_path: Path, container: str, impairment: dict[str, Any]
) -> None:
    truth = impaired_call(tmp_path / "rec", duration_s=8.0, **impairment)
    if container == "mjr":
        path, _ = as_mjr(truth.rtpdump_path, tmp_path / "user-audio.mjr")
    else:
        path, _ = as_capture(truth.rtpdump_path, tmp_path / "call.pcap", **VARIANTS[container])
    with rawcore.open_recording(path) as rec:
        entries, warnings, _ = extract_audio(rec, tmp_path / "out")
    assert warnings == []
    (entry,) = entries
    assert_audio_truth(tmp_path / "out" / entry.path, truth, skip_lost=bool(impairment.get("loss")))


@pytest.mark.parametrize(("codec", "container"), [("vp8", "pcapng"), ("h264", "mjr")])
def test_extract_video_from_a_capture_keeps_frames_and_flashes(
    tmp_path: Path, codec: str, container: str
) -> None:
    truth = lossy_call(tmp_path / "rec", codec, drop_frames=(20,), loss=0.0)
    if container == "mjr":
        path, _ = as_mjr(truth.track.rtpdump_path, tmp_path / "user-video.mjr", kind="v",
                         codec=codec)  # fmt: skip
    else:
        path, _ = as_capture(truth.track.rtpdump_path, tmp_path / "call.pcapng", fmt="pcapng")
    with rawcore.open_recording(path) as rec:
        entries, warnings, _ = extract_video(rec, tmp_path / "out")
    assert warnings == []
    (entry,) = entries
    dec = decode_video(tmp_path / "out" / entry.path)
    assert dec.errors == 0
    assert dec.first_packet_keyframe
    assert dec.frames == entry.frames == len(truth.times_s)
    assert dec.pts_s.tolist() == pytest.approx(list(truth.times_s), abs=0.002)
    found = flash_times(dec)
    assert len(found) == len(truth.flashes_s), (found, truth.flashes_s)
    for want in truth.flashes_s:
        assert any(abs(f - want) <= truth.frame_s + 0.002 for f in found), (want, found)
    assert entry.duration_ms == pytest.approx(truth.end_s * 1000, abs=1)


# --- Janus .mjr -----------------------------------------------------------------------------


def _janus_counts(path: Path) -> int:
    out = subprocess.run(
        ["janus-pp-rec", "--parse", str(path)], capture_output=True, text=True, timeout=60
    )
    text = out.stdout + out.stderr
    m = re.search(r"Counted (\d+) RTP packets", text)
    assert m, text[-2000:]
    return int(m[1])


@pytest.mark.skipif(shutil.which("janus-pp-rec") is None, reason="needs janus-tools")
@pytest.mark.parametrize("kind", ["a", "v"])
def test_janus_pp_rec_reads_our_mjr_with_the_same_packet_count(tmp_path: Path, kind: str) -> None:
    if kind == "a":
        rtpdump = impaired_call(tmp_path / "rec", duration_s=5.0, loss=0.05, seed=2).rtpdump_path
        codec = "opus"
    else:
        rtpdump = lossy_call(tmp_path / "rec", "vp8", loss=0.05, duration_s=2.0).track.rtpdump_path
        codec = "vp8"
    path, rtp = as_mjr(rtpdump, tmp_path / "user.mjr", kind=kind, codec=codec)
    assert _janus_counts(path) == len(rtp)
    split = _core.split_capture(path.read_bytes())
    assert (split.mjr_version, split.mjr_kind, split.mjr_codec) == (2, kind, codec)
    assert sum(s.rtp_packets for s in split.streams) == len(rtp)


def write_mjr_v1(path: Path, packets: list[bytes], *, codec: str = "opus") -> None:
    """A `.mjr` version 1 file, built from the format's description (Janus' recorder.c
    documentation and janus-pp-rec's reader), not by Janus: `MJR00001`, a u16 length and the
    JSON header, then per packet `MEETECHO`, a u16 length and the RTP packet; no times."""
    header = json.dumps({"t": "a", "c": codec, "s": START_US, "u": START_US}).encode()
    chunks = [b"MJR00001", struct.pack(">H", len(header)), header]
    for p in packets:
        chunks += [b"MEETECHO", struct.pack(">H", len(p)), p]
    path.write_bytes(b"".join(chunks))


def test_mjr_v1_times_come_from_the_rtp_clock(tmp_path: Path) -> None:
    packets = opus_packets(3.0)
    write_mjr_v1(tmp_path / "old-audio.mjr", packets)
    with rawcore.open_recording(tmp_path / "old-audio.mjr") as rec:
        (track,) = rec.tracks
        assert track.codec == "opus"
        entries, warnings, _ = extract_audio(rec, tmp_path / "out")
    assert warnings == []
    dec = decode_audio(tmp_path / "out" / entries[0].path)
    # The span of the RTP clock, first packet to the end of the last 20 ms one.
    ts = [parse_rtp_header(p).ts for p in packets]
    assert dec.duration_s == pytest.approx((ts[-1] - ts[0]) / 48_000 + 0.020, abs=TOL_S)


def test_a_folder_of_mjr_files_is_one_recording_per_participant(tmp_path: Path) -> None:
    truth = impaired_call(tmp_path / "rec", duration_s=3.0)
    video = lossy_call(tmp_path / "vrec", "vp8", duration_s=2.0)
    folder = tmp_path / "janus"
    folder.mkdir()
    as_mjr(truth.rtpdump_path, folder / "alice-audio.mjr")
    as_mjr(video.track.rtpdump_path, folder / "alice-video.mjr", kind="v", codec="vp8")
    as_mjr(truth.rtpdump_path, folder / "bob-audio.mjr")
    with rawcore.open_recording(folder) as rec:
        got = sorted((t.participant_id, t.kind, t.codec) for t in rec.tracks)
    assert got == [("alice", "audio", "opus"), ("alice", "video", "vp8"), ("bob", "audio", "opus")]


# --- damaged and wrong input ------------------------------------------------------------------


def test_a_truncated_capture_keeps_what_it_holds_and_says_where_it_stops(
    tmp_path: Path, opus_rtpdump: Path
) -> None:
    path, records = as_capture(opus_rtpdump, tmp_path / "call.pcap")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) * 2 // 3 + 5])
    with rawcore.open_recording(path) as rec:
        (track,) = rec.tracks
        assert 0 < track.stats.packets < len(records)
        assert any("reading stopped" in w for w in rec.warnings), rec.warnings


@pytest.mark.parametrize(
    ("case", "content", "error"),
    [
        ("a pcap header cut short", b"\xd4\xc3\xb2\xa1\x02\x00", CaptureError),
        ("a pcapng without byte-order magic", b"\x0a\x0d\x0d\x0a" + bytes(24), CaptureError),
        ("an mjr header that is not JSON", b"MJR00002\x00\x03abc", CaptureError),
        ("a Janus data-channel recording", b'MJR00002\x00\x13{"t":"d","c":"text"}', InputError),
    ],
)
def test_unreadable_captures_are_one_line_errors(
    tmp_path: Path, case: str, content: bytes, error: type[Exception]
) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(error):
        rawcore.open_recording(path)
    out = subprocess.run(
        [sys.executable, "-m", "rawcore", "list-tracks", "--input-file", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0, case
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("rawcore: error:"), out.stderr
    assert "Traceback" not in out.stderr


def test_cli_extract_audio_from_a_pcap_with_pt(tmp_path: Path, opus_rtpdump: Path) -> None:
    path, _ = as_capture(opus_rtpdump, tmp_path / "call.pcapng", fmt="pcapng")
    out = subprocess.run(
        [sys.executable, "-m", "rawcore", "extract-audio", "--input-file", str(path),
         "--pt", "111=opus/48000/2", "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "guessed" not in out.stderr
    files = [p for p in (tmp_path / "out").iterdir() if p.suffix != ".json"]
    assert len(files) == 1 and decode_audio(files[0]).errors == 0


def test_cli_refuses_a_malformed_pt_in_one_line(tmp_path: Path, opus_rtpdump: Path) -> None:
    path, _ = as_capture(opus_rtpdump, tmp_path / "call.pcap")
    out = subprocess.run(
        [sys.executable, "-m", "rawcore", "list-tracks", "--input-file", str(path),
         "--pt", "111=opus"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "--pt '111=opus'" in out.stderr, out.stderr


def test_a_capture_of_stray_ssrcs_is_refused_quickly_in_one_line(tmp_path: Path) -> None:
    # A new SSRC in every packet: no stream, so no recording, and no file per stray written.
    packets = [
        (i // 50, struct.pack(">BBHII", 0x80, 111, i, i * 960, 0x1000 + i) + b"x" * 20)
        for i in range(5000)
    ]
    write_pcap(tmp_path / "strays.pcap", packets)
    with pytest.raises(InputError, match="no RTP streams"):
        rawcore.open_recording(tmp_path / "strays.pcap")


@pytest.mark.parametrize("with_sdp", [True, False])
def test_audio_and_video_from_one_address_are_two_tracks_of_one_participant(
    tmp_path: Path, opus_rtpdump: Path, with_sdp: bool
) -> None:
    video = lossy_call(tmp_path / "vrec", "vp8", duration_s=2.0)
    _, audio_records = rtpdump_records(opus_rtpdump)
    _, video_records = rtpdump_records(video.track.rtpdump_path)
    write_capture(tmp_path / "a.pcap", audio_records, start_unix_us=START_US)
    write_capture(tmp_path / "v.pcap", video_records, start_unix_us=START_US,
                  dst=("192.0.2.1", 5006))  # fmt: skip
    blob_a, blob_v = (tmp_path / "a.pcap").read_bytes(), (tmp_path / "v.pcap").read_bytes()
    call = tmp_path / "call.pcap"
    call.write_bytes(blob_a[:24] + _interleave(blob_a[24:], blob_v[24:]))
    if with_sdp:
        vpt = video.track.pt
        (tmp_path / "call.sdp").write_text(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
            f"m=video 9 UDP/TLS/RTP/SAVPF {vpt}\r\na=rtpmap:{vpt} VP8/90000\r\n"
        )
    with rawcore.open_recording(call) as rec:
        got = sorted((t.participant_id, t.kind, t.codec) for t in rec.tracks)
        assert got == [("192.0.2.10", "audio", "opus"), ("192.0.2.10", "video", "vp8")]
        assert any("guessed" in w for w in rec.warnings) != with_sdp, rec.warnings
