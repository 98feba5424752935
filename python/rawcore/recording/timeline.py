"""The call timeline: every track's RTP time placed on the recorder's wall clock.

Model (the README has the long form):

1. Sender clock, per stream. RTCP Sender Reports pair an RTP timestamp with the sender's NTP
   time. A robust line fit (outliers rejected) maps the stream's RTP time to sender time; it is
   applied backwards to media before the first report. Audio and video of one participant share
   the sender's clock (same CNAME), so Sender Reports give lip sync and clock drift.
2. Sender to recorder, per participant. A sender's NTP clock can be seconds away from the
   recorder's, so Sender Reports never place a track absolutely. Each packet's arrival time on the
   recorder's clock minus its sender time is the clock offset plus network and buffering delay;
   the lower envelope of that difference (window minima over all the participant's streams,
   fitted with a line) is the offset, and its slope the drift, corrected gradually along the call.
3. Without Sender Reports a stream falls back to its arrival times: the lower envelope of
   arrival minus nominal media time. The placement then says `basis: "arrival"`.

The fits and the placement rule run in the Rust core (`_core.place_streams`, one call per
sender clock) over each capture's stream columns, which stay in Rust (read by the analysis pass
of `open_recording(streams=True)`, else by `_core.stream_columns`; no NumPy); this module
gathers the inputs, groups the streams by clock and keeps the results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from rawcore import _core
from rawcore.errors import RawcoreError
from rawcore.recording.columns import capture_facts, read_stream
from rawcore.recording.model import Recording, Segment, Track
from rawcore.threads import core_workers, map_in_threads

Basis = Literal["sender_reports", "arrival"]
WINDOW_MS = 10_000.0


@dataclass(frozen=True)
class Placement:
    """Where one segment (capture) sits on the call's wall clock."""

    capture: str
    track_id: str
    participant_id: str
    kind: str
    basis: Basis
    #: Recorder-clock time (Unix ms) of the segment's first RTP timestamp: the output's t=0.
    start_unix_ms: float
    #: Arrival time of the first packet, for comparison.
    first_arrival_unix_ms: float
    clock_rate: int
    sender_reports: int = 0
    sr_rejected: int = 0
    sr_residual_ms: float = 0.0
    slope_ppm: float = 0.0
    clock: str | None = None  # the CNAME (or stand-in) whose sender clock it shares
    offset_ms: float | None = None  # recorder minus sender clock at the segment start
    drift_ppm: float = 0.0
    envelope_residual_ms: float = 0.0
    #: How fast the segment's media clock runs against the recorder's, in ppm, as the outputs
    #: apply it (the fits' clamped values): the sender clock's slope and the offset's drift
    #: together. Audio makes it up inside the holes it fills, video stretches frame times.
    clock_ppm: float = 0.0


@dataclass
class Timeline:
    """Placements of every segment of a recording, and what the fits found."""

    placements: dict[str, Placement] = field(default_factory=dict)  # keyed by capture
    warnings: list[str] = field(default_factory=list)

    def start(self, segment: Segment) -> float | None:
        p = self.placements.get(segment.capture)
        return None if p is None else p.start_unix_ms

    def clock_ppm(self, segment: Segment) -> float:
        """The segment's media-clock drift against the recorder, 0 when it is not placed."""
        p = self.placements.get(segment.capture)
        return 0.0 if p is None else p.clock_ppm

    def report(self) -> dict[str, Any]:
        return {
            "placements": [asdict(p) for p in self.placements.values()],
            "warnings": list(self.warnings),
        }


class _Stream(NamedTuple):
    """One segment's media stream as `_core.place_streams` takes it."""

    segment: Segment
    track: Track
    columns: _core.StreamColumns
    sr_arrival_unix_ms: list[float]
    sr_rtp_ts: tuple[int, ...]
    sr_ntp_unix_ms: tuple[float, ...]
    cname: str | None
    clock_rate: int


