"""The recording model: call -> participants -> sessions -> tracks -> segments.

A raw recording is a tree of captures (`<user>/<session>/<base>.rtpdump` + `<base>.sdp`) with
timing metadata per session. This module matches every capture to its metadata segment by
exact base name, analyses each capture once in the Rust core (in parallel, GIL released), and
builds frozen objects the CLI and later stages (extraction, the call timeline) read. Without
metadata it infers the same structure from the tree and says so in `Recording.warnings`.

What later stages need from a capture beyond its `Segment` (Sender Reports, CNAME, arrival
gaps) is kept small on the `Recording` (`capture_facts`), so no stage analyses a capture again;
the per-packet columns are read once, when the call timeline is fitted (`read_columns`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rawcore import _core
from rawcore.archive import Archive, Limits, open_archive
from rawcore.errors import CaptureError, InputError, MetadataError, RawcoreError, SdpError
from rawcore.metadata import (
    SegmentMetadata,
    SessionMetadata,
    is_metadata_name,
    parse_session_metadata,
)

Kind = Literal["audio", "video"]

CAPTURE_SUFFIX = ".rtpdump"

#: Arrival gaps shorter than this (or than 3 packet intervals) are ordinary packet spacing.
GAP_MS = 100

# Codec names as list-tracks prints them, keyed by the SDP encoding name.
_CODEC_NAMES = {
    "opus": "opus",
    "vp8": "vp8",
    "vp9": "vp9",
    "h264": "h264",
    "av1": "av1",
    "pcmu": "pcmu",
    "pcma": "pcma",
    "g722": "g722",
    "red": "red",
}


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
    sr_arrival_ms: npt.NDArray[np.int64]  # after the capture start
    sr_rtp_ts: npt.NDArray[np.int64]  # the 32-bit RTP timestamp as sent
    sr_ntp_unix_ms: npt.NDArray[np.float64]
    cname: str | None
    #: Stretches (Unix ms, one [start, end] row each) with no packet for longer than GAP_MS or
    #: 3 packet intervals; None until the packet columns are first read (`arrival_gaps`).
    gaps: npt.NDArray[np.float64] | None = None


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

    def _open_recording(self) -> Recording:
        if self.recording is None or self.recording.archive is None:
            raise RawcoreError(f"track {self.track_id}: its recording is closed")
        return self.recording

    def extract_audio(self, path: str | os.PathLike[str], **options: Any) -> Any:
        """Write this audio track to `path` (the suffix picks the container: .mkv, .mka,
        .webm, .ogg); `options` as `rawcore.extract.extract_audio`. Returns the manifest entry.
        """
        from rawcore.extract import extract_track

        return extract_track(self._open_recording(), self, Path(path), **options)

    def extract_video(self, path: str | os.PathLike[str], **options: Any) -> Any:
        """Write this video track to `path` (.mkv or .webm); `options` as
        `rawcore.video.extract_video`. Returns the manifest entry."""
        from rawcore.extract import extract_track

        return extract_track(self._open_recording(), self, Path(path), **options)

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
    #: The call timeline, fitted on first use (`rawcore.timeline.timeline_of`).
    timeline_cache: Any = field(default=None, repr=False)
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

    def extract_audio(self, output: str | os.PathLike[str], **options: Any) -> Any:
        """Every (selected) audio track into `output`; see `rawcore.extract.extract_audio`.
        Returns (manifest entries, warnings)."""
        from rawcore.extract import extract_audio

        return extract_audio(self, output, **options)

    def extract_video(self, output: str | os.PathLike[str], **options: Any) -> Any:
        """Every (selected) video track into `output`; see `rawcore.video.extract_video`."""
        from rawcore.video import extract_video

        return extract_video(self, output, **options)

    def mux_av(self, output: str | os.PathLike[str], **options: Any) -> Any:
        """Lip-synced audio+video per session into `output`; see `rawcore.mux.mux_av`."""
        from rawcore.mux import mux_av

        return mux_av(self, output, **options)

    def process_all(self, output: str | os.PathLike[str], **options: Any) -> Any:
        """Everything into `output`; see `rawcore.process.process_all`."""
        from rawcore.process import process_all

        return process_all(self, output, **options)

    @property
    def timeline(self) -> Any:
        """The call timeline (`rawcore.timeline.Timeline`), fitted on first use."""
        from rawcore.timeline import timeline_of

        return timeline_of(self)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
            self.archive = None

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- building ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Capture:
    name: str  # archive member of the .rtpdump
    directory: str
    base: str
    sdp: str | None
    size: int


@dataclass(frozen=True)
class _SdpInfo:
    kind: Kind | None
    rtx_apt: tuple[tuple[int, int], ...]
    clock_rates: tuple[tuple[int, int], ...]
    codecs: dict[int, str]
    channels: dict[int, int]
    extmaps: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class _Analysis:
    codec: str | None
    clock_rate: int | None
    payload_type: int | None
    channels: int | None
    kind: Kind | None
    stats: TrackStats
    first_arrival_unix_ms: int | None
    last_arrival_unix_ms: int | None
    warnings: tuple[str, ...]
    facts: CaptureFacts
    extmaps: tuple[tuple[int, str], ...] = ()


def capture_facts(rec: Recording, seg: Segment) -> CaptureFacts:
    """What the analysis kept of `seg`'s capture for the later stages."""
    return rec.capture_cache[seg.capture]


