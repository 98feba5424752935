"""The recording model: call -> participants -> sessions -> tracks -> segments.

Frozen types only (plus the open `Recording`, which owns the archive handle and the caches of
what later stages computed once). `rawcore.recording.build` makes them from an archive;
everything above reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rawcore import _core
from rawcore.recording.metadata import SegmentMetadata
from rawcore.source.archive import Archive

Kind = Literal["audio", "video"]

#: One arrival gap: start and end (Unix ms) and its cause (0.0 silence, 1.0 loss).
ArrivalGap = tuple[float, float, float]


@dataclass(frozen=True)
class TrackStats:
    """Packet statistics of a segment or a whole track (media streams only, RTX excluded)."""

    packets: int = 0  # unique media packets (duplicates excluded)
    received: int = 0  # RTP packets in the capture, duplicates included
    bytes: int = 0  # payload bytes received, duplicates included
    expected: int = 0
    lost: int = 0
    recovered_rtx: int = 0
    duplicates: int = 0
    reordered: int = 0
    late: int = 0
    padding_only: int = 0
    sender_reports: int = 0
    jitter_ms: float | None = None
    ssrcs: tuple[int, ...] = ()

    @property
    def loss_pct(self) -> float:
        """Lost packets as a share of the expected ones, after RTX recovery."""
        return 100.0 * self.lost / self.expected if self.expected else 0.0

    def __add__(self, other: TrackStats) -> TrackStats:
        jitters = [j for j in (self.jitter_ms, other.jitter_ms) if j is not None]
        return TrackStats(
            packets=self.packets + other.packets,
            received=self.received + other.received,
            bytes=self.bytes + other.bytes,
            expected=self.expected + other.expected,
            lost=self.lost + other.lost,
            recovered_rtx=self.recovered_rtx + other.recovered_rtx,
            duplicates=self.duplicates + other.duplicates,
            reordered=self.reordered + other.reordered,
            late=self.late + other.late,
            padding_only=self.padding_only + other.padding_only,
            sender_reports=self.sender_reports + other.sender_reports,
            jitter_ms=max(jitters) if jitters else None,
            ssrcs=tuple(dict.fromkeys(self.ssrcs + other.ssrcs)),
        )


@dataclass(frozen=True)
class Segment:
    """One capture file: a contiguous piece of a track."""

    base_filename: str
    capture: str
    sdp: str | None
    codec: str | None
    clock_rate: int | None
    start_unix_ms: int | None
    end_unix_ms: int | None
    stats: TrackStats
    metadata: SegmentMetadata | None = None
    capture_size: int = 0
    payload_type: int | None = None  # the media payload type (RTX excluded)
    channels: int | None = None  # from the SDP rtpmap, when it says
    #: The track's stream as the analysis chose it (`CaptureReport.primary_ssrc`, the rule the
    #: core's extraction follows too), and whether a packet of it is coded stereo (Opus TOC):
    #: handed to the extraction so that it reads the capture once.
    ssrc: int | None = None
    opus_stereo: bool = False
    #: RTP header extensions the SDP negotiated: (id, URI), e.g. video orientation.
    extmaps: tuple[tuple[int, str], ...] = ()

    def extension_id(self, uri: str) -> int | None:
        return next((i for i, u in self.extmaps if u == uri), None)

    @property
    def duration_ms(self) -> int:
        if self.start_unix_ms is None or self.end_unix_ms is None:
            return 0
        return max(0, self.end_unix_ms - self.start_unix_ms)


@dataclass(eq=False)
class CaptureFacts:
    """What the call timeline and the QA report need from one capture beyond its `Segment`.

    Kept on the `Recording` for the whole run, so it holds one row per Sender Report or per
    gap, never per packet: the stream the timeline places is the first media SSRC
    (`Segment.stats.ssrcs[0]`), and only its reports and CNAME are kept.
    """

    start_unix_ms: float  # the capture header's start: packet arrival times count from it
    sr_arrival_ms: tuple[int, ...]  # after the capture start
    sr_rtp_ts: tuple[int, ...]  # the 32-bit RTP timestamp as sent
    sr_ntp_unix_ms: tuple[float, ...]
    cname: str | None
    #: Stretches (Unix ms, one (start, end, cause) row each) with no packet for longer than
    #: 100 ms or 3 packet intervals; None until the stream is first read (`arrival_gaps`).
    gaps: tuple[ArrivalGap, ...] | None = None
    #: The stream the analysis read in its own pass for the call timeline
    #: (`open_recording(streams=True)`): 12 bytes a packet, dropped once the timeline has read
    #: it. Its gaps are in `gaps` from the start.
    stream: _core.StreamColumns | None = None


@dataclass(frozen=True)
class Track:
    """One media track of a participant session, made of one or more segments."""

    track_id: str
    kind: Kind
    track_type: str
    participant_id: str
    session_id: str
    segments: tuple[Segment, ...]
    #: The open recording this track belongs to (set by `open_recording`).
    recording: Recording | None = field(default=None, compare=False, repr=False)

    @property
    def screenshare(self) -> bool:
        return self.track_type.startswith("TRACK_TYPE_SCREEN_SHARE")

    @property
    def codec(self) -> str | None:
        return next((s.codec for s in self.segments if s.codec), None)

    @property
    def start_unix_ms(self) -> int | None:
        starts = [s.start_unix_ms for s in self.segments if s.start_unix_ms is not None]
        return min(starts) if starts else None

    @property
    def end_unix_ms(self) -> int | None:
        ends = [s.end_unix_ms for s in self.segments if s.end_unix_ms is not None]
        return max(ends) if ends else None

    @property
    def duration_ms(self) -> int:
        start, end = self.start_unix_ms, self.end_unix_ms
        return max(0, end - start) if start is not None and end is not None else 0

    @property
    def declared_size(self) -> tuple[int, int] | None:
        """The largest picture (width, height) the recorder's metadata declares for the track,
        by area as the recorder compares them; None for audio or when no segment says."""
        sizes = [
            s.metadata.max_frame_dimension.size
            for s in self.segments
            if s.metadata is not None and s.metadata.max_frame_dimension is not None
        ]
        known = [wh for wh in sizes if wh is not None]
        return max(known, key=lambda wh: wh[0] * wh[1]) if known else None

    @property
    def stats(self) -> TrackStats:
        total = TrackStats()
        for seg in self.segments:
            total = total + seg.stats
        return total


@dataclass(frozen=True)
class Session:
    """One join of a participant: the tracks it published until it left."""

    session_id: str
    participant_id: str
    tracks: tuple[Track, ...]

    @property
    def start_unix_ms(self) -> int | None:
        starts = [t.start_unix_ms for t in self.tracks if t.start_unix_ms is not None]
        return min(starts) if starts else None

    @property
    def end_unix_ms(self) -> int | None:
        ends = [t.end_unix_ms for t in self.tracks if t.end_unix_ms is not None]
        return max(ends) if ends else None


@dataclass(frozen=True)
class Participant:
    """A user of the call, with every session they joined with."""

    participant_id: str
    sessions: tuple[Session, ...]

    @property
    def tracks(self) -> tuple[Track, ...]:
        return tuple(t for s in self.sessions for t in s.tracks)


@dataclass
class Recording:
    """A whole raw recording, opened for reading. Close it (or use `with`) when done."""

    source: str
    call_type: str | None
    call_id: str | None
    call_session_id: str | None
    call_start_unix_ms: int | None
    participants: tuple[Participant, ...]
    metadata_source: Literal["metadata", "inferred", "mixed"]
    warnings: list[str] = field(default_factory=list)
    archive: Archive | None = field(default=None, repr=False)
    #: The call timeline, fitted on first use and kept here by
    #: `rawcore.recording.timeline.timeline_of` (typed loosely: the timeline is a layer above).
    timeline_cache: object = field(default=None, repr=False, compare=False)
    #: Per capture name, what later stages need from its analysis (`capture_facts`).
    capture_cache: dict[str, CaptureFacts] = field(default_factory=dict, repr=False, compare=False)

    @property
    def sessions(self) -> tuple[Session, ...]:
        return tuple(s for p in self.participants for s in p.sessions)

    @property
    def tracks(self) -> tuple[Track, ...]:
        return tuple(t for p in self.participants for t in p.tracks)

    @property
    def start_unix_ms(self) -> int | None:
        starts = [t.start_unix_ms for t in self.tracks if t.start_unix_ms is not None]
        if self.call_start_unix_ms is not None:
            starts.append(self.call_start_unix_ms)
        return min(starts) if starts else None

    @property
    def end_unix_ms(self) -> int | None:
        ends = [t.end_unix_ms for t in self.tracks if t.end_unix_ms is not None]
        return max(ends) if ends else None

    def call_json(self) -> dict[str, Any]:
        """The call as every JSON document rawcore writes describes it (manifest, list-tracks,
        QA report): one shape."""
        return {
            "call_type": self.call_type,
            "call_id": self.call_id,
            "call_session_id": self.call_session_id,
            "call_start_unix_ms": self.call_start_unix_ms,
            "start_unix_ms": self.start_unix_ms,
            "end_unix_ms": self.end_unix_ms,
        }

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
            self.archive = None

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
