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
        (doc(segments=[]), "'segments' is not an object"),
        (json.dumps({"call_id": "c"}).encode(), "no 'segments'"),
    ],
)
def test_unreadable_documents_raise_one_line_errors_naming_the_file(
    data: bytes, message: str
) -> None:
    with pytest.raises(MetadataError, match=message) as info:
        parse_session_metadata(data, "user_1/session_1/timing_metadata.json")
    assert "\n" not in str(info.value)
    assert "timing_metadata.json" in str(info.value)


@pytest.mark.parametrize(
    ("data", "field", "kept"),
    [
        (doc(segments={"audio": {}}), "segments.audio", 0),
        (doc(segments={"audio": [{"codec": "opus"}]}), "no base_filename", 0),
        (doc(segments={"video": ["audio_1"]}), "segments.video[0]: not an object", 0),
        (
            doc(segments={"audio": [dict(SEGMENT, track_type="TRACK_TYPE_X")]}),
            "segments.audio[0].track_type",
            1,
        ),
        (
            doc(segments={"audio": [dict(SEGMENT, first_rtp_unix_timestamp="soon")]}),
            "segments.audio[0].first_rtp_unix_timestamp",
            1,
        ),
        (
            doc(segments={"video": [dict(SEGMENT, max_frame_dimension="big")]}),
            "segments.video[0].max_frame_dimension",
            1,
        ),
        (doc(call_id=["c"]), "call_id", 1),
        (doc(call_start_time="yesterday"), "call_start_time", 1),
    ],
)
def test_an_odd_field_is_ignored_with_one_warning_and_the_rest_counts(
    data: bytes, field: str, kept: int
) -> None:
    meta = parse_session_metadata(data, "user_1/session_1/timing_metadata.json")
    (warning,) = meta.warnings
    assert field in warning and "timing_metadata.json" in warning and "\n" not in warning
    assert len(meta.segments) == kept
    # The rest of the file still counts.
    assert meta.participant_id == "user_1" and meta.user_session_id == "session_1"


# --- as Stream's recorder writes it (Go structs through encoding/json) ------------------

GO_VIDEO = {
    "base_filename": "video_1",
    "codec": "video/VP8",
    "track_id": "trk-v",
    "track_type": "TRACK_TYPE_VIDEO",
    "first_rtp_rtp_timestamp": 0,  # no omitempty: written even when zero
    "first_rtp_unix_timestamp": 1772359200040,
    "last_rtp_unix_timestamp": 1772359210040,
    "max_frame_dimension": {"width": 1280, "height": 720},
}


@pytest.mark.parametrize(
    ("case", "overrides", "size", "longest"),
    [
        ("object with both keys", {}, (1280, 720), 1280),
        ("field left out (omitempty)", {"max_frame_dimension": None}, None, None),
        ("height zero, left out", {"max_frame_dimension": {"width": 640}}, None, 640),
        ("width zero, left out", {"max_frame_dimension": {"height": 480}}, None, 480),
        ("both zero: an empty object", {"max_frame_dimension": {}}, None, None),
        ("an older writer's integer", {"max_frame_dimension": 720}, None, 720),
    ],
)
def test_max_frame_dimension_as_written(
    case: str, overrides: dict[str, object], size: tuple[int, int] | None, longest: int | None
) -> None:
    segment = {k: v for k, v in {**GO_VIDEO, **overrides}.items() if v is not None}
    meta = parse_session_metadata(doc(segments={"audio": None, "video": [segment]}), "m.json")
    assert meta.warnings == (), case
    (seg,) = meta.segments
    dim = seg.max_frame_dimension
    assert (None if dim is None else dim.size) == size, case
    assert (None if dim is None else dim.longest_side) == longest, case


def test_go_zero_values_mean_unknown() -> None:
    segment = dict(GO_VIDEO, first_rtp_unix_timestamp=0)
    data = doc(call_start_time="0001-01-01T00:00:00Z", segments={"video": [segment]})
    meta = parse_session_metadata(data, "m.json")
    assert meta.warnings == ()
    assert meta.call_start_unix_ms is None
    (seg,) = meta.segments
    assert seg.first_rtp_unix_timestamp is None and seg.first_rtp_rtp_timestamp == 0
    assert seg.codec == "video/vp8"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-03-01T10:00:00Z", 1772359200000),
        ("2026-03-01T10:00:00.5Z", 1772359200500),
        ("2026-03-01T10:00:00.123999999Z", 1772359200123),  # truncated, as Go's UnixMilli
        ("2026-03-01T10:00:00.0019Z", 1772359200001),
    ],
)
def test_call_start_time_in_go_rfc3339_nano(text: str, ms: int) -> None:
    assert parse_time_ms(text, "m.json") == ms