def read_columns(rec: Recording, seg: Segment) -> dict[str, npt.NDArray[Any]]:
    """The per-packet columns of `seg`'s capture (`_core.capture_columns`), read afresh and not
    kept: they are large. Their arrival gaps are kept from the same read, so the QA report does
    not read the capture again after the call timeline has."""
    if rec.archive is None:
        raise RawcoreError("the recording is closed")
    with rec.archive.open_buffer(seg.capture) as buf:
        cols = _core.capture_columns(buf)
    facts = capture_facts(rec, seg)
    if facts.gaps is None:
        gaps = _arrival_gaps(cols["arrival_ms"], facts.start_unix_ms)
        gaps.flags.writeable = False
        facts.gaps = gaps
    return cols


def arrival_gaps(rec: Recording, seg: Segment) -> npt.NDArray[np.float64]:
    """Stretches (Unix ms, [start, end] rows) with no packet of `seg`'s capture for longer than
    GAP_MS or 3 packet intervals: DTX, loss or pauses. Read once, then kept."""
    facts = capture_facts(rec, seg)
    if facts.gaps is None:
        read_columns(rec, seg)
    assert facts.gaps is not None
    return facts.gaps


def _arrival_gaps(arrival_ms: npt.NDArray[Any], start_unix_ms: float) -> npt.NDArray[np.float64]:
    arrival = np.sort(arrival_ms.astype(np.float64)) + start_unix_ms
    if len(arrival) < 2:
        return np.zeros((0, 2), dtype=np.float64)
    d = np.diff(arrival)
    # Low frame rates (a 5 fps screen share) space packets further apart than speech does.
    spaced = d[d > 0]
    limit = max(GAP_MS, 3 * float(np.median(spaced))) if len(spaced) else GAP_MS
    at = np.flatnonzero(d > limit)
    return np.column_stack([arrival[at], arrival[at + 1]])


def _facts(report: Any, ssrc: int | None) -> CaptureFacts:
    srs = [s for s in report.sender_reports if s.ssrc == ssrc]
    facts = CaptureFacts(
        start_unix_ms=report.header.start_unix_us / 1000.0,
        sr_arrival_ms=np.array([s.arrival_ms for s in srs], dtype=np.int64),
        sr_rtp_ts=np.array([s.rtp_ts for s in srs], dtype=np.int64),
        sr_ntp_unix_ms=np.array([s.ntp_unix_ms for s in srs], dtype=np.float64),
        cname=next((name for s, name in report.cnames if s == ssrc), None),
    )
    for a in (facts.sr_arrival_ms, facts.sr_rtp_ts, facts.sr_ntp_unix_ms):
        a.flags.writeable = False  # shared by every timeline fit of the recording
    return facts


