"""process-all analyses each capture once.

Opening a recording analyses every capture (`_core.analyze_capture`); the call timeline and
the QA report reuse what that analysis kept (Sender Reports, CNAME) instead of analysing
again, and each capture's stream columns (`_core.stream_columns`) are read at most once per
capture, with only the small arrival gaps kept; the writing commands' `streams=True` reads
them in the analysis pass itself (`_core.analyze_capture_stream`). The per-output extraction
passes are separate and not counted here.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.gst import gst_available, opus_packets
from helpers.recording import (
    RecordingInfo,
    SessionSpec,
    TrackSpec,
    build_recording,
    multiparty_call,
)
from rawcore import _core
from rawcore.pipeline.process import process_all
from rawcore.recording.build import open_recording
from rawcore.recording.columns import GAP_LOSS, GAP_SILENCE, arrival_gaps, capture_facts
from rawcore.recording.model import Recording
from rawcore.recording.timeline import timeline_of

pytestmark = pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed")

Calls = dict[str, Counter[str]]


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> RecordingInfo:
    return multiparty_call(tmp_path_factory.mktemp("once") / "rec", duration_s=3.0)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """Counts the core's capture analyses, per capture (keyed by the bytes' digest)."""
    counts: Calls = {
        "analyze_capture": Counter(),
        "analyze_capture_stream": Counter(),
        "stream_columns": Counter(),
    }
    for name, counter in counts.items():
        real: Callable[..., Any] = getattr(_core, name)

        def counting(
            buf: Any, *args: Any, _real: Any = real, _n: Counter[str] = counter, **kwargs: Any
        ) -> Any:
            _n[hashlib.sha256(buf).hexdigest()] += 1
            return _real(buf, *args, **kwargs)

        monkeypatch.setattr(_core, name, counting)
    yield counts


def digests(root: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.rtpdump")}


def segments(rec: Recording) -> list[Any]:
    return [s for t in rec.tracks for s in t.segments]


def test_process_all_analyses_each_capture_once(
    call: RecordingInfo, calls: Calls, tmp_path: Path
) -> None:
    captures = digests(call.root)
    assert len(captures) == 9
    with open_recording(call.root) as rec:
        summary = process_all(rec, tmp_path).summary
    assert summary["qa"]  # the QA report (which needs every capture's gaps) was written
    assert calls["analyze_capture"] == Counter(dict.fromkeys(captures, 1))
    assert calls["stream_columns"] == Counter(dict.fromkeys(captures, 1))


def test_opening_a_recording_reads_no_packet_columns(call: RecordingInfo, calls: Calls) -> None:
    with open_recording(call.root) as rec:
        assert len(rec.tracks) == 9  # list-tracks needs no more than this
    assert calls["analyze_capture"] == Counter(dict.fromkeys(digests(call.root), 1))
    assert calls["stream_columns"] == Counter()


def test_the_qa_gaps_come_from_the_timelines_read(call: RecordingInfo, calls: Calls) -> None:
    with open_recording(call.root) as rec:
        timeline_of(rec)  # reads every capture's columns once
        assert calls["stream_columns"] == Counter(dict.fromkeys(digests(call.root), 1))
        for seg in segments(rec):
            assert arrival_gaps(rec, seg) is arrival_gaps(rec, seg)
    assert calls["stream_columns"] == Counter(dict.fromkeys(digests(call.root), 1))


def test_an_analysis_that_reads_the_streams_spares_the_timeline_a_second_read(
    call: RecordingInfo, calls: Calls
) -> None:
    """`open_recording(streams=True)` (what the writing commands open with) reads each capture
    once: the timeline and the gaps come from that pass, equal to a second read's."""
    captures = digests(call.root)
    with open_recording(call.root) as rec:
        timeline, gaps = timeline_of(rec), {s.capture: arrival_gaps(rec, s) for s in segments(rec)}
    for counter in calls.values():
        counter.clear()
    with open_recording(call.root, streams=True) as rec:
        assert all(capture_facts(rec, s).gaps is not None for s in segments(rec)), "gaps kept"
        assert timeline_of(rec) == timeline
        assert {s.capture: arrival_gaps(rec, s) for s in segments(rec)} == gaps
        assert all(capture_facts(rec, s).stream is None for s in segments(rec)), "stream dropped"
    assert calls["analyze_capture_stream"] == Counter(dict.fromkeys(captures, 1))
    assert calls["analyze_capture"] == Counter(), "the one pass is analyze_capture_stream"
    assert calls["stream_columns"] == Counter(), "no capture read again"