def _load(rec: Recording, track: Track, seg: Segment) -> _Stream | None:
    if not seg.stats.ssrcs or seg.clock_rate is None:
        return None
    # The capture was analysed when the recording was opened (the Sender Reports and CNAME of
    # this stream were kept); only its packet columns are read here.
    facts = capture_facts(rec, seg)
    cols = read_stream(rec, seg)
    if cols.packets == 0:
        return None
    start_ms = facts.start_unix_ms
    return _Stream(
        seg,
        track,
        cols,
        [t + start_ms for t in facts.sr_arrival_ms],
        facts.sr_rtp_ts,
        facts.sr_ntp_unix_ms,
        facts.cname,
        seg.clock_rate,
    )


def timeline_of(rec: Recording) -> Timeline:
    """The recording's timeline, fitted once and kept on the recording."""
    if not isinstance(rec.timeline_cache, Timeline):
        rec.timeline_cache = build_timeline(rec)
    assert isinstance(rec.timeline_cache, Timeline)
    return rec.timeline_cache


def build_timeline(rec: Recording, *, window_ms: float = WINDOW_MS) -> Timeline:
    """Fit every stream's sender clock and every participant's recorder offset."""
    archive = rec.archive
    if archive is None:
        raise RawcoreError("the recording is closed")
    timeline = Timeline()
    pairs = [(track, seg) for track in rec.tracks for seg in track.segments]
    # The core reads captures and places clocks with the GIL released, so the captures not read
    # by the analysis pass are read in parallel threads, and the clock groups placed so too.
    workers = core_workers()
    unread = sum(rec.capture_cache[seg.capture].stream is None for _, seg in pairs)
    loaded = list(
        map_in_threads(lambda pair: _load(rec, *pair), pairs, workers if unread > 1 else 1)
    )
    streams = [s for s in loaded if s is not None]
    # One sender clock per CNAME; without one, per participant session.
    clocks: dict[str, list[_Stream]] = {}
    for s in streams:
        key = s.cname or f"{s.track.participant_id}/{s.track.session_id}"
        clocks.setdefault(key, []).append(s)
    groups = list(clocks.items())
    placed = list(map_in_threads(lambda group: _place(group[1], window_ms), groups, workers))
    for (key, group), placements in zip(groups, placed, strict=True):
        _record_group(key, group, placements, timeline)
    return timeline


def _place(group: list[_Stream], window_ms: float) -> list[_core.StreamPlacement]:
    return _core.place_streams(
        [
            (
                s.columns,
                s.sr_arrival_unix_ms,
                s.sr_rtp_ts,
                s.sr_ntp_unix_ms,
                s.clock_rate,
            )
            for s in group
        ],
        window_ms=window_ms,
    )


def _record_group(
    key: str, group: list[_Stream], placed: list[_core.StreamPlacement], timeline: Timeline
) -> None:
    pairs = list(zip(group, placed, strict=True))
    for s, p in pairs:
        if p.warning is not None:
            timeline.warnings.append(f"{s.segment.capture}: {p.warning}; placed by arrival time")
    # Placements by Sender Reports are listed first, then those by arrival, each in clock order.
    for s, p in sorted(pairs, key=lambda pair: pair[1].basis != "sender_reports"):
        timeline.placements[s.segment.capture] = Placement(
            capture=s.segment.capture,
            track_id=s.track.track_id,
            participant_id=s.track.participant_id,
            kind=s.track.kind,
            basis=p.basis,
            start_unix_ms=p.start_unix_ms,
            first_arrival_unix_ms=p.first_arrival_unix_ms,
            clock_rate=p.clock_rate,
            sender_reports=p.sender_reports,
            sr_rejected=p.sr_rejected,
            sr_residual_ms=p.sr_residual_ms,
            slope_ppm=p.slope_ppm,
            clock=key,
            offset_ms=p.offset_ms,
            drift_ppm=p.drift_ppm,
            envelope_residual_ms=p.envelope_residual_ms,
            clock_ppm=p.clock_ppm,
        )
    for s, p in pairs:
        if p.basis == "arrival":
            timeline.warnings.append(
                f"{s.segment.capture}: no RTCP Sender Reports; placed by arrival time "
                "(lip sync with the participant's other tracks is not guaranteed)"
            )
