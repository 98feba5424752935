"""A capture's media stream as the call timeline reads it, read when a stage needs it and not
kept.

`_core.stream_columns` reads, in one pass in the core, the RTP timestamps and arrivals of the
stream a segment is (its SSRC and payload type) and the arrival gaps of that SSRC; a recording
opened with `streams=True` has them already, from the analysis pass itself
(`_core.analyze_capture_stream`). The columns
are large (one row per packet), so they are read afresh each time; the gaps are small and kept
on the recording's `CaptureFacts` from the first read, so no later stage (the gap policy, the
QA report) reads the capture again for them. No NumPy: an extraction loads none.
"""

from __future__ import annotations

from rawcore import _core
from rawcore.errors import RawcoreError
from rawcore.recording.model import ArrivalGap, CaptureFacts, Recording, Segment

#: The cause of an arrival gap, in the third field of an `arrival_gaps` row.
GAP_SILENCE, GAP_LOSS = 0.0, 1.0


def capture_facts(rec: Recording, seg: Segment) -> CaptureFacts:
    """What the analysis kept of `seg`'s capture for the later stages."""
    return rec.capture_cache[seg.capture]


def read_stream(rec: Recording, seg: Segment) -> _core.StreamColumns:
    """The columns of the stream `seg`'s capture carries (`_core.stream_columns`), read afresh
    and not kept: they are large. Their arrival gaps are kept from the same read, so the QA
    report does not read the capture again after the call timeline has."""
    if rec.archive is None:
        raise RawcoreError("the recording is closed")
    facts = capture_facts(rec, seg)
    # The stream the track is (the timeline places the same one); every packet without.
    ssrc = seg.stats.ssrcs[0] if seg.stats.ssrcs else None
    start, pt = facts.start_unix_ms, seg.payload_type
    if facts.stream is not None:  # read by the analysis pass: the capture is not read again
        cols, facts.stream = facts.stream, None
        return cols
    with rec.archive.open_buffer(seg.capture) as buf:
        cols = _core.stream_columns(buf, ssrc=ssrc, payload_type=pt, start_unix_ms=start)
    if facts.gaps is None:
        facts.gaps = tuple(cols.gaps)
    return cols


def arrival_gaps(rec: Recording, seg: Segment) -> tuple[ArrivalGap, ...]:
    """Stretches with no packet of `seg`'s stream for longer than 100 ms or 3 packet intervals,
    as (start, end, cause) rows (Unix ms): `GAP_SILENCE` where the sequence numbers run on
    across the gap (the sender sent nothing: DTX, a muted or paused sender), `GAP_LOSS` where
    packets are missing. Read once, then kept."""
    facts = capture_facts(rec, seg)
    if facts.gaps is None:
        read_stream(rec, seg)
    assert facts.gaps is not None
    return facts.gaps