def _numpy_gaps(cols: dict[str, Any], ssrc: int | None, start_unix_ms: float) -> list[Any]:
    """The arrival gaps as the NumPy code the core's replaced computed them, from the capture's
    full per-packet columns: the independent reference for the core's single pass."""
    import numpy as np

    mask = np.ones(len(cols["arrival_ms"]), dtype=bool)
    if ssrc is not None:
        mask &= cols["ssrc"] == ssrc
    order = np.argsort(cols["arrival_ms"][mask], kind="stable")
    arrival = cols["arrival_ms"][mask][order].astype(np.float64) + start_unix_ms
    seq = cols["ext_seq"][mask][order].astype(np.int64)
    if len(arrival) < 2:
        return []
    d = np.diff(arrival)
    spaced = d[d > 0]
    limit = max(100, 3 * float(np.median(spaced))) if len(spaced) else 100
    at = np.flatnonzero(d > limit)
    quiet = at[(seq[at + 1] - seq[at]) <= 1]
    by_seq = np.argsort(seq, kind="stable")
    jumps = np.flatnonzero(np.diff(seq[by_seq]) > 1)
    before, after = arrival[by_seq[jumps]], arrival[by_seq[jumps + 1]]
    silences = [arrival[quiet], arrival[quiet + 1], np.full(len(quiet), GAP_SILENCE)]
    losses = [np.minimum(before, after), np.maximum(before, after), np.full(len(jumps), GAP_LOSS)]
    rows = np.concatenate([np.column_stack(silences), np.column_stack(losses)])
    return [tuple(map(float, r)) for r in rows[np.argsort(rows[:, 0], kind="stable")]]


def test_the_analysis_pass_gaps_equal_the_numpy_rule(call: RecordingInfo) -> None:
    """Loss, reordering, a sequence wrap, duplicates and jitter (the multiparty call): the gaps
    the analysis pass reads equal, to the bit, what the NumPy code computed from every packet."""
    with open_recording(call.root, streams=True) as rec:
        assert rec.archive is not None
        checked = 0
        for seg in segments(rec):
            with rec.archive.open_buffer(seg.capture) as buf:
                cols = _core.capture_columns(buf)
            facts = capture_facts(rec, seg)
            want = _numpy_gaps(cols, seg.stats.ssrcs[0], facts.start_unix_ms)
            assert list(arrival_gaps(rec, seg)) == want, seg.capture
            checked += bool(want)
        assert checked >= 2, "the call has gaps to compare"


def test_what_is_kept_matches_a_fresh_analysis_and_is_small(call: RecordingInfo) -> None:
    with open_recording(call.root) as rec:
        timeline_of(rec)
        assert rec.archive is not None
        for seg in segments(rec):
            facts = capture_facts(rec, seg)
            with rec.archive.open_buffer(seg.capture) as buf:
                report = _core.analyze_capture(buf)
                cols = _core.capture_columns(buf)
            ssrc = seg.stats.ssrcs[0]
            srs = [s for s in report.sender_reports if s.ssrc == ssrc]
            assert facts.start_unix_ms == report.header.start_unix_us / 1000.0
            assert facts.sr_arrival_ms == tuple(s.arrival_ms for s in srs)
            assert facts.sr_rtp_ts == tuple(s.rtp_ts for s in srs)
            assert facts.sr_ntp_unix_ms == tuple(s.ntp_unix_ms for s in srs)
            assert facts.cname == next(n for s, n in report.cnames if s == ssrc)
            assert srs and facts.gaps is not None
            # One row per Sender Report or per gap, never one per packet.
            gaps = facts.gaps
            assert all(len(g) == 3 for g in gaps) and len(gaps) < len(cols["arrival_ms"]) // 4
            kept = [facts.sr_arrival_ms, facts.sr_rtp_ts, facts.sr_ntp_unix_ms, gaps]
            assert all(len(a) <= seg.stats.sender_reports + len(gaps) for a in kept)


def test_the_gaps_tell_silence_from_loss(tmp_path: Path) -> None:
    """DTX silences (the sender sends nothing; sequence numbers run on) and a burst of lost
    packets inside speech come back as gaps of their own cause, at their times."""
    packets = opus_packets(4.0, dtx=True, tone_bursts=((1.0, 1.5, 440.0),))
    ts0 = int.from_bytes(packets[0][4:8], "big")

    def at_ms(p: bytes) -> float:
        return (int.from_bytes(p[4:8], "big") - ts0) / 48

    # 200 ms of packets lost in the middle of the tone.
    kept = [p for p in packets if not 1500 <= at_ms(p) < 1700]
    assert len(packets) - len(kept) == 10
    info = build_recording(
        tmp_path / "rec",
        [SessionSpec("u", "s", [TrackSpec("audio", "opus", packets=kept, sender_reports=None)])],
    )
    with open_recording(info.root) as rec:
        (seg,) = rec.tracks[0].segments
        gaps = arrival_gaps(rec, seg)
        first = info.sessions[0].tracks[0].first_arrival_unix_ms
    assert first is not None
    rel = [(a - first, b - first, cause) for a, b, cause in gaps]
    losses = [(a, b) for a, b, cause in rel if cause == GAP_LOSS]
    silences = [(a, b) for a, b, cause in rel if cause == GAP_SILENCE]
    ((a, b),) = losses
    assert a == pytest.approx(1480, abs=30) and b == pytest.approx(1700, abs=30)
    assert silences and all(b <= 1000 + 30 or a >= 2500 - 30 for a, b in silences), silences