def _kind_from_track_type(track_type: str) -> Kind:
    return "audio" if track_type.endswith("AUDIO") else "video"


def _read_sdp(archive: Archive, name: str | None, warnings: list[str]) -> _SdpInfo:
    empty = _SdpInfo(None, (), (), {}, {})
    if name is None:
        return empty
    try:
        text = archive.read_bytes(name).decode("utf-8", errors="replace")
        sdp = _core.parse_sdp(text)
    except SdpError as exc:
        warnings.append(f"{name}: {exc}; codec and clock rate come from the metadata")
        return empty
    rtx: list[tuple[int, int]] = []
    rates: list[tuple[int, int]] = []
    codecs: dict[int, str] = {}
    channels: dict[int, int] = {}
    extmaps: list[tuple[int, str]] = []
    kind: Kind | None = None
    for media in sdp.media:
        extmaps.extend((e.id, e.uri) for e in media.extmaps)
        if kind is None and media.kind in ("audio", "video"):
            kind = "audio" if media.kind == "audio" else "video"
        rtx.extend(media.rtx)
        for rtpmap in media.rtpmaps:
            rates.append((rtpmap.payload_type, rtpmap.clock_rate))
            codecs[rtpmap.payload_type] = rtpmap.encoding.lower()
            if rtpmap.channels is not None:
                channels[rtpmap.payload_type] = rtpmap.channels
    return _SdpInfo(kind, tuple(rtx), tuple(rates), codecs, channels, tuple(extmaps))


def _analyse(archive: Archive, cap: _Capture, sdp: _SdpInfo) -> _Analysis:
    with archive.open_buffer(cap.name) as buf:
        try:
            report = _core.analyze_capture(
                buf, rtx_apt=list(sdp.rtx_apt), clock_rates=list(sdp.clock_rates)
            )
        except CaptureError as exc:
            raise CaptureError(f"{cap.name}: {exc}") from None
    warnings = [f"{cap.name}: {msg} (byte {off})" for off, msg in report.warnings]
    media = [s for s in report.streams if not s.is_rtx and s.packets > s.padding_only]
    # Summed in one pass: a hostile capture can hold tens of thousands of SSRCs, and adding
    # TrackStats one stream at a time would copy the growing SSRC tuple every time.
    jitters = [s.jitter_ms for s in media if s.jitter_ms is not None]
    stats = TrackStats(
        packets=sum(s.packets - s.duplicates for s in media),
        received=sum(s.packets for s in media),
        bytes=sum(s.bytes for s in media),
        expected=sum(s.expected for s in media),
        lost=sum(s.lost for s in media),
        recovered_rtx=sum(s.recovered_rtx for s in media),
        duplicates=sum(s.duplicates for s in media),
        reordered=sum(s.reordered for s in media),
        late=sum(s.late for s in media),
        padding_only=sum(s.padding_only for s in media),
        sender_reports=sum(s.sender_reports for s in media),
        jitter_ms=max(jitters) if jitters else None,
        ssrcs=tuple(dict.fromkeys(s.ssrc for s in media)),
    )
    if not media:
        warnings.append(f"{cap.name}: no RTP media packets")
    main = max(media, key=lambda s: s.packets, default=None)
    codec = None
    clock_rate = None
    payload_type = None
    if main is not None:
        payload_type = main.payload_type
        enc = sdp.codecs.get(main.payload_type)
        codec = _CODEC_NAMES.get(enc, enc) if enc else None
        clock_rate = main.clock_rate
        if enc is None and sdp.codecs:
            warnings.append(
                f"{cap.name}: payload type {main.payload_type} is not in the SDP "
                f"(which maps {', '.join(map(str, sorted(sdp.codecs)))}); codec from the metadata"
            )
    start_ms = report.header.start_unix_us // 1000
    first = min((s.first_arrival_ms for s in media), default=None)
    last = max((s.last_arrival_ms for s in media), default=None)
    return _Analysis(
        codec=codec,
        clock_rate=clock_rate,
        payload_type=payload_type,
        channels=None if payload_type is None else sdp.channels.get(payload_type),
        kind=sdp.kind,
        stats=stats,
        first_arrival_unix_ms=None if first is None else start_ms + first,
        last_arrival_unix_ms=None if last is None else start_ms + last,
        warnings=tuple(warnings),
        facts=_facts(report, media[0].ssrc if media else None),
        extmaps=sdp.extmaps,
    )


