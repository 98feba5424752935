"""Opening a recording: captures matched to their timing metadata, each analysed once.

A raw recording is a tree of captures (`<user>/<session>/<base>.rtpdump` + `<base>.sdp`) with
timing metadata per session. `open_recording` matches every capture to its metadata segment by
exact base name, analyses each capture once in the Rust core (in parallel, GIL released:
`rawcore.recording.reading`, which a caller may start early with `start_reading` and hand to
`recording_from`), and builds the frozen model (`rawcore.recording.model`). Without metadata
it infers the same structure from the tree and says so in `Recording.warnings`.

What later stages need from a capture beyond its `Segment` (Sender Reports, CNAME) is kept
small on the `Recording` (`capture_cache`), so no stage analyses a capture again.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from rawcore import _core
from rawcore.errors import InputError, MetadataError, RawcoreError
from rawcore.recording.metadata import (
    SegmentMetadata,
    SessionMetadata,
    is_metadata_name,
    parse_session_metadata,
)
from rawcore.recording.model import (
    CaptureFacts,
    Kind,
    Participant,
    Recording,
    Segment,
    Session,
    Track,
    TrackStats,
)
from rawcore.recording.reading import CAPTURE_SUFFIX, CaptureFile, Reading, SdpInfo, start_reading
from rawcore.source.archive import Limits
from rawcore.source.captures import RtpMapping

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


class _Analysis(NamedTuple):
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
    ssrc: int | None = None
    opus_stereo: bool = False


def _facts(
    report: _core.CaptureReport, ssrc: int | None, stream: _core.StreamColumns | None
) -> CaptureFacts:
    srs = [s for s in report.sender_reports if s.ssrc == ssrc]
    # Tuples: shared by every timeline fit of the recording, and no NumPy for list-tracks.
    return CaptureFacts(
        start_unix_ms=report.header.start_unix_us / 1000.0,
        sr_arrival_ms=tuple(s.arrival_ms for s in srs),
        sr_rtp_ts=tuple(s.rtp_ts for s in srs),
        sr_ntp_unix_ms=tuple(s.ntp_unix_ms for s in srs),
        cname=next((name for s, name in report.cnames if s == ssrc), None),
        gaps=None if stream is None else tuple(stream.gaps),
        stream=stream,
    )


def _kind_from_track_type(track_type: str) -> Kind:
    return "audio" if track_type.endswith("AUDIO") else "video"


def _summarise(
    cap: CaptureFile,
    sdp: SdpInfo,
    report: _core.CaptureReport,
    stream: _core.StreamColumns | None,
) -> _Analysis:
    """What the model keeps of a capture's analysis."""
    warnings = [f"{cap.name}: {msg} (byte {off})" for off, msg in report.warnings]
    media = [s for s in report.streams if not s.is_rtx and s.packets > s.padding_only]
    primary = [] if report.primary_ssrc is None else [report.primary_ssrc]
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
        # The track's own stream first: later stages (the timeline, the QA gaps) follow it.
        ssrcs=tuple(dict.fromkeys([*primary, *(s.ssrc for s in media)])),
    )
    if not media:
        warnings.append(f"{cap.name}: no RTP media packets")
    # The core's rule for which stream is the track (extraction follows the same one).
    main = next((s for s in media if s.ssrc == report.primary_ssrc), None)
    if main is None and media:  # the core counted no media packet where analysis did
        main = max(media, key=lambda s: s.packets)
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
        facts=_facts(report, report.primary_ssrc, stream),
        extmaps=sdp.extmaps,
        ssrc=report.primary_ssrc,
        opus_stereo=report.primary_opus_stereo,
    )


def _infer_ids(cap: CaptureFile) -> tuple[str, str]:
    """Participant and session from `<user>/<session>/<base>.rtpdump` (any top folders)."""
    parts = [p for p in cap.directory.split("/") if p]
    session = parts[-1] if parts else "session"
    participant = parts[-2] if len(parts) >= 2 else session
    return participant, session


def _infer_track_type(cap: CaptureFile, kind: Kind | None) -> str:
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
    by_dir_base: dict[tuple[str, str], CaptureFile],
    by_base: dict[str, list[CaptureFile]],
) -> CaptureFile | None:
    """Exact base-name match: the metadata's own folder first, else a unique match anywhere."""
    base = seg.base_filename
    if base.endswith(CAPTURE_SUFFIX):
        base = base[: -len(CAPTURE_SUFFIX)]
    found = by_dir_base.get((meta_dir, base))
    if found is not None:
        return found
    candidates = by_base.get(base, [])
    return candidates[0] if len(candidates) == 1 else None


