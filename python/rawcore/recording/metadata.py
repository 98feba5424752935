"""Timing metadata: the per-session JSON a raw recording carries beside its captures.

Parses `timing_metadata.json` / `*_timing_metadata.json` into frozen dataclasses. Fields the
recorder leaves out are `None`; anything of the wrong shape raises `MetadataError` naming the
file and the field, so one bad session never turns into a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rawcore.errors import MetadataError

TRACK_TYPES = (
    "TRACK_TYPE_AUDIO",
    "TRACK_TYPE_VIDEO",
    "TRACK_TYPE_SCREEN_SHARE",
    "TRACK_TYPE_SCREEN_SHARE_AUDIO",
)


def is_metadata_name(filename: str) -> bool:
    """True for `timing_metadata.json` and `<anything>_timing_metadata.json`."""
    return filename == "timing_metadata.json" or filename.endswith("_timing_metadata.json")


@dataclass(frozen=True)
class SegmentMetadata:
    """One capture as the recorder describes it."""

    base_filename: str
    codec: str | None
    track_id: str | None
    track_type: str | None
    first_rtp_rtp_timestamp: int | None = None
    last_rtp_rtp_timestamp: int | None = None
    first_rtp_unix_timestamp: int | None = None
    last_rtp_unix_timestamp: int | None = None
    first_rtcp_rtp_timestamp: int | None = None
    last_rtcp_rtp_timestamp: int | None = None
    first_rtcp_ntp_timestamp: int | None = None
    last_rtcp_ntp_timestamp: int | None = None
    first_key_frame_offset_ms: int | None = None
    max_frame_dimension: int | None = None


@dataclass(frozen=True)
class SessionMetadata:
    """The timing metadata of one participant session."""

    path: str
    call_type: str | None
    call_id: str | None
    call_session_id: str | None
    call_start_unix_ms: int | None
    participant_id: str | None
    user_session_id: str | None
    audio: tuple[SegmentMetadata, ...]
    video: tuple[SegmentMetadata, ...]

    @property
    def segments(self) -> tuple[SegmentMetadata, ...]:
        return self.audio + self.video


_INT_FIELDS = (
    "first_rtp_rtp_timestamp",
    "last_rtp_rtp_timestamp",
    "first_rtp_unix_timestamp",
    "last_rtp_unix_timestamp",
    "first_rtcp_rtp_timestamp",
    "last_rtcp_rtp_timestamp",
    "first_rtcp_ntp_timestamp",
    "last_rtcp_ntp_timestamp",
    "first_key_frame_offset_ms",
    "max_frame_dimension",
)


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise MetadataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")


def _opt_int(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise MetadataError(f"{where}: field {key!r} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise MetadataError(f"{where}: field {key!r} must be an integer, got {value!r:.40}")


def parse_time_ms(value: object, where: str) -> int | None:
    """Call start time: RFC 3339 text, or Unix time in ms (or s, when it is small)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise MetadataError(f"{where}: call_start_time must be a time, got a boolean")
    if isinstance(value, (int, float)):
        # Before 2001-09 in ms means the value was seconds.
        return int(value * 1000) if value < 1e12 else int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return parse_time_ms(int(text), where)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MetadataError(f"{where}: call_start_time {value!r:.60} is not a time") from None
        if parsed.tzinfo is None:
            raise MetadataError(f"{where}: call_start_time {value!r:.60} has no time zone")
        return round(parsed.timestamp() * 1000)
    raise MetadataError(f"{where}: call_start_time must be a string or a number")


def _segment(raw: object, where: str) -> SegmentMetadata:
    if not isinstance(raw, dict):
        raise MetadataError(f"{where}: a segment must be an object")
    base = _opt_str(raw, "base_filename", where)
    if not base:
        raise MetadataError(f"{where}: segment without base_filename")
    track_type = _opt_str(raw, "track_type", where)
    if track_type is not None and track_type not in TRACK_TYPES:
        raise MetadataError(f"{where}: unknown track_type {track_type!r}")
    ints = {key: _opt_int(raw, key, where) for key in _INT_FIELDS}
    return SegmentMetadata(
        base_filename=base,
        codec=(_opt_str(raw, "codec", where) or "").lower() or None,
        track_id=_opt_str(raw, "track_id", where),
        track_type=track_type,
        **ints,
    )


def parse_session_metadata(data: bytes, path: str) -> SessionMetadata:
    """Parse one timing metadata file; `path` names it in errors."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise MetadataError(f"{path}: expected a JSON object")
    segments = doc.get("segments")
    if segments is None:
        segments = {}
    if not isinstance(segments, dict):
        raise MetadataError(f"{path}: 'segments' must be an object with 'audio' and 'video'")
    parsed: dict[str, tuple[SegmentMetadata, ...]] = {}
    for kind in ("audio", "video"):
        items = segments.get(kind)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise MetadataError(f"{path}: segments.{kind} must be a list")
        parsed[kind] = tuple(
            _segment(item, f"{path}: segments.{kind}[{i}]") for i, item in enumerate(items)
        )
    return SessionMetadata(
        path=path,
        call_type=_opt_str(doc, "call_type", path),
        call_id=_opt_str(doc, "call_id", path),
        call_session_id=_opt_str(doc, "call_session_id", path),
        call_start_unix_ms=parse_time_ms(doc.get("call_start_time"), path),
        participant_id=_opt_str(doc, "participant_id", path),
        user_session_id=_opt_str(doc, "user_session_id", path),
        audio=parsed["audio"],
        video=parsed["video"],
    )