def _find_captures(archive: Archive) -> tuple[list[_Capture], list[str]]:
    names = {m.name: m.size for m in archive.members()}
    captures = []
    for name, size in names.items():
        if not name.endswith(CAPTURE_SUFFIX):
            continue
        directory, filename = posixpath.split(name)
        base = filename[: -len(CAPTURE_SUFFIX)]
        sdp = posixpath.join(directory, base + ".sdp")
        captures.append(_Capture(name, directory, base, sdp if sdp in names else None, size))
    metadata = sorted(n for n in names if is_metadata_name(posixpath.basename(n)))
    captures.sort(key=lambda c: c.name)
    return captures, metadata


def _infer_ids(cap: _Capture) -> tuple[str, str]:
    """Participant and session from `<user>/<session>/<base>.rtpdump` (any top folders)."""
    parts = [p for p in cap.directory.split("/") if p]
    session = parts[-1] if parts else "session"
    participant = parts[-2] if len(parts) >= 2 else session
    return participant, session


def _infer_track_type(cap: _Capture, kind: Kind | None) -> str:
    lowered = cap.base.lower()
    screen = "screen" in lowered or "share" in lowered
    if kind is None:
        kind = "video" if "video" in lowered or "screen" in lowered else "audio"
    if screen:
        return "TRACK_TYPE_SCREEN_SHARE_AUDIO" if kind == "audio" else "TRACK_TYPE_SCREEN_SHARE"
    return "TRACK_TYPE_AUDIO" if kind == "audio" else "TRACK_TYPE_VIDEO"


def _match_segment(
    seg: SegmentMetadata,
    meta_dir: str,
    by_dir_base: dict[tuple[str, str], _Capture],
    by_base: dict[str, list[_Capture]],
) -> _Capture | None:
    """Exact base-name match: the metadata's own folder first, else a unique match anywhere."""
    base = seg.base_filename
    if base.endswith(CAPTURE_SUFFIX):
        base = base[: -len(CAPTURE_SUFFIX)]
    found = by_dir_base.get((meta_dir, base))
    if found is not None:
        return found
    candidates = by_base.get(base, [])
    return candidates[0] if len(candidates) == 1 else None


@dataclass
class _Draft:
    participant_id: str
    session_id: str
    track_id: str
    track_type: str
    pieces: list[tuple[_Capture, SegmentMetadata | None]]


