"""Timing metadata parsing: what is accepted, and the one-line error for what is not."""

from __future__ import annotations

import json

import pytest
from rawcore.errors import MetadataError
from rawcore.recording.metadata import is_metadata_name, parse_session_metadata, parse_time_ms

SEGMENT = {
    "base_filename": "audio_1",
    "codec": "OPUS",
    "track_id": "trk-1",
    "track_type": "TRACK_TYPE_AUDIO",
    "first_rtp_rtp_timestamp": 1000,
    "last_rtp_rtp_timestamp": 481000,
    "first_rtp_unix_timestamp": 1772359200000,
    "last_rtp_unix_timestamp": 1772359210000,
    "first_rtcp_rtp_timestamp": None,
    "first_key_frame_offset_ms": None,
}


def doc(**overrides: object) -> bytes:
    base: dict[str, object] = {
        "call_type": "default",
        "call_id": "call-1",
        "call_session_id": "cs-1",
        "call_start_time": "2026-03-01T10:00:00.000Z",
        "participant_id": "user_1",
        "user_session_id": "session_1",
        "segments": {"audio": [SEGMENT], "video": []},
    }
    base.update(overrides)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("timing_metadata.json", True),
        ("session_1_timing_metadata.json", True),
        ("timing_metadata.json.bak", False),
        ("metadata.json", False),
        ("xtiming_metadata.json", False),
    ],
)
def test_metadata_file_names(name: str, expected: bool) -> None:
    assert is_metadata_name(name) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T10:00:00.000Z", 1772359200000),
        ("2026-03-01T11:00:00.250+01:00", 1772359200250),
        (1772359200000, 1772359200000),
        (1772359200, 1772359200000),  # seconds are recognised by size
        ("1772359200000", 1772359200000),
        (None, None),
    ],
)
def test_call_start_time_forms(value: object, expected: int | None) -> None:
    assert parse_time_ms(value, "m.json") == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-03-01T10:00:00", True, [1]])
def test_call_start_time_rejects_non_times(value: object) -> None:
    with pytest.raises(MetadataError, match=r"m\.json"):
        parse_time_ms(value, "m.json")


def test_full_document_parses_with_codec_lowercased() -> None:
    meta = parse_session_metadata(doc(), "u/s/timing_metadata.json")
    assert meta.participant_id == "user_1"
    assert meta.user_session_id == "session_1"
    assert meta.call_start_unix_ms == 1772359200000
    (seg,) = meta.segments
    assert seg.codec == "opus"
    assert seg.first_rtp_unix_timestamp == 1772359200000
    assert seg.first_rtcp_rtp_timestamp is None


def test_missing_optional_fields_are_none() -> None:
    meta = parse_session_metadata(b'{"segments": {"audio": [{"base_filename": "a"}]}}', "m")
    assert meta.call_id is None and meta.call_start_unix_ms is None
    assert meta.segments[0].track_id is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (doc(segments=[]), "'segments' must be an object"),
        (doc(segments={"audio": {}}), r"segments\.audio must be a list"),
        (doc(segments={"audio": [{"codec": "opus"}]}), "without base_filename"),
        (doc(segments={"audio": [dict(SEGMENT, track_type="TRACK_TYPE_X")]}), "unknown track_type"),
        (
            doc(segments={"audio": [dict(SEGMENT, first_rtp_unix_timestamp="soon")]}),
            "must be an integer",
        ),
        (doc(segments={"video": ["audio_1"]}), "must be an object"),
    ],
)
def test_bad_documents_raise_one_line_errors_naming_the_file(data: bytes, message: str) -> None:
    with pytest.raises(MetadataError, match=message) as info:
        parse_session_metadata(data, "user_1/session_1/timing_metadata.json")
    assert "\n" not in str(info.value)
    assert "timing_metadata.json" in str(info.value)
