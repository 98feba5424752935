"""list-tracks output: the stable JSON schema, the table, and the id lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from rawcore.recording.model import Recording, Track

LIST_TRACKS_SCHEMA = "rawcore.list-tracks/1"


def select_tracks(tracks: Sequence[Track], track_type: str) -> list[Track]:
    if track_type == "all":
        return list(tracks)
    if track_type == "screenshare":
        return [t for t in tracks if t.screenshare]
    return [t for t in tracks if t.kind == track_type]


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def track_json(track: Track) -> dict[str, Any]:
    """One track in the stable list-tracks JSON schema (documented in the README)."""
    stats = track.stats
    return {
        "participant_id": track.participant_id,
        "session_id": track.session_id,
        "track_id": track.track_id,
        "kind": track.kind,
        "track_type": track.track_type,
        "screenshare": track.screenshare,
        "codec": track.codec,
        "segment_count": len(track.segments),
        "declared_size": None if track.declared_size is None else list(track.declared_size),
        "start_unix_ms": track.start_unix_ms,
        "end_unix_ms": track.end_unix_ms,
        "start": _iso(track.start_unix_ms),
        "end": _iso(track.end_unix_ms),
        "duration_ms": track.duration_ms,
        "packets": stats.packets,
        "bytes": stats.bytes,
        "expected_packets": stats.expected,
        "lost_packets": stats.lost,
        "loss_pct": round(stats.loss_pct, 3),
        "recovered_rtx": stats.recovered_rtx,
        "duplicates": stats.duplicates,
        "reordered": stats.reordered,
        "late": stats.late,
        "jitter_ms": None if stats.jitter_ms is None else round(stats.jitter_ms, 3),
        "sender_reports": stats.sender_reports,
        "ssrcs": list(stats.ssrcs),
        "segments": [
            {
                "base_filename": s.base_filename,
                "capture": s.capture,
                "sdp": s.sdp,
                "codec": s.codec,
                "clock_rate": s.clock_rate,
                "start_unix_ms": s.start_unix_ms,
                "end_unix_ms": s.end_unix_ms,
                "duration_ms": s.duration_ms,
                "packets": s.stats.packets,
                "lost_packets": s.stats.lost,
                "capture_bytes": s.capture_size,
            }
            for s in track.segments
        ],
    }


def recording_json(rec: Recording, tracks: Sequence[Track]) -> dict[str, Any]:
    users = list(dict.fromkeys(t.participant_id for t in tracks))
    sessions = list(dict.fromkeys((t.participant_id, t.session_id) for t in tracks))
    return {
        "schema": LIST_TRACKS_SCHEMA,
        "source": rec.source,
        "metadata_source": rec.metadata_source,
        "call": rec.call_json(),
        "participant_count": len(users),
        "session_count": len(sessions),
        "track_count": len(tracks),
        "tracks": [track_json(t) for t in tracks],
        "warnings": list(rec.warnings),
    }


def _fmt_duration(ms: int) -> str:
    s, ms = divmod(ms, 1000)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}.{ms // 100}" if h else f"{m:02d}:{s:02d}.{ms:03d}"


def table(rec: Recording, tracks: Sequence[Track], out: TextIO) -> None:
    base = rec.start_unix_ms or 0
    header = (
        "USER",
        "SESSION",
        "TRACK",
        "TYPE",
        "CODEC",
        "SCREEN",
        "SEGS",
        "START",
        "DURATION",
        "PACKETS",
        "LOSS%",
        "JITTER",
    )
    rows = []
    for t in tracks:
        st = t.stats
        rows.append(
            (
                t.participant_id,
                t.session_id,
                t.track_id,
                t.kind,
                t.codec or "?",
                "yes" if t.screenshare else "no",
                str(len(t.segments)),
                "+" + _fmt_duration(max(0, (t.start_unix_ms or base) - base)),
                _fmt_duration(t.duration_ms),
                str(st.packets),
                f"{st.loss_pct:.2f}",
                "-" if st.jitter_ms is None else f"{st.jitter_ms:.1f}ms",
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    numeric = {6, 9, 10, 11}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    call = rec.call_id or "(unknown call)"
    users = len({t.participant_id for t in tracks})
    sessions = len({(t.participant_id, t.session_id) for t in tracks})
    out.write(
        f"Call {rec.call_type or '?'}:{call}  started {_iso(rec.start_unix_ms) or '?'}  "
        f"{users} participant(s), {sessions} session(s), {len(tracks)} track(s)\n\n"
    )
    out.write(line(header) + "\n")
    for r in rows:
        out.write(line(r) + "\n")