def open_recording(
    source: str | os.PathLike[str],
    *,
    s3_endpoint: str | None = None,
    cache_dir: Path | None = None,
    limits: Limits | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Recording:
    """Open a raw recording (directory, ZIP, tar/tar.gz, `s3://` or presigned URL).

    Every capture is analysed once. Raises a `RawcoreError` subclass with a one-line message
    when the source cannot be read; problems with single captures become `warnings`.
    """
    archive = open_archive(
        source, cache_dir=cache_dir, limits=limits or Limits(), s3_endpoint=s3_endpoint
    )
    try:
        return _build(str(source), archive, workers, progress)
    except BaseException:
        archive.close()
        raise


def _build(
    source: str,
    archive: Archive,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> Recording:
    warnings: list[str] = []
    captures, metadata_names = _find_captures(archive)
    if not captures:
        raise InputError(f"{source}: no .rtpdump captures found in the recording")

    sessions_meta: list[SessionMetadata] = []
    for name in metadata_names:
        try:
            sessions_meta.append(parse_session_metadata(archive.read_bytes(name), name))
        except MetadataError as exc:
            warnings.append(f"{exc}; its captures are inferred from the tree")

    by_dir_base = {(c.directory, c.base): c for c in captures}
    by_base: dict[str, list[_Capture]] = {}
    for c in captures:
        by_base.setdefault(c.base, []).append(c)

    drafts: dict[tuple[str, str, str], _Draft] = {}
    claimed: set[str] = set()
    for meta in sessions_meta:
        meta_dir = posixpath.dirname(meta.path)
        for seg in meta.segments:
            cap = _match_segment(seg, meta_dir, by_dir_base, by_base)
            if cap is None:
                warnings.append(
                    f"{meta.path}: segment {seg.base_filename!r} has no capture; skipped"
                )
                continue
            if cap.name in claimed:
                warnings.append(f"{meta.path}: {cap.name} is claimed twice; first claim kept")
                continue
            claimed.add(cap.name)
            inferred_user, inferred_session = _infer_ids(cap)
            participant = meta.participant_id or inferred_user
            session = meta.user_session_id or inferred_session
            track_type = seg.track_type or _infer_track_type(cap, None)
            track_id = seg.track_id or f"{participant}/{session}/{cap.base}"
            key = (participant, session, track_id)
            draft = drafts.setdefault(key, _Draft(participant, session, track_id, track_type, []))
            draft.pieces.append((cap, seg))

    unclaimed = [c for c in captures if c.name not in claimed]
    if unclaimed:
        if sessions_meta:
            warnings.append(
                f"{len(unclaimed)} capture(s) not named by any timing metadata; "
                "inferred from the tree"
            )
        else:
            warnings.append(
                "no timing metadata found; participants, sessions and tracks are inferred "
                "from folder and file names, times from capture arrival times"
            )

    # Analyse every capture once, in parallel: the core releases the GIL.
    sdp_infos = {c.name: _read_sdp(archive, c.sdp, warnings) for c in captures}
    for c in captures:
        if c.sdp is None:
            warnings.append(f"{c.name}: no SDP beside it; codec and clock rate unknown")
    analyses: dict[str, _Analysis] = {}
    done = 0

    def run(cap: _Capture) -> tuple[str, _Analysis | RawcoreError]:
        try:
            return cap.name, _analyse(archive, cap, sdp_infos[cap.name])
        except RawcoreError as exc:
            return cap.name, exc

    failed: set[str] = set()
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 2)) as pool:
        for name, result in pool.map(run, captures):
            done += 1
            if progress is not None:
                progress(done, len(captures))
            if isinstance(result, RawcoreError):
                warnings.append(f"{result}; capture skipped")
                failed.add(name)
            else:
                analyses[name] = result
                warnings.extend(result.warnings)

    for cap in unclaimed:
        participant, session = _infer_ids(cap)
        analysis = analyses.get(cap.name)
        track_type = _infer_track_type(cap, analysis.kind if analysis else None)
        track_id = f"{participant}/{session}/{cap.base}"
        drafts[(participant, session, track_id)] = _Draft(
            participant, session, track_id, track_type, [(cap, None)]
        )

    call = _call_fields(sessions_meta)
    participants = _assemble(drafts, analyses, failed, warnings)
    if not participants:
        raise InputError(f"{source}: none of the captures could be read")
    if sessions_meta and not unclaimed:
        origin: Literal["metadata", "inferred", "mixed"] = "metadata"
    elif sessions_meta:
        origin = "mixed"
    else:
        origin = "inferred"
    rec = Recording(
        source=source,
        call_type=call[0],
        call_id=call[1],
        call_session_id=call[2],
        call_start_unix_ms=call[3],
        participants=participants,
        metadata_source=origin,
        warnings=warnings,
        archive=archive,
    )
    for track in rec.tracks:
        object.__setattr__(track, "recording", rec)  # frozen: the back-reference is set once
        for segment in track.segments:
            rec.capture_cache[segment.capture] = analyses[segment.capture].facts
    return rec