class _Draft(NamedTuple):
    participant_id: str
    session_id: str
    track_id: str
    track_type: str
    pieces: list[tuple[CaptureFile, SegmentMetadata | None]]


def open_recording(
    source: str | os.PathLike[str],
    *,
    s3_endpoint: str | None = None,
    cache_dir: Path | None = None,
    limits: Limits | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    payload_types: Mapping[int, RtpMapping] | None = None,
    sdp: str | os.PathLike[str] | None = None,
    streams: bool = False,
) -> Recording:
    """Open a raw recording (directory, ZIP, tar/tar.gz, `s3://` or presigned URL), or a
    pcap, pcapng or Janus `.mjr` file or folder of them, whose payload types `payload_types`
    (e.g. ``{111: RtpMapping("opus", 48000, 2)}``) or an `sdp` file name.

    Every capture is analysed once. With `streams` (for a command that builds the call
    timeline next) the same pass also reads the stream the timeline places and its arrival
    gaps (`_core.analyze_capture_stream`; the stream's 12 bytes a packet are kept until the
    timeline has read them), so no capture is read a second time for the timeline. Raises a
    `RawcoreError` subclass with a one-line message when the source cannot be read; problems
    with single captures become `warnings`.
    """
    reading = start_reading(
        source,
        s3_endpoint=s3_endpoint,
        cache_dir=cache_dir,
        limits=limits,
        workers=workers,
        payload_types=payload_types,
        sdp=sdp,
        streams=streams,
    )
    return recording_from(reading, progress=progress)


def recording_from(
    reading: Reading, *, progress: Callable[[int, int], None] | None = None
) -> Recording:
    """The recording whose captures `reading` analyses (`start_reading` takes
    `open_recording`'s arguments): its captures matched to their metadata, their analyses
    collected in order, the model built. The recording owns the reading's archive from then
    on; if this raises, the reading is closed."""
    try:
        return _build(reading, progress)
    except BaseException:
        reading.close()
        raise


def _build(reading: Reading, progress: Callable[[int, int], None] | None) -> Recording:
    source, archive, captures = reading.source, reading.archive, reading.captures
    warnings: list[str] = list(archive.notes)
    if not captures and archive.kind == "capture":
        raise InputError(f"{source}: no RTP streams found in the capture")
    if not captures:
        raise InputError(f"{source}: no .rtpdump captures found in the recording")

    # The metadata is read while the core analyses the captures.
    sessions_meta: list[SessionMetadata] = []
    for name in sorted(n for n in reading.members if is_metadata_name(posixpath.basename(n))):
        try:
            meta = parse_session_metadata(archive.read_bytes(name), name)
        except MetadataError as exc:
            warnings.append(f"{exc}; its captures are inferred from the tree")
        else:
            sessions_meta.append(meta)
            warnings.extend(meta.warnings)

    by_dir_base = {(c.directory, c.base): c for c in captures}
    by_base: dict[str, list[CaptureFile]] = {}
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
        elif archive.kind != "capture":  # a capture file has no metadata by nature
            warnings.append(
                "no timing metadata found; participants, sessions and tracks are inferred "
                "from folder and file names, times from capture arrival times"
            )

    # Every capture analysed once, in parallel (the core releases the GIL), since
    # `start_reading`.
    if reading.sdp_error is not None:
        raise reading.sdp_error
    warnings.extend(reading.sdp_warnings)
    for c in captures:
        if c.sdp is None:
            warnings.append(f"{c.name}: no SDP beside it; codec and clock rate unknown")
    analyses: dict[str, _Analysis] = {}
    failed: set[str] = set()
    for done, (cap, result) in enumerate(reading.results(), 1):
        if progress is not None:
            progress(done, len(captures))
        if isinstance(result, RawcoreError):
            warnings.append(f"{result}; capture skipped")
            failed.add(cap.name)
        else:
            summary = _summarise(cap, reading.sdp[cap.name], *result)
            analyses[cap.name] = summary
            warnings.extend(summary.warnings)

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
    cap: CaptureFile,
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
        ssrc=analysis.ssrc,
        opus_stereo=analysis.opus_stereo,
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
