"""Timing metadata: the per-session JSON a raw recording carries beside its captures.

Parses `timing_metadata.json` / `*_timing_metadata.json` as Stream's recorder writes it (Go
structs serialised with `encoding/json`: `omitempty` fields absent when zero, other fields
present with their zero value, `call_start_time` in RFC 3339 with up to nanoseconds) and as
older writers did. Validation is per field: a field of an unexpected type or value is left out
with one warning naming it, and the rest of the file still counts. Only a file that cannot be
read at all (not JSON, not an object, no `segments`) raises `MetadataError`, and only that
session falls back to inference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rawcore.errors import MetadataError

TRACK_TYPES = (
    "TRACK_TYPE_AUDIO",
    "TRACK_TYPE_VIDEO",
    "TRACK_TYPE_SCREEN_SHARE",
    "TRACK_TYPE_SCREEN_SHARE_AUDIO",
)

#: Go's zero `time.Time`, which the recorder writes when it knows no call start.
_GO_ZERO_YEAR = 1


def is_metadata_name(filename: str) -> bool:
    """True for `timing_metadata.json` and `<anything>_timing_metadata.json`."""
    return filename == "timing_metadata.json" or filename.endswith("_timing_metadata.json")


@dataclass(frozen=True)
class FrameDimension:
    """The largest picture the recorder saw in a segment. Stream's recorder writes an object
    (`{"width": 1280, "height": 720}`, either key left out when zero); older writers wrote one
    integer, the longer side, which gives no width or height."""

    width: int | None = None
    height: int | None = None
    longest_side: int | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) when both are known."""
        return (self.width, self.height) if self.width and self.height else None


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
    max_frame_dimension: FrameDimension | None = None


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
    #: One line per field that was left out, naming the file and the field.
    warnings: tuple[str, ...] = ()

    @property
    def segments(self) -> tuple[SegmentMetadata, ...]:
        return self.audio + self.video


class _Ignored(Exception):
    """A field's value is unusable: the field is left out with a warning."""


_INT_FIELDS = (
    "first_rtp_rtp_timestamp",
    "last_rtp_rtp_timestamp",
    "first_rtcp_rtp_timestamp",
    "last_rtcp_rtp_timestamp",
    "first_key_frame_offset_ms",
)
#: Wall-clock fields: Go writes 0 for "unknown" where the field has no `omitempty`.
_TIME_FIELDS = (
    "first_rtp_unix_timestamp",
    "last_rtp_unix_timestamp",
    "first_rtcp_ntp_timestamp",
    "last_rtcp_ntp_timestamp",
)


def _as_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise _Ignored(f"expected a string, got {type(value).__name__}")


def _as_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Ignored("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise _Ignored(f"expected an integer, got {value!r:.40}")


def _as_time(value: object) -> int | None:
    ms = _as_int(value)
    return None if ms is None or ms <= 0 else ms


def _as_dimension(value: object) -> FrameDimension | None:
    if value is None:
        return None
    if isinstance(value, dict):
        width, height = _as_int(value.get("width")), _as_int(value.get("height"))
        if (width is not None and width < 0) or (height is not None and height < 0):
            raise _Ignored(f"negative size {value!r:.40}")
        if not width and not height:
            return None
        longest = max(width or 0, height or 0)
        return FrameDimension(width or None, height or None, longest)
    side = _as_int(value)  # an older writer's single integer
    if side is None or side <= 0:
        return None
    return FrameDimension(longest_side=side)


def _as_track_type(value: object) -> str | None:
    text = _as_str(value)
    if text is not None and text not in TRACK_TYPES:
        raise _Ignored(f"unknown track type {text!r:.40}")
    return text or None


def parse_time_ms(value: object, where: str) -> int | None:
    """Call start time as Unix ms, truncated as Go's `UnixMilli` truncates: RFC 3339 text, or
    Unix time in ms (or s, when it is small). Go's zero time means none."""
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
        from datetime import UTC, datetime, timedelta  # here: only time text needs it

        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MetadataError(f"{where}: call_start_time {value!r:.60} is not a time") from None
        if parsed.tzinfo is None:
            raise MetadataError(f"{where}: call_start_time {value!r:.60} has no time zone")
        if parsed.year == _GO_ZERO_YEAR:
            return None
        # Exact integer arithmetic: a float timestamp can land one millisecond short.
        return (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    raise MetadataError(f"{where}: call_start_time must be a string or a number")


def _segment(raw: object, where: str, warnings: list[str]) -> SegmentMetadata | None:
    if not isinstance(raw, dict):
        warnings.append(f"{where}: not an object; segment ignored")
        return None

    def field(key: str, convert: Any) -> Any:
        try:
            return convert(raw.get(key))
        except _Ignored as exc:
            warnings.append(f"{where}.{key}: {exc}; field ignored")
            return None

    base = field("base_filename", _as_str)
    if not base:
        warnings.append(f"{where}: no base_filename; segment ignored")
        return None
    return SegmentMetadata(
        base_filename=base,
        codec=(field("codec", _as_str) or "").lower() or None,
        track_id=field("track_id", _as_str) or None,
        track_type=field("track_type", _as_track_type),
        max_frame_dimension=field("max_frame_dimension", _as_dimension),
        **{key: field(key, _as_int) for key in _INT_FIELDS},
        **{key: field(key, _as_time) for key in _TIME_FIELDS},
    )


def parse_session_metadata(data: bytes, path: str) -> SessionMetadata:
    """Parse one timing metadata file; `path` names it in errors and warnings."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise MetadataError(f"{path}: expected a JSON object")
    segments = doc.get("segments")
    if not isinstance(segments, dict):
        what = "no 'segments'" if segments is None else "'segments' is not an object"
        raise MetadataError(f"{path}: {what} (expected 'audio' and 'video' lists)")
    warnings: list[str] = []
    parsed: dict[str, tuple[SegmentMetadata, ...]] = {}
    for kind in ("audio", "video"):
        items = segments.get(kind)
        if items is None:  # Go writes a nil slice as null
            items = []
        if not isinstance(items, list):
            warnings.append(f"{path}: segments.{kind}: expected a list; ignored")
            items = []
        found = (
            _segment(item, f"{path}: segments.{kind}[{i}]", warnings)
            for i, item in enumerate(items)
        )
        parsed[kind] = tuple(s for s in found if s is not None)

    def text(key: str) -> str | None:
        try:
            return _as_str(doc.get(key)) or None
        except _Ignored as exc:
            warnings.append(f"{path}: {key}: {exc}; field ignored")
            return None

    try:
        call_start = parse_time_ms(doc.get("call_start_time"), path)
    except MetadataError as exc:
        warnings.append(f"{exc}; field ignored")
        call_start = None
    return SessionMetadata(
        path=path,
        call_type=text("call_type"),
        call_id=text("call_id"),
        call_session_id=text("call_session_id"),
        call_start_unix_ms=call_start,
        participant_id=text("participant_id"),
        user_session_id=text("user_session_id"),
        audio=parsed["audio"],
        video=parsed["video"],
        warnings=tuple(warnings),
    )