def _call_fields(
    metas: Sequence[SessionMetadata],
) -> tuple[str | None, str | None, str | None, int | None]:
    def first(values: Iterator[str | None]) -> str | None:
        return next((v for v in values if v), None)

    starts = [m.call_start_unix_ms for m in metas if m.call_start_unix_ms is not None]
    return (
        first(m.call_type for m in metas),
        first(m.call_id for m in metas),
        first(m.call_session_id for m in metas),
        min(starts) if starts else None,
    )


_AUDIO_CODECS = frozenset({"opus", "pcmu", "pcma", "g722", "red"})
_VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "av1"})


def _segment_of(
    cap: _Capture,
    meta: SegmentMetadata | None,
    analysis: _Analysis,
    kind: Kind,
    warnings: list[str],
) -> Segment:
    start = analysis.first_arrival_unix_ms
    end = analysis.last_arrival_unix_ms
    if meta is not None and meta.first_rtp_unix_timestamp is not None:
        start = meta.first_rtp_unix_timestamp
    if meta is not None and meta.last_rtp_unix_timestamp is not None:
        end = meta.last_rtp_unix_timestamp
    codec = analysis.codec
    clock_rate = analysis.clock_rate
    # An SDP that names a video codec for an audio track (or the reverse) contradicts the
    # metadata's track type; the metadata knows what the recorder captured, so it wins.
    contradicts = _VIDEO_CODECS if kind == "audio" else _AUDIO_CODECS
    if codec in contradicts:
        fallback = meta.codec if meta is not None and meta.codec not in contradicts else None
        warnings.append(
            f"{cap.name}: the SDP says {codec}, but the metadata says this is {kind}; "
            f"codec {fallback or 'unknown'} (from the metadata) used instead"
        )
        codec, clock_rate = fallback, None
    codec = codec or (meta.codec if meta else None)
    return Segment(
        base_filename=cap.base,
        capture=cap.name,
        sdp=cap.sdp,
        codec=codec,
        clock_rate=clock_rate,
        start_unix_ms=start,
        end_unix_ms=end,
        stats=analysis.stats,
        metadata=meta,
        capture_size=cap.size,
        payload_type=analysis.payload_type,
        channels=analysis.channels,
        extmaps=analysis.extmaps,
    )


def _assemble(
    drafts: dict[tuple[str, str, str], _Draft],
    analyses: dict[str, _Analysis],
    failed: set[str],
    warnings: list[str],
) -> tuple[Participant, ...]:
    tracks_by_session: dict[tuple[str, str], list[Track]] = {}
    for draft in drafts.values():
        kind = _kind_from_track_type(draft.track_type)
        segments = [
            _segment_of(cap, meta, analyses[cap.name], kind, warnings)
            for cap, meta in draft.pieces
            if cap.name not in failed
        ]
        if not segments:
            continue
        segments.sort(key=lambda s: (s.start_unix_ms or 0, s.base_filename))
        track = Track(
            track_id=draft.track_id,
            kind=kind,
            track_type=draft.track_type,
            participant_id=draft.participant_id,
            session_id=draft.session_id,
            segments=tuple(segments),
        )
        tracks_by_session.setdefault((draft.participant_id, draft.session_id), []).append(track)

    sessions_by_user: dict[str, list[Session]] = {}
    for (user, session_id), tracks in tracks_by_session.items():
        tracks.sort(key=lambda t: (t.kind, t.screenshare, t.start_unix_ms or 0, t.track_id))
        sessions_by_user.setdefault(user, []).append(Session(session_id, user, tuple(tracks)))
    participants = []
    for user, sessions in sessions_by_user.items():
        sessions.sort(key=lambda s: (s.start_unix_ms or 0, s.session_id))
        participants.append(Participant(user, tuple(sessions)))
    participants.sort(
        key=lambda p: (min((s.start_unix_ms or 0) for s in p.sessions), p.participant_id)
    )
    return tuple(participants)
