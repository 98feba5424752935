"""The audio measuring tools and scenario truths are right, checked against GStreamer and Janus.

`audio_truth` decides whether an `extract-audio` output is correct, so it is itself checked here
against media made and decoded by other tools: WAV and Ogg Opus files GStreamer encodes from
known bursts, a DTX capture GStreamer depayloads and decodes on its own clock, and `.mjr` files
that janus-tools read back. None of this touches rawcore.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import audio_truth as at
from helpers import gst
from helpers.impair import schedule
from helpers.mjr import MJR_MAGIC, write_mjr, write_pcap, write_rfc4571

pytestmark = [
    pytest.mark.gst,
    pytest.mark.skipif(not at.av_available(), reason="PyAV is not installed (pip install av)"),
    pytest.mark.skipif(
        not gst.gst_available("opusenc", "opusdec", "rtpopusdepay", "pcapparse", "wavenc"),
        reason="GStreamer with opus, pcapparse and wavenc is not installed",
    ),
]

RATE = 48_000
BURSTS = [(0.25, 0.4, 440.0), (1.0, 0.3, 880.0), (1.7, 0.5, 440.0)]
#: GStreamer's and FFmpeg's clocks agree to the sample on clean input; 10 ms leaves room for
#: Opus smearing an attack.
ONSET_TOL_S = 0.010


def _pcm(duration_s: float, bursts: list[tuple[float, float, float]]) -> bytes:
    n = round(duration_s * RATE)
    t = np.arange(n) / RATE
    x = np.zeros(n)
    for start, length, freq in bursts:
        a, b = round(start * RATE), round((start + length) * RATE)
        x[a:b] = 0.3 * np.sin(2 * np.pi * freq * t[a:b])
    return np.round(x * 32767).astype("<i2").tobytes()


def _gst(pipeline: str, stdin: bytes | None = None) -> None:
    res = subprocess.run(
        ["gst-launch-1.0", "-q", *pipeline.split()], input=stdin, capture_output=True, check=False
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")


_RAW = (
    "fdsrc fd=0 ! rawaudioparse use-sink-caps=false format=pcm pcm-format=s16le "
    f"sample-rate={RATE} num-channels=1 ! audioconvert"
)


def _gst_decode_capture(rtpdump: Path, tmp: Path) -> at.Decoded:
    """GStreamer's own decode of a capture, on the capture's clock: pcapparse stamps every
    packet with its arrival time, and `audiorate tolerance=0` fills every gap to the sample."""
    pcap, wav = tmp / "capture.pcap", tmp / "gst.wav"
    write_pcap(pcap, at.read_rtpdump_packets(rtpdump))
    _gst(
        f"filesrc location={pcap} ! pcapparse ts-offset=0 ! "
        "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111 ! "
        "rtpjitterbuffer mode=none ! rtpopusdepay ! opusdec ! audiorate tolerance=0 ! "
        f"wavenc ! filesink location={wav}"
    )
    return at.decode_audio(wav)


def _assert_onsets(found: list[float], expected: list[float], tol: float = ONSET_TOL_S) -> None:
    assert len(found) == len(expected), (found, expected)
    for f, e in zip(found, expected, strict=True):
        assert abs(f - e) <= tol, (found, expected)


# ---------------------------------------------------------------------------------------------
# decode_audio, tone_onsets, silence_spans on files GStreamer wrote


@pytest.mark.parametrize(
    ("name", "chain", "codec"),
    [
        ("wav", "wavenc", "pcm_s16le"),
        ("ogg", "opusenc ! oggmux", "opus"),
        ("mka", "opusenc ! matroskamux", "opus"),
        ("webm", "opusenc frame-size=60 ! webmmux", "opus"),
    ],
    ids=["pcm-wav", "ogg-opus", "matroska-opus", "webm-opus-60ms"],
)
def test_onsets_in_a_gst_encoded_file_match_the_source(
    tmp_path: Path, name: str, chain: str, codec: str
) -> None:
    """Bursts land within 10 ms of where they were put, and pre-skip is removed (the decoded
    length is the source's), whatever the container."""
    out = tmp_path / f"bursts.{name}"
    _gst(f"{_RAW} ! {chain} ! filesink location={out}", _pcm(2.5, BURSTS))
    dec = at.decode_audio(out)
    assert dec.codec_name == codec
    assert dec.rate == RATE and dec.channels == 1 and dec.errors == 0
    assert dec.duration_s == pytest.approx(2.5, abs=0.001)
    assert dec.start_time_s == 0.0
    for freq in (440.0, 880.0):
        expected = [b[0] for b in BURSTS if b[2] == freq]
        _assert_onsets(at.tone_onsets(dec.samples, dec.rate, freq), expected)
    assert at.tone_onsets(dec.samples, dec.rate, 660.0) == []


def test_silence_spans_are_the_gaps_between_bursts(tmp_path: Path) -> None:
    out = tmp_path / "bursts.wav"
    _gst(f"{_RAW} ! wavenc ! filesink location={out}", _pcm(2.5, BURSTS))
    dec = at.decode_audio(out)
    spans = at.silence_spans(dec.samples, dec.rate, min_len_s=0.1)
    expected = [(0.0, 0.25), (0.65, 1.0), (1.3, 1.7), (2.2, 2.5)]
    assert len(spans) == len(expected), spans
    for (s, e), (es, ee) in zip(spans, expected, strict=True):
        assert s == pytest.approx(es, abs=0.011) and e == pytest.approx(ee, abs=0.011)


def test_decode_audio_decodes_what_survives_instead_of_raising(tmp_path: Path) -> None:
    good = tmp_path / "good.mka"
    _gst(f"{_RAW} ! opusenc ! matroskamux ! filesink location={good}", _pcm(2.0, BURSTS))
    blob = bytearray(good.read_bytes())
    # Scribble over the middle of the file: blocks there become invalid Opus or vanish.
    mid = len(blob) // 2
    blob[mid : mid + 400] = bytes((i * 37) & 0xFF for i in range(400))
    bad = tmp_path / "bad.mka"
    bad.write_bytes(bytes(blob))
    dec = at.decode_audio(bad)
    assert dec.duration_s > 0.5
    # The scribbled blocks are lost (the demuxer skips them): the rest decodes, shorter.
    assert dec.duration_s < 2.0 - 0.1


def test_decode_audio_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        at.decode_audio(tmp_path / "nope.ogg")


# ---------------------------------------------------------------------------------------------
# Scenario truths, checked against GStreamer's decode of the same capture


def test_dtx_call_gst_decode_has_the_span_silences_and_onsets(tmp_path: Path) -> None:
    """GStreamer, on its own clock, decodes a 30 s DTX capture to the truth's span, with the
    bursts where the truth says (plus the encoder lookahead) and silence between them."""
    truth = at.dtx_call(tmp_path / "rec", duration_s=30.0)
    assert truth.dtx and truth.packets < 30 * 50 // 2, "DTX must have dropped most packets"
    assert truth.span_s == pytest.approx(30.0, abs=0.25)
    dec = _gst_decode_capture(truth.rtpdump_path, tmp_path)
    assert dec.duration_s == pytest.approx(truth.span_s, abs=0.020)
    for freq in {b[2] for b in truth.bursts}:
        expected = [
            o + at.OPUS_LOOKAHEAD_S
            for o, b in zip(truth.onsets_s, truth.bursts, strict=True)
            if b[2] == freq
        ]
        _assert_onsets(at.tone_onsets(dec.samples, dec.rate, freq), expected)
    spans = at.silence_spans(dec.samples, dec.rate, min_len_s=1.0)
    ends = [o + b[1] for o, b in zip(truth.onsets_s, truth.bursts, strict=True)]
    for end, nxt in zip(ends, truth.onsets_s[1:], strict=False):
        # Each multi-second pause between bursts is (almost entirely) one silent span.
        assert any(s <= end + 0.1 and e >= nxt - 0.1 for s, e in spans), (end, nxt, spans)


def test_decode_capture_agrees_with_gst_on_a_lossy_reordered_capture(tmp_path: Path) -> None:
    truth = at.impaired_call(
        tmp_path / "rec", duration_s=6.0, loss=0.02, reorder=0.05, duplicate=0.02, jitter_ms=15
    )
    assert truth.lost_seqs, "the seed must lose something"
    ours = at.decode_capture(truth.rtpdump_path)
    theirs = _gst_decode_capture(truth.rtpdump_path, tmp_path)
    assert ours.duration_s == pytest.approx(truth.span_s, abs=1e-9)
    assert theirs.duration_s == pytest.approx(truth.span_s, abs=0.020)
    ref = at.tone_onsets(theirs.samples, theirs.rate, 440.0)
    _assert_onsets(at.tone_onsets(ours.samples, ours.rate, 440.0), ref, tol=0.005)


# ---------------------------------------------------------------------------------------------
# Scenario truths, checked against a timestamp-faithful decode


def _check_truth(truth: at.AudioTruth, *, tol: float = 0.003) -> None:
    dec = at.decode_capture(truth.rtpdump_path)
    assert len(dec.samples) == at.expected_samples(truth.span_s)
    for freq in {b[2] for b in truth.bursts}:
        expected = [
            o + at.OPUS_LOOKAHEAD_S
            for o, b in zip(truth.onsets_s, truth.bursts, strict=True)
            if b[2] == freq
        ]
        _assert_onsets(at.tone_onsets(dec.samples, dec.rate, freq), expected, tol=tol)


@pytest.mark.parametrize("frame_ms", [10, 20, 40, 60])
def test_frame_size_call_truth(tmp_path: Path, frame_ms: int) -> None:
    truth = at.frame_size_call(tmp_path, frame_ms=frame_ms, duration_s=3.0)
    assert truth.span_s == pytest.approx(3.0, abs=frame_ms / 1000 + 0.001)
    _check_truth(truth)


def test_wrap_call_truth_crosses_both_wraps(tmp_path: Path) -> None:
    truth = at.wrap_call(tmp_path, duration_s=4.0, seq_wrap_after_s=1.0, ts_wrap_after_s=2.0)
    seqs = [
        struct.unpack_from(">H", d, 2)[0] for _, d in at.read_rtpdump_packets(truth.rtpdump_path)
    ]
    assert max(seqs) > 0xFF00 and min(seqs) < 0x100
    timing = at.capture_truth(truth.rtpdump_path)
    assert timing.first_ts > 0xFFF0_0000
    _check_truth(truth)


def test_lossy_call_truth_starts_at_the_first_captured_packet(tmp_path: Path) -> None:
    truth = at.impaired_call(tmp_path, duration_s=4.0, loss=0.05, duplicate=0.05, seed=4)
    dec = at.decode_capture(truth.rtpdump_path)
    assert len(dec.samples) == at.expected_samples(truth.span_s)


def test_rejoin_call_truth_spans_both_sessions_and_the_pause(tmp_path: Path) -> None:
    truth = at.rejoin_call(tmp_path, first_s=3.0, pause_s=2.0, second_s=3.0)
    first, second = truth.sessions
    assert first.track.session_id != second.track.session_id
    assert truth.span_s == pytest.approx(3.0 + 2.0 + second.span_s, abs=1e-9)
    assert truth.onsets_s[: len(first.onsets_s)] == first.onsets_s
    assert truth.onsets_s[len(first.onsets_s)] == pytest.approx(5.0 + second.onsets_s[0])
    _check_truth(first)
    _check_truth(second)


# ---------------------------------------------------------------------------------------------
# mjr / pcap / RFC 4571 writers


def _split_mjr(blob: bytes) -> tuple[dict[str, object], bytes]:
    assert blob[:8] == MJR_MAGIC
    (n,) = struct.unpack_from(">H", blob, 8)
    return json.loads(blob[10 : 10 + n]), blob[10 + n :]


@pytest.mark.skipif(shutil.which("pcap2mjr") is None, reason="janus-tools is not installed")
def test_write_mjr_matches_pcap2mjr_byte_for_byte(tmp_path: Path) -> None:
    packets = gst.opus_packets(1.0)
    captured = schedule(packets, 48_000, jitter_ms=25, seed=3).packets
    recs = [(c.arrival_ms, c.data) for c in captured]
    start_us = 1_772_359_200_000_000
    write_pcap(tmp_path / "in.pcap", recs, start_unix_us=start_us)
    res = subprocess.run(
        ["pcap2mjr", "-c", "opus", str(tmp_path / "in.pcap"), str(tmp_path / "ref.mjr")],
        capture_output=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    write_mjr(tmp_path / "ours.mjr", recs, start_unix_us=start_us)
    ref_info, ref_body = _split_mjr((tmp_path / "ref.mjr").read_bytes())
    our_info, our_body = _split_mjr((tmp_path / "ours.mjr").read_bytes())
    assert our_body == ref_body
    first_us = start_us + recs[0][0] * 1000
    assert ref_info == {"t": "a", "c": "opus", "s": first_us, "u": first_us}
    assert our_info == {"t": "a", "c": "opus", "s": start_us, "u": first_us}


@pytest.mark.skipif(shutil.which("janus-pp-rec") is None, reason="janus-tools is not installed")
def test_janus_pp_rec_reads_our_mjr(tmp_path: Path) -> None:
    packets = gst.opus_packets(2.0)
    recs = [(i * 20, p) for i, p in enumerate(packets)]
    write_mjr(tmp_path / "a.mjr", recs)
    res = subprocess.run(
        ["janus-pp-rec", "--parse", str(tmp_path / "a.mjr")], capture_output=True, text=True
    )
    assert res.returncode == 0 and f"Counted {len(packets)} RTP packets" in res.stdout
    res = subprocess.run(
        ["janus-pp-rec", str(tmp_path / "a.mjr"), str(tmp_path / "a.opus")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout
    dec = at.decode_audio(tmp_path / "a.opus")
    assert dec.codec_name == "opus"
    assert dec.duration_s == pytest.approx(len(packets) * 0.020, abs=0.03)


def test_rfc4571_round_trips_through_gst_parser(tmp_path: Path) -> None:
    packets = gst.opus_packets(0.5)
    write_rfc4571(tmp_path / "s.rtpstream", [(0, p) for p in packets])
    assert gst.parse_rfc4571((tmp_path / "s.rtpstream").read_bytes()) == packets
