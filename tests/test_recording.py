"""open_recording on GStreamer-made calls: structure, timing and packet stats vs ground truth."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import rawcore
from helpers.gst import gst_available
from helpers.recording import (
    Impairments,
    OpusSource,
    RecordingInfo,
    SessionSpec,
    TrackSpec,
    build_recording,
    multiparty_call,
    pack_targz,
    pack_zip,
)
from rawcore.errors import InputError, RawcoreError

pytestmark = pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed")


@pytest.fixture(scope="session")
def call(tmp_path_factory: pytest.TempPathFactory) -> RecordingInfo:
    return multiparty_call(tmp_path_factory.mktemp("call") / "rec", duration_s=6.0)


@pytest.fixture(scope="session")
def call_sources(call: RecordingInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("archives")
    return {
        "dir": call.root,
        "zip": pack_zip(call.root, out / "call.zip"),
        "tar.gz": pack_targz(call.root, out / "call.tar.gz"),
    }


@pytest.mark.parametrize("kind", ["dir", "zip", "tar.gz"])
def test_every_input_kind_yields_the_same_call(
    kind: str, call: RecordingInfo, call_sources: dict[str, Path]
) -> None:
    with rawcore.open_recording(call_sources[kind]) as rec:
        assert rec.metadata_source == "metadata"
        assert rec.warnings == []
        assert (rec.call_type, rec.call_id, rec.call_session_id) == ("default", "call-123", "cs-1")
        assert rec.call_start_unix_ms == round(call.call_start.timestamp() * 1000)
        assert [p.participant_id for p in rec.participants] == ["user_1", "user_2", "user_3"]
        user_1 = rec.participants[0]
        assert [s.session_id for s in user_1.sessions] == ["session_1", "session_2"]
        truth_ids = sorted(t.track_id for t in call.tracks())
        assert sorted(t.track_id for t in rec.tracks) == truth_ids


def test_tracks_match_ground_truth(call: RecordingInfo, call_sources: dict[str, Path]) -> None:
    with rawcore.open_recording(call_sources["zip"]) as rec:
        by_id = {t.track_id: t for t in rec.tracks}
        for truth in call.tracks():
            track = by_id[truth.track_id]
            where = f"{truth.participant_id}/{truth.session_id}/{truth.base_filename}"
            assert track.codec == truth.codec, where
            assert track.track_type == truth.track_type, where
            assert track.kind == ("audio" if truth.kind.endswith("audio") else "video"), where
            assert track.screenshare == truth.kind.startswith("screen_share"), where
            assert track.start_unix_ms == truth.first_arrival_unix_ms, where
            assert track.end_unix_ms == truth.last_arrival_unix_ms, where
            st = track.stats
            assert st.packets == truth.unique_packets, where
            assert st.lost == truth.lost, where
            assert st.duplicates == truth.duplicated, where
            assert st.ssrcs == (truth.ssrc,), where
            assert st.sender_reports == len(truth.sender_reports), where
            assert st.jitter_ms is not None and st.jitter_ms >= 0, where
            (segment,) = track.segments
            assert segment.clock_rate == truth.clock_rate, where


def test_seq_wrap_and_duplicates_are_not_counted_as_loss(call: RecordingInfo) -> None:
    truth = call.track("user_2", "audio_1")
    with rawcore.open_recording(call.root) as rec:
        track = next(t for t in rec.tracks if t.track_id == truth.track_id)
    assert truth.duplicated > 0
    assert track.stats.lost == 0
    assert track.stats.loss_pct == 0.0
    assert track.stats.expected == truth.packets_sent


def test_without_metadata_everything_is_inferred_and_said(tmp_path: Path) -> None:
    info = multiparty_call(tmp_path / "rec", duration_s=3.0, with_metadata=False)
    with rawcore.open_recording(info.root) as rec:
        assert rec.metadata_source == "inferred"
        assert any("no timing metadata" in w for w in rec.warnings)
        assert [p.participant_id for p in rec.participants] == ["user_1", "user_2", "user_3"]
        kinds = sorted((t.participant_id, t.kind, t.screenshare, t.codec) for t in rec.tracks)
        expected = sorted(
            (
                t.participant_id,
                "audio" if t.kind.endswith("audio") else "video",
                t.kind.startswith("screen_share"),
                t.codec,
            )
            for t in info.tracks()
        )
        assert kinds == expected
        for truth in info.tracks():
            track = next(
                t
                for t in rec.tracks
                if t.participant_id == truth.participant_id
                and t.session_id == truth.session_id
                and t.segments[0].base_filename == truth.base_filename
            )
            # No metadata: times come from the capture header plus arrival offsets.
            assert track.start_unix_ms == truth.first_arrival_unix_ms


def _opus_session(user: str, session: str, *bases: str) -> SessionSpec:
    return SessionSpec(
        user,
        session,
        [
            TrackSpec("audio", "opus", source=OpusSource(1.0), base_filename=b, track_id=f"t-{b}")
            for b in bases
        ],
    )


def test_segments_match_by_exact_base_name_never_by_prefix(tmp_path: Path) -> None:
    build_recording(tmp_path, [_opus_session("u", "s", "x_1", "x_10")])
    with rawcore.open_recording(tmp_path) as rec:
        assert rec.warnings == []
        by_id = {t.track_id: t for t in rec.tracks}
        assert by_id["t-x_1"].segments[0].base_filename == "x_1"
        assert by_id["t-x_10"].segments[0].base_filename == "x_10"


def test_metadata_naming_a_missing_capture_warns_and_keeps_the_rest(tmp_path: Path) -> None:
    info = build_recording(tmp_path, [_opus_session("u", "s", "a_1", "a_2")])
    gone = info.track("u", "a_2")
    gone.rtpdump_path.unlink()
    with rawcore.open_recording(tmp_path) as rec:
        assert [t.track_id for t in rec.tracks] == ["t-a_1"]
        assert any("'a_2' has no capture" in w for w in rec.warnings)


def test_segments_sharing_a_track_id_form_one_track(tmp_path: Path) -> None:
    spec = [
        TrackSpec("audio", "opus", source=OpusSource(1.0), base_filename="audio_1", track_id="mic"),
        TrackSpec(
            "audio",
            "opus",
            source=OpusSource(1.0),
            base_filename="audio_2",
            track_id="mic",
            start_offset_s=2.0,
        ),
    ]
    build_recording(tmp_path, [SessionSpec("u", "s", spec)])
    with rawcore.open_recording(tmp_path) as rec:
        (track,) = rec.tracks
        assert [s.base_filename for s in track.segments] == ["audio_1", "audio_2"]
        assert track.duration_ms >= 2900
        assert track.stats.packets == sum(s.stats.packets for s in track.segments)


def test_unreadable_capture_is_skipped_with_a_warning(tmp_path: Path) -> None:
    info = build_recording(tmp_path, [_opus_session("u", "s", "a_1", "a_2")])
    info.track("u", "a_2").rtpdump_path.write_bytes(b"GARBAGE, not a capture\n" * 4)
    with rawcore.open_recording(tmp_path) as rec:
        assert [t.track_id for t in rec.tracks] == ["t-a_1"]
        assert any("a_2.rtpdump" in w and "skipped" in w for w in rec.warnings)


def test_bad_metadata_falls_back_to_inference(tmp_path: Path) -> None:
    info = build_recording(tmp_path, [_opus_session("u", "s", "a_1")])
    meta = info.sessions[0].metadata_path
    assert meta is not None
    meta.write_text("{ broken")
    with rawcore.open_recording(tmp_path) as rec:
        assert rec.metadata_source == "inferred"
        assert any("not valid JSON" in w for w in rec.warnings)
        assert len(rec.tracks) == 1


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda p: p.mkdir(), InputError),  # an empty directory
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("hi")), InputError),
    ],
    ids=["empty-dir", "no-captures"],
)
def test_recordings_without_captures_are_input_errors(
    tmp_path: Path, make: Callable[[Path], object], error: type[RawcoreError]
) -> None:
    src = tmp_path / "rec"
    make(src)
    with pytest.raises(error, match=r"no \.rtpdump captures"):
        rawcore.open_recording(src)


def test_missing_sdp_warns_and_codec_comes_from_metadata(tmp_path: Path) -> None:
    info = build_recording(tmp_path, [_opus_session("u", "s", "a_1")])
    info.track("u", "a_1").sdp_path.unlink()
    with rawcore.open_recording(tmp_path) as rec:
        (track,) = rec.tracks
        assert track.codec == "opus"
        assert any("no SDP" in w for w in rec.warnings)


def test_flat_layout_with_prefixed_metadata_names(tmp_path: Path) -> None:
    info = build_recording(tmp_path / "src", [_opus_session("u", "s", "a_1")])
    flat = tmp_path / "flat"
    flat.mkdir()
    truth = info.track("u", "a_1")
    shutil.copy(truth.rtpdump_path, flat / "a_1.rtpdump")
    shutil.copy(truth.sdp_path, flat / "a_1.sdp")
    meta = info.sessions[0].metadata_path
    assert meta is not None
    doc = json.loads(meta.read_text())
    (flat / "s_timing_metadata.json").write_text(json.dumps(doc))
    with rawcore.open_recording(flat) as rec:
        (track,) = rec.tracks
        assert (track.participant_id, track.session_id, track.track_id) == ("u", "s", "t-a_1")


def test_lossy_impairments_are_counted(tmp_path: Path) -> None:
    spec = TrackSpec(
        "audio",
        "opus",
        source=OpusSource(4.0),
        impairments=Impairments(loss=0.05, reorder=0.05, duplicate=0.03, seed=7),
    )
    info = build_recording(tmp_path, [SessionSpec("u", "s", [spec])])
    truth = info.tracks()[0]
    with rawcore.open_recording(tmp_path) as rec:
        st = rec.tracks[0].stats
    assert (st.lost, st.duplicates) == (truth.lost, truth.duplicated)
    assert st.reordered > 0
    assert st.loss_pct == pytest.approx(100 * truth.lost / truth.packets_sent, abs=0.01)


def test_stream_metadata_as_written_names_files_as_stream_cli(tmp_path: Path) -> None:
    """Metadata exactly as Stream's recorder serialises it (max_frame_dimension objects,
    omitempty fields, a nanosecond call start) counts whole: ids, the screen share, the
    declared sizes and the file names stream-cli builds,
    `individual_{callType}_{callId}_{userId}_{sessionId}_{media}_{callStart.UnixMilli()}.mkv`."""
    from datetime import UTC, datetime

    start = datetime(2026, 3, 1, 10, 0, 0, 123999, tzinfo=UTC)  # UnixMilli truncates: ...123
    info = multiparty_call(tmp_path / "rec", duration_s=3.0, call_start=start)
    with rawcore.open_recording(info.root) as rec:
        assert rec.metadata_source == "metadata"
        assert not [w for w in rec.warnings if "timing_metadata" in w], rec.warnings
        assert (rec.call_type, rec.call_id, rec.call_start_unix_ms) == (
            "default",
            "call-123",
            1772359200123,
        )
        cams = [t for t in rec.tracks if t.kind == "video" and not t.screenshare]
        shares = [t for t in rec.tracks if t.screenshare and t.kind == "video"]
        assert len(cams) == 3 and len(shares) == 1
        assert all(t.declared_size == (320, 180) for t in cams + shares)
        entries, _, failures = rec.extract_video(tmp_path / "out")
    assert failures == []
    expected = {
        f"individual_default_call-123_{user}_{session}_{media}_1772359200123.mkv"
        for user, session, media in [
            ("user_1", "session_1", "video_only"),
            ("user_2", "session_1", "video_only"),
            ("user_2", "session_1", "shared_video_only"),
            ("user_3", "session_1", "video_only"),
        ]
    }
    assert {e.path for e in entries} == expected
    assert all(e.declared_size == [320, 180] for e in entries)
