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

The fits run in the Rust core over NumPy columns from the captures; this module gathers the
inputs and keeps the results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rawcore import _core
from rawcore.errors import RawcoreError
from rawcore.recording.columns import capture_facts, read_columns
from rawcore.recording.model import Recording, Segment, Track

Basis = Literal["sender_reports", "arrival"]
WINDOW_MS = 10_000.0
#: Envelope windows a drift estimate needs before outputs follow it.
MIN_DRIFT_WINDOWS = 6


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


@dataclass
class _Stream:
    segment: Segment
    track: Track
    ext_ts: npt.NDArray[np.int64]
    arrival_unix_ms: npt.NDArray[np.float64]
    sr_rtp: npt.NDArray[np.int64]
    sr_sender_ms: npt.NDArray[np.float64]
    cname: str | None
    clock_rate: int


def unwrap_timestamps(ts: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
    """Extended RTP timestamps (arrival order), each step taken as the shortest way round."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    half, full = np.int64(1 << 31), np.int64(1 << 32)
    steps = np.diff(ts.astype(np.int64))
    d = np.asarray(np.remainder(steps + half, full) - half, dtype=np.int64)
    out = np.empty(len(ts), dtype=np.int64)
    out[0] = int(ts[0])
    np.cumsum(d, out=out[1:])
    out[1:] += int(ts[0])
    return out


def _extend_near(raw: int, ref_ext: int, ref_raw: int) -> int:
    d = (raw - ref_raw + (1 << 31)) % (1 << 32) - (1 << 31)
    return ref_ext + d


def _load(rec: Recording, track: Track, seg: Segment) -> _Stream | None:
    if not seg.stats.ssrcs or seg.clock_rate is None:
        return None
    # The capture was analysed when the recording was opened (the Sender Reports and CNAME of
    # this stream were kept); only its packet columns are read here.
    facts = capture_facts(rec, seg)
    cols = read_columns(rec, seg)
    start_ms = facts.start_unix_ms
    mask = cols["ssrc"] == seg.stats.ssrcs[0]
    if seg.payload_type is not None:
        mask &= cols["payload_type"] == seg.payload_type
    ts = cols["timestamp"][mask]
    if len(ts) == 0:
        return None
    ext = unwrap_timestamps(ts)
    arrival = cols["arrival_ms"][mask].astype(np.float64) + start_ms
    del cols  # the full columns are large; only this stream's are kept
    sr_rtp = np.zeros(len(facts.sr_rtp_ts), dtype=np.int64)
    for i, (sr_arrival, sr_ts) in enumerate(zip(facts.sr_arrival_ms, facts.sr_rtp_ts, strict=True)):
        j = int(np.searchsorted(arrival, start_ms + sr_arrival).clip(0, len(ext) - 1))
        sr_rtp[i] = _extend_near(int(sr_ts), int(ext[j]), int(ts[j]))
    return _Stream(
        seg, track, ext, arrival, sr_rtp, facts.sr_ntp_unix_ms, facts.cname, seg.clock_rate
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
    streams: list[_Stream] = []
    for track in rec.tracks:
        for seg in track.segments:
            stream = _load(rec, track, seg)
            if stream is not None:
                streams.append(stream)
    # One sender clock per CNAME; without one, per participant session.
    clocks: dict[str, list[_Stream]] = {}
    for s in streams:
        key = s.cname or f"{s.track.participant_id}/{s.track.session_id}"
        clocks.setdefault(key, []).append(s)
    for key, group in clocks.items():
        _place_group(key, group, timeline, window_ms)
    return timeline


def _clock_ppm(slope_ratio: float, offset: Any) -> float:
    """Recorder ms per nominal media ms, minus one, in ppm (rounded to 0.01 ppm so reports
    stay readable; a 0.01 ppm error is 36 µs per hour). The envelope's drift counts only when
    it rests on a minute of windows: over less, jitter in a few window minima would pass for
    drift, and real drift cannot amount to much yet."""
    drift = offset.d if offset.windows >= MIN_DRIFT_WINDOWS else 0.0
    return round((slope_ratio * (1.0 + drift) - 1.0) * 1e6, 2)


def _first_ext(s: _Stream) -> int:
    # The output's t=0 is the earliest timestamp the engine sees first; reordering at the very
    # start is bounded by the reorder window, so the minimum over the first packets is it.
    return int(s.ext_ts[: min(len(s.ext_ts), 64)].min())


def _place_group(key: str, group: Iterable[_Stream], timeline: Timeline, window_ms: float) -> None:
    fitted: list[tuple[_Stream, Any]] = []
    fallback: list[_Stream] = []
    for s in group:
        if len(s.sr_rtp) == 0:
            fallback.append(s)
            continue
        try:
            fit = _core.fit_sender_clock(s.sr_rtp, s.sr_sender_ms, s.clock_rate)
        except RawcoreError as exc:
            timeline.warnings.append(f"{s.segment.capture}: {exc}; placed by arrival time")
            fallback.append(s)
            continue
        fitted.append((s, fit))
    if fitted:
        sender = np.concatenate([fit.sender_ms_array(s.ext_ts) for s, fit in fitted])
        arrival = np.concatenate([s.arrival_unix_ms for s, _ in fitted])
        offset = _core.fit_offset(sender, arrival, window_ms)
        for s, fit in fitted:
            first = _first_ext(s)
            sender_first = fit.sender_ms(first)
            timeline.placements[s.segment.capture] = Placement(
                capture=s.segment.capture,
                track_id=s.track.track_id,
                participant_id=s.track.participant_id,
                kind=s.track.kind,
                basis="sender_reports",
                start_unix_ms=offset.recorder_ms(sender_first),
                first_arrival_unix_ms=float(s.arrival_unix_ms[0]),
                clock_rate=s.clock_rate,
                sender_reports=fit.points + fit.rejected,
                sr_rejected=fit.rejected,
                sr_residual_ms=fit.max_residual_ms,
                slope_ppm=fit.slope_ppm,
                clock=key,
                offset_ms=offset.offset_ms(sender_first),
                drift_ppm=offset.drift_ppm,
                envelope_residual_ms=offset.residual_ms,
                clock_ppm=_clock_ppm(fit.b / fit.nominal_b, offset),
            )
    for s in fallback:
        nominal = (s.ext_ts - _first_ext(s)).astype(np.float64) * 1000.0 / s.clock_rate
        offset = _core.fit_offset(nominal, s.arrival_unix_ms, window_ms)
        timeline.placements[s.segment.capture] = Placement(
            capture=s.segment.capture,
            track_id=s.track.track_id,
            participant_id=s.track.participant_id,
            kind=s.track.kind,
            basis="arrival",
            start_unix_ms=offset.recorder_ms(0.0),
            first_arrival_unix_ms=float(s.arrival_unix_ms[0]),
            clock_rate=s.clock_rate,
            clock=key,
            drift_ppm=offset.drift_ppm,
            envelope_residual_ms=offset.residual_ms,
            clock_ppm=_clock_ppm(1.0, offset),
        )
        timeline.warnings.append(
            f"{s.segment.capture}: no RTCP Sender Reports; placed by arrival time "
            "(lip sync with the participant's other tracks is not guaranteed)"
        )
