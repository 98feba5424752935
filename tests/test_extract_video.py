"""extract-video, checked on DECODED output: frame times, flashes, keyframe waits, fills, sizes.

Captures come from GStreamer's vp8enc/vp9enc/x264enc and their RTP payloaders; the ground truth
(which frames a correct extractor writes and when) is computed from the packets the sender made
and the ones each capture holds (`helpers.video_truth`). Every output is decoded frame by frame
with PyAV (FFmpeg's decoders), never trusted on our writer's word.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rawcore
from helpers.audio_truth import av_available
from helpers.av1 import av1_available
from helpers.gst import gst_available
from helpers.recording import (
    Impairments,
    SessionSpec,
    TrackSpec,
    VideoSource,
    build_recording,
)
from helpers.video_truth import (
    BLACK_LUMA,
    DecodedVideo,
    VideoTruth,
    black_spans,
    container_video_size,
    decode_video,
    flash_times,
    lossy_call,
    paused_call,
    rejoin_video_call,
    resolution_change_call,
    screen_time,
    video_call,
)
from rawcore.media.outputs import Selection
from rawcore.media.video import extract_video

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

CODECS = ["vp8", "vp9", "h264"]
#: AV1 captures come from PyAV's SVT-AV1 and webrtc-rs' payloader (`helpers.av1`).
AV1 = pytest.param(
    "av1", marks=pytest.mark.skipif(not av1_available(), reason="needs SVT-AV1 in PyAV and cargo")
)
WITH_AV1 = [*CODECS, AV1]
FFMPEG_NAMES = {"vp8": "vp8", "vp9": "vp9", "h264": "h264", "av1": "libdav1d"}
#: Matroska stores milliseconds; a frame may sit half a millisecond off its RTP time.
PTS_TOL_S = 0.002


def extract(root: Path, out: Path, **kwargs: Any) -> list[Any]:
    with rawcore.open_recording(root) as rec:
        entries, warnings, _ = extract_video(rec, out, **kwargs)
    assert warnings == [], warnings
    return entries


def only_output(out: Path) -> Path:
    files = sorted(p for p in out.iterdir() if p.name != "manifest.json")
    assert len(files) == 1, files
    return files[0]


def split_real_and_fill(
    dec: DecodedVideo, times_s: tuple[float, ...]
) -> tuple[list[int], list[int]]:
    """Indexes of decoded frames at a true frame time, and of the others (filler)."""
    truth = np.asarray(times_s, dtype=np.float64)
    real: list[int] = []
    fill: list[int] = []
    for i, t in enumerate(dec.pts_s):
        nearest = float(np.min(np.abs(truth - t))) if truth.size else np.inf
        (real if nearest <= PTS_TOL_S else fill).append(i)
    return real, fill


def assert_decodes_to_truth(
    path: Path,
    entry: Any,
    *,
    times_s: tuple[float, ...],
    flashes_s: tuple[float, ...],
    gaps_s: tuple[tuple[float, float], ...],
    fps: int,
    sizes: tuple[tuple[int, int], ...] | None = None,
    fills_expected: bool = True,
) -> DecodedVideo:
    """The output holds exactly the true frames at their RTP times, plus (only inside gaps)
    black filler; it decodes without one error and starts with a keyframe at t=0."""
    dec = decode_video(path)
    frame_s = 1.0 / fps
    assert dec.errors == 0, f"{dec.errors} decoder errors: {dec.error_messages[:5]}"
    assert dec.frames == entry.frames, (dec.frames, entry.frames)
    assert dec.first_packet_keyframe and bool(dec.keyframes[0]), "first frame is not a keyframe"
    assert dec.pts_s[0] == pytest.approx(0.0, abs=PTS_TOL_S)
    steps = np.diff(dec.pts_s)
    assert np.all(steps > 0), f"pts not increasing at frames {np.nonzero(steps <= 0)[0][:10]}"

    real, fill = split_real_and_fill(dec, times_s)
    got = dec.pts_s[real]
    missing = [t for t in times_s if not np.any(np.abs(got - t) <= PTS_TOL_S)]
    assert not missing, f"{len(missing)} true frames missing, first at {missing[:5]}"
    assert len(real) == len(times_s), f"{len(real)} real frames decoded, {len(times_s)} expected"
    stray = [float(dec.pts_s[i]) for i in fill if not any(a < dec.pts_s[i] < b for a, b in gaps_s)]
    assert not stray, f"frames at no true time, outside any gap: {stray[:5]}"
    assert entry.fill_frames == len(fill), (
        f"{len(fill)} frames at no true frame time (filler, or frames that should not be "
        f"there) at {[round(float(dec.pts_s[i]), 3) for i in fill][:8]}; "
        f"the manifest counts {entry.fill_frames} fill frames"
    )
    if not fills_expected:
        assert fill == []
    for i in fill:
        assert dec.luma[i] < BLACK_LUMA, f"filler at {dec.pts_s[i]:.3f}s is not black"
        # Filler keeps the picture size of the frame before it.
        assert dec.sizes[i] == dec.sizes[i - 1], (dec.pts_s[i], dec.sizes[i], dec.sizes[i - 1])
    if sizes is not None:
        wrong = [
            (round(float(dec.pts_s[i]), 3), dec.sizes[i], want)
            for i, want in zip(real, sizes, strict=True)
            if dec.sizes[i] != want
        ]
        assert not wrong, f"picture sizes differ from the sender's: {wrong[:5]}"

    found = flash_times(dec)
    for want in flashes_s:
        assert any(abs(f - want) <= frame_s + PTS_TOL_S for f in found), (want, found)
    assert len(found) == len(flashes_s), f"flashes at {found}, expected {flashes_s}"
    return dec


def check_truth(path: Path, entry: Any, truth: VideoTruth, **kwargs: Any) -> DecodedVideo:
    return assert_decodes_to_truth(
        path,
        entry,
        times_s=truth.times_s,
        flashes_s=truth.flashes_s,
        gaps_s=truth.gaps_s,
        fps=truth.fps,
        sizes=truth.sizes,
        **kwargs,
    )


# --- clean tracks -------------------------------------------------------------------------


@pytest.mark.parametrize("codec", WITH_AV1)
def test_clean_track_is_remuxed_frame_for_frame(tmp_path: Path, codec: str) -> None:
    truth = video_call(tmp_path / "rec", codec)
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    out = only_output(tmp_path / "out")
    assert out.suffix == ".mkv"
    dec = check_truth(out, entry, truth)
    assert dec.codec_name == FFMPEG_NAMES[codec]
    assert dec.frames == len(truth.times_s) == 45
    assert int(dec.keyframes.sum()) == entry.keyframes == len(truth.keyframe_times_s)
    assert entry.fill_frames == 0 and entry.gaps_filled_ms == 0
    assert entry.frames_dropped == 0 and entry.keyframe_waits == 0
    assert (entry.width, entry.height) == (320, 180) == dec.sizes[0]
    assert container_video_size(out) == (320, 180)
    assert entry.codec == codec and entry.kind == "video" and entry.container == "matroska"
    frame_ms = 1000 / truth.fps
    assert truth.last_s * 1000 - 1 <= entry.duration_ms <= truth.last_s * 1000 + frame_ms + 1
    # No orientation extension in these captures: nothing to rotate.
    assert dec.rotation in (None, 0.0) and entry.rotation_changes == []


def test_manifest_describes_the_video_output(tmp_path: Path) -> None:
    truth = video_call(tmp_path / "rec", "vp8")
    extract(truth.recording.root, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert doc["schema"] == "rawcore.manifest/1"
    assert "extract-video" in doc["commands"]
    (entry,) = doc["outputs"]
    path = tmp_path / "out" / entry["path"]
    assert path.stat().st_size == entry["bytes"]
    name = "individual_default_call-123_user_1_session_1_video_only_1772359200000.mkv"
    assert entry["path"] == name
    assert entry["kind"] == "video" and entry["codec"] == "vp8"
    assert entry["container"] == "matroska"
    assert entry["user_id"] == "user_1" and entry["session_id"] == "session_1"
    assert entry["track_ids"] == [truth.track.track_id]
    # Captures store whole-millisecond arrivals (floored), so the recorder-clock offset the
    # timeline fits from them may come out up to 1 ms early.
    assert entry["start_unix_ms"] == pytest.approx(truth.start_unix_ms, abs=1)
    assert entry["screenshare"] is False and entry["stitched"] is False
    assert (entry["width"], entry["height"]) == (320, 180)
    assert entry["frames"] == len(truth.times_s) and entry["keyframes"] == 1
    assert entry["resolution_changes"][0] == [0, 320, 180]
    assert entry["rotation_changes"] == []
    for key in ("frames_dropped", "keyframe_waits", "keyframe_wait_ms", "fill_frames"):
        assert entry[key] == 0, key
    assert entry["gaps_filled_ms"] == 0


# --- loss -----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", WITH_AV1)
def test_a_lost_frame_holds_the_last_picture_until_the_next_keyframe(
    tmp_path: Path, codec: str
) -> None:
    # Frame 20 (1.33 s) never arrives; the next keyframe is at 3.0 s.
    truth = lossy_call(tmp_path / "rec", codec, drop_frames=(20,))
    assert [list(g) for g in truth.gaps_s] == [pytest.approx([19 / 15, 3.0])]
    assert truth.lost_flashes_s
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    dec = check_truth(only_output(tmp_path / "out"), entry, truth, fills_expected=False)
    assert dec.frames == len(truth.times_s) < 60
    assert entry.keyframe_waits == 1
    wait_ms = (3.0 - 20 / 15) * 1000
    # The wait counts from the first frame dropped for want of a keyframe. An AV1 packet does
    # not say it starts a temporal unit (only N, at a new sequence, does), so after a lost unit
    # the next one counts as incomplete and the wait starts a frame later.
    frames_late = 2 if codec == "av1" else 1
    assert entry.keyframe_wait_ms == pytest.approx(wait_ms, abs=frames_late * 1000 / 15 + 1)
    assert truth.undecodable <= entry.frames_dropped + entry.frames_incomplete
    assert entry.frames_dropped <= truth.undecodable + truth.incomplete
    # Nothing is written for the wait: frame 19 stays on screen until the keyframe, and the
    # manifest says so.
    assert entry.fill_frames == 0 and entry.gaps_filled_ms == 0 and entry.gaps_unfilled_ms == 0
    assert dec.gaps(2.5 / 15) == [pytest.approx((19 / 15, 3.0), abs=PTS_TOL_S)]
    assert entry.frozen_ms == pytest.approx(wait_ms, abs=1000 / 15 + 1)
    (event,) = entry.events
    assert event[2] == "freeze"
    assert event[:2] == pytest.approx([20 / 15 * 1000, 3000], abs=2)
    assert entry.duration_ms == pytest.approx(truth.end_s * 1000, abs=1)


@pytest.mark.parametrize("codec", WITH_AV1)
def test_on_loss_black_fills_the_keyframe_wait(tmp_path: Path, codec: str) -> None:
    truth = lossy_call(tmp_path / "rec", codec, drop_frames=(20,))
    (entry,) = extract(truth.recording.root, tmp_path / "out", on_loss="black")
    dec = check_truth(only_output(tmp_path / "out"), entry, truth)
    assert dec.frames - entry.fill_frames == len(truth.times_s) < 60
    assert entry.keyframe_waits == 1
    # The keyframe wait is a gap that ends at a keyframe: filled, at a low rate.
    assert 1 <= entry.fill_frames <= 4
    assert entry.gaps_filled_ms == pytest.approx((3.0 - 20 / 15) * 1000, abs=1000 / 15 + 1)
    assert entry.frozen_ms == 0
    assert [e[2] for e in entry.events] == ["keyframe_wait"]


@pytest.mark.parametrize("codec", CODECS)
def test_on_loss_conceal_writes_every_complete_frame(tmp_path: Path, codec: str) -> None:
    truth = lossy_call(tmp_path / "rec", codec, drop_frames=(20,))
    (entry,) = extract(truth.recording.root, tmp_path / "out", on_loss="conceal")
    dec = decode_video(only_output(tmp_path / "out"))
    # Every complete frame from the first keyframe on, at its RTP time; the decoder conceals
    # what the lost frame would have given the ones after it.
    want = truth.conceal_times_s()
    assert len(want) == 59
    assert dec.frames == entry.frames == len(want)
    assert np.allclose(dec.pts_s, want, atol=PTS_TOL_S)
    assert entry.frames_concealed == len(want) - len(truth.times_s) > 0
    assert entry.frames_dropped == 0 and entry.fill_frames == 0
    # One missing frame is no gap: nothing held long enough to count.
    assert entry.frozen_ms == 0 and entry.events == []


@pytest.mark.parametrize("codec", [AV1])
@pytest.mark.parametrize(("part", "missing"), [(25, [25]), (26, [26, 27])])
def test_a_lost_av1_frame_costs_only_the_frames_that_read_what_it_wrote(
    tmp_path: Path, codec: str, part: int, missing: list[int]
) -> None:
    """SVT-AV1's low-delay structure repeats every 4 frames: 4k writes most reference slots,
    4k+2 writes slot 1, 4k+1 and 4k+3 write none (4k+3 reads slot 1). A frame whose first
    packet arrived tells its slots: losing frame 25 costs only itself, losing 26 costs 27 too,
    and every frame written decodes to its source picture."""
    truth = lossy_call(
        tmp_path / "rec", codec, partial_frames=(part,), duration_s=4.0, fps=30, flashes=None,
        keyframe_interval=90, width=640, height=360, bitrate_kbps=800,
    )  # fmt: skip
    assert truth.extra["partial"] == (part,) and truth.keyframe_times_s == (0.0, 3.0)
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    out = only_output(tmp_path / "out")
    dec = decode_video(out)
    assert dec.errors == 0, dec.error_messages[:5]
    written = sorted(round(t * 30) for t in dec.pts_s)
    assert sorted(set(range(len(truth.frames_sent))) - set(written)) == missing
    st = screen_time(out, truth)
    assert st.damaged_s == 0 and st.black_s == 0, st
    assert st.held_s == pytest.approx(len(missing) / 30), st
    assert entry.frames_incomplete == 1 and entry.frames_dropped == len(missing) - 1


@pytest.mark.parametrize("codec", CODECS)
def test_a_frame_missing_a_packet_is_never_written(tmp_path: Path, codec: str) -> None:
    # A scrolling pattern makes multi-packet frames; the first one from frame 12 on loses its
    # last packet: a VP8 inter frame (output resumes at the keyframe at 2 s), or for VP9 and
    # H.264, whose inter frames fit one packet here, the keyframe at 2 s (output ends before it).
    truth = lossy_call(
        tmp_path / "rec", codec, partial_frames=(12,), flashes=None, keyframe_interval=30
    )
    (part,) = truth.extra["partial"]
    assert truth.incomplete == 1 and part in (19, 30)
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    dec = check_truth(only_output(tmp_path / "out"), entry, truth)
    # The partial keyframe's wait never ends (no keyframe follows): not counted as a wait.
    assert entry.keyframe_waits == truth.keyframe_waits == (1 if part == 19 else 0)
    assert entry.frames_dropped >= truth.undecodable
    if part == 30:
        assert dec.pts_s[-1] == pytest.approx(29 / 15, abs=PTS_TOL_S)
    # Whatever was lost at the end, the file lasts to the track's last packet: its last frame
    # is held until then (a BlockGroup with a BlockDuration), and FFmpeg says so.
    assert truth.end_s == pytest.approx(4.0)
    assert dec.container_duration_s == pytest.approx(truth.end_s, abs=0.001)
    assert entry.duration_ms == pytest.approx(truth.end_s * 1000, abs=1)
    want = [2000 if part == 19 else 4000, "freeze"]
    assert [e[1:] for e in entry.events] == [want]


@pytest.mark.parametrize(("codec", "seed"), [("vp8", 3), ("vp9", 3), ("h264", 7)])
def test_random_loss_keeps_timing_and_decodes_cleanly(
    tmp_path: Path, codec: str, seed: int
) -> None:
    truth = lossy_call(
        tmp_path / "rec", codec, loss=0.05, seed=seed, duration_s=6.0, keyframe_interval=15,
        flashes=(0.5, 1.5, 2.5, 3.5, 4.5, 5.5),
    )  # fmt: skip
    assert truth.incomplete > 0 and truth.flashes_s  # the scenario loses something, not all
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    dec = check_truth(only_output(tmp_path / "out"), entry, truth)
    assert dec.frames - entry.fill_frames == len(truth.times_s) < 90
    assert entry.keyframe_waits == truth.keyframe_waits


# Measured the way a viewer sees it: every decoded picture against the source picture that
# should be on screen at its time (luma PSNR), over a 20 s 640x360 call at 30 fps with a
# keyframe every 3 s and 2 % of the packets lost at random.
LOSS_CALL = {
    "loss": 0.02,
    "seed": 1,
    "duration_s": 20.0,
    "fps": 30,
    "flashes": None,
    "keyframe_interval": 90,
    "width": 640,
    "height": 360,
    "bitrate_kbps": 300,
}


@pytest.mark.parametrize("codec", WITH_AV1)
def test_two_percent_loss_keeps_a_right_picture_on_screen(tmp_path: Path, codec: str) -> None:
    truth = lossy_call(tmp_path / "rec", codec, **LOSS_CALL)
    assert truth.incomplete >= 10 and truth.end_s == pytest.approx(20.0)
    frame_s = truth.frame_s
    seen = {}
    for mode in ("freeze", "black", "conceal"):
        (entry,) = extract(truth.recording.root, tmp_path / mode, on_loss=mode)
        seen[mode] = st = screen_time(only_output(tmp_path / mode), truth)
        # Every output lasts to the track's end, within one frame.
        assert abs(st.end_s - st.true_end_s) <= frame_s, (mode, st)
        assert st.missing_s == 0, (mode, st)
        assert entry.duration_ms == pytest.approx(st.true_end_s * 1000, abs=frame_s * 1000)
    freeze, black, conceal = seen["freeze"], seen["black"], seen["conceal"]
    # Freeze: a correct or held picture all along, never a damaged or black one.
    assert freeze.shown_s >= 0.97 * freeze.span_s, freeze
    assert freeze.damaged_s == 0 and freeze.black_s == 0, freeze
    # Black: the same correct pictures, black where freeze holds.
    assert black.correct_s == freeze.correct_s and black.damaged_s == 0, black
    assert black.black_s == pytest.approx(freeze.held_s, abs=3 * frame_s), (black, freeze)
    # Conceal: every complete frame, so at least as many correct ones, and damaged ones.
    assert conceal.correct_s >= freeze.correct_s and conceal.black_s == 0, conceal
    assert conceal.damaged_s > 0, conceal


# --- network disorder and wraps ------------------------------------------------------------


@pytest.mark.parametrize("codec", WITH_AV1)
def test_reordering_and_duplicates_change_nothing(tmp_path: Path, codec: str) -> None:
    imp = Impairments(reorder=0.2, duplicate=0.1, jitter_ms=20, seed=5)
    truth = video_call(tmp_path / "rec", codec, impairments=imp)
    assert truth.track.out_of_order > 0 and truth.track.duplicated > 0
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    dec = check_truth(only_output(tmp_path / "out"), entry, truth)
    assert dec.frames == 45 and entry.frames_dropped == 0 and entry.keyframe_waits == 0


@pytest.mark.parametrize("codec", WITH_AV1)
def test_sequence_and_timestamp_wraps(tmp_path: Path, codec: str) -> None:
    # Sequence numbers wrap after 36 packets, RTP time after 2 s.
    truth = video_call(tmp_path / "rec", codec, seq_offset=65_500, ts_offset=2**32 - 90_000 * 2)
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    dec = check_truth(only_output(tmp_path / "out"), entry, truth)
    assert dec.frames == 45
    assert dec.pts_s[-1] == pytest.approx(44 / 15, abs=PTS_TOL_S)


# --- resolution changes ---------------------------------------------------------------------


@pytest.mark.parametrize("codec", WITH_AV1)
def test_resolution_change_is_kept(tmp_path: Path, codec: str) -> None:
    truth = resolution_change_call(tmp_path / "rec", codec)
    change = truth.extra["change_s"]
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    out = only_output(tmp_path / "out")
    dec = check_truth(out, entry, truth)
    first_big = next(i for i, s in enumerate(dec.sizes) if s == (640, 360))
    assert dec.pts_s[first_big] == pytest.approx(change, abs=PTS_TOL_S)
    assert set(dec.sizes[:first_big]) == {(320, 180)}
    assert set(dec.sizes[first_big:]) == {(640, 360)}
    # The container declares the largest picture.
    assert (entry.width, entry.height) == (640, 360)
    assert container_video_size(out) == (640, 360)
    assert [round(change * 1000), 640, 360] in [list(r) for r in entry.resolution_changes]


# --- sender pauses and fills ----------------------------------------------------------------


@pytest.mark.parametrize("codec", WITH_AV1)
def test_sender_pause_is_filled_with_black_at_a_low_rate(tmp_path: Path, codec: str) -> None:
    truth = paused_call(tmp_path / "rec", codec)
    start, end = truth.extra["pause_start_s"], truth.extra["pause_end_s"]
    assert (start, end) == (1.0, 4.0)
    assert [list(g) for g in truth.gaps_s] == [pytest.approx([1.0, 4.0])]
    (entry,) = extract(truth.recording.root, tmp_path / "filled")
    filled = only_output(tmp_path / "filled")
    dec = check_truth(filled, entry, truth)
    spans = black_spans(dec)
    assert len(spans) == 1, spans
    b_start, b_end, count = spans[0]
    assert start < b_start <= start + 1.0
    assert b_end == pytest.approx(end, abs=PTS_TOL_S)
    assert 1 <= count <= 5 and count == entry.fill_frames  # about one per second
    frame_s = 1 / truth.fps
    assert entry.gaps_filled_ms == pytest.approx((end - start - frame_s) * 1000, abs=frame_s * 1000)
    # Real frames are the scrolling pattern, never black.
    assert all(dec.luma[i] >= BLACK_LUMA for i in range(dec.frames) if dec.pts_s[i] <= start)

    (bare,) = extract(truth.recording.root, tmp_path / "bare", fill_gaps=False)
    unfilled = only_output(tmp_path / "bare")
    assert 0 < entry.bytes - bare.bytes < 50_000
    dec_bare = check_truth(unfilled, bare, truth, fills_expected=False)
    assert black_spans(dec_bare) == []
    assert bare.fill_frames == 0 and bare.gaps_filled_ms == 0
    jumps = dec_bare.gaps(2.5 * frame_s)
    assert len(jumps) == 1 and jumps[0] == pytest.approx((start, end), abs=PTS_TOL_S)


def test_a_long_pause_costs_kilobytes(tmp_path: Path) -> None:
    truth = paused_call(tmp_path / "rec", "vp8", pause_s=60.0, duration_s=63.0, pause_from_s=1.0)
    (entry,) = extract(truth.recording.root, tmp_path / "filled")
    (bare,) = extract(truth.recording.root, tmp_path / "bare", fill_gaps=False)
    assert 0 < entry.bytes - bare.bytes < 50_000
    dec = decode_video(only_output(tmp_path / "filled"))
    assert dec.errors == 0
    assert entry.fill_frames <= 62


# --- sessions -------------------------------------------------------------------------------


def test_stitch_joins_sessions_on_the_wall_clock(tmp_path: Path) -> None:
    call = rejoin_video_call(tmp_path / "rec", "vp8")
    (entry,) = extract(call.recording.root, tmp_path / "out", stitch=True)
    assert entry.session_id is None and entry.stitched
    assert "_session_" not in entry.path
    out = tmp_path / "out" / entry.path
    s1, s2 = call.sessions
    gaps = ((s1.last_s, call.second_start_s),)
    dec = assert_decodes_to_truth(
        out, entry, times_s=call.times_s, flashes_s=call.flashes_s, gaps_s=gaps, fps=s1.fps
    )
    assert call.flashes_s[-1] == pytest.approx(6.0, abs=1e-9)
    assert entry.fill_frames >= 1  # the time between the sessions is filled
    assert dec.pts_s[-1] == pytest.approx(call.second_start_s + s2.last_s, abs=PTS_TOL_S)


def test_sessions_are_separate_files_by_default(tmp_path: Path) -> None:
    call = rejoin_video_call(tmp_path / "rec", "vp8")
    entries = extract(call.recording.root, tmp_path / "out")
    assert sorted(e.session_id for e in entries) == ["session_1", "session_2"]
    for entry, truth in zip(
        sorted(entries, key=lambda e: e.session_id or ""), call.sessions, strict=True
    ):
        check_truth(tmp_path / "out" / entry.path, entry, truth)
        assert entry.start_unix_ms == pytest.approx(truth.start_unix_ms, abs=1)


def test_filters_select_outputs(tmp_path: Path) -> None:
    call = rejoin_video_call(tmp_path / "rec", "vp8")
    with rawcore.open_recording(call.recording.root) as rec:
        entries, _, _ = extract_video(
            rec, tmp_path / "out", selection=Selection(session_id="session_2")
        )
    assert [e.session_id for e in entries] == ["session_2"]


def test_screen_share_is_named_shared(tmp_path: Path) -> None:
    truth = video_call(tmp_path / "rec", "vp8", kind="screen_share", duration_s=2.0)
    (entry,) = extract(truth.recording.root, tmp_path / "out")
    assert entry.screenshare
    assert entry.path == (
        "individual_default_call-123_user_1_session_1_shared_video_only_1772359200000.mkv"
    )
    check_truth(tmp_path / "out" / entry.path, entry, truth)


# --- containers -----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["vp8", "vp9", AV1])
def test_webm_output_decodes(tmp_path: Path, codec: str) -> None:
    truth = video_call(tmp_path / "rec", codec)
    (entry,) = extract(truth.recording.root, tmp_path / "out", fmt="webm")
    out = only_output(tmp_path / "out")
    assert out.suffix == ".webm" and entry.container == "webm"
    assert b"webm" in out.read_bytes()[:64]  # the EBML DocType
    check_truth(out, entry, truth)


def _h264_and_vp8(root: Path) -> None:
    video = VideoSource(2.0, fps=15)
    build_recording(
        root,
        [
            SessionSpec("user_1", "session_1", [TrackSpec("video", "h264", source=video)]),
            SessionSpec("user_2", "session_1", [TrackSpec("video", "vp8", source=video)]),
        ],
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rawcore", *args], capture_output=True, text=True, timeout=120
    )


def test_h264_cannot_go_into_webm(tmp_path: Path) -> None:
    _h264_and_vp8(tmp_path / "rec")
    out = tmp_path / "out"
    proc = run_cli(
        "extract-video", "--input-dir", str(tmp_path / "rec"), "--output", str(out),
        "--format", "webm",
    )  # fmt: skip
    assert proc.returncode == 6, proc.stderr  # partial: the VP8 track is still written
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    (failed,) = [w for w in warnings if "_user_1_" in w]
    assert "webm" in failed.lower() and failed.count("individual_") == 1, failed  # named once
    written = proc.stdout.split()
    assert len(written) == 1 and "_user_2_" in written[0] and written[0].endswith(".webm")
    assert decode_video(out / written[0]).errors == 0
    assert not list(out.glob("*user_1*"))

    only_h264 = run_cli(
        "extract-video", "--input-dir", str(tmp_path / "rec"), "--output", str(tmp_path / "o2"),
        "--format", "webm", "--user-id", "user_1",
    )  # fmt: skip
    assert only_h264.returncode == 3, only_h264.stderr
    (line,) = only_h264.stderr.strip().splitlines()
    assert line.startswith("rawcore: error:") and "webm" in line.lower()
    assert line.count("individual_") == 1, line
    assert only_h264.stdout == ""


# --- the CLI ------------------------------------------------------------------------------

GUIDE_LINES = [
    "extract-video --input-file recording.tar.gz --output ./out",
    "extract-video --input-file recording.tar.gz --output ./out --user-id user_2",
    "extract-video --input-file recording.tar.gz --output ./out --fill-gaps=false",
]


@pytest.fixture(scope="module")
def multiparty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers.recording import multiparty_call, pack_targz

    tmp = tmp_path_factory.mktemp("ev")
    info = multiparty_call(tmp / "rec", duration_s=4.0)
    return pack_targz(info.root, tmp / "recording.tar.gz")


@pytest.mark.parametrize("line", GUIDE_LINES)
def test_guide_command_lines(line: str, multiparty: Path, tmp_path: Path) -> None:
    args = [
        str(multiparty) if a == "recording.tar.gz" else str(tmp_path / "out") if a == "./out" else a
        for a in line.split()
    ]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    written = proc.stdout.split()
    assert written and all((tmp_path / "out" / w).exists() for w in written)
    codecs = set()
    for name in written:
        dec = decode_video(tmp_path / "out" / name)
        assert dec.errors == 0, (name, dec.error_messages[:5])
        assert dec.frames > 0 and dec.first_packet_keyframe
        assert np.all(np.diff(dec.pts_s) > 0), name
        codecs.add(dec.codec_name)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(e["path"] for e in manifest["outputs"]) == sorted(written)
    if "--user-id" in args:
        # user_2: VP9 camera (RTP time wraps) and a VP8 screen share.
        assert len(written) == 2 and all("_user_2_" in w for w in written)
        assert sum("_shared_video_only_" in w for w in written) == 1
        assert codecs == {"vp8", "vp9"}
    else:
        # 4 video tracks: user_1 VP8 (loss, reordering), user_2 VP9 + VP8 screen share,
        # user_3 H.264 (jitter).
        assert len(written) == 4
        assert sum("_shared_video_only_" in w for w in written) == 1
        assert codecs == {"vp8", "vp9", "h264"}
        assert all(w.endswith(".mkv") and "_video_only_" in w for w in written)


@pytest.mark.parametrize(
    ("cvo", "clockwise", "display_matrix"), [(1, 90, -90), (2, 180, -180), (3, 270, 90)]
)
def test_video_orientation_becomes_container_rotation(
    tmp_path: Path, cvo: int, clockwise: int, display_matrix: int
) -> None:
    """A sender's CVO header extension (urn:3gpp:video-orientation, id 3 in the SDP) ends up as
    the track's display rotation, which FFmpeg reports as a display matrix."""
    import av
    from helpers.gst import vp8_packets
    from helpers.recording import SessionSpec, TrackSpec, build_recording
    from helpers.rtpdump import with_one_byte_extension

    packets = [with_one_byte_extension(p, 3, bytes([cvo])) for p in vp8_packets(1.0, fps=15)]
    build_recording(
        tmp_path / "rec", [SessionSpec("u", "s", [TrackSpec("video", "vp8", packets=packets)])]
    )
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (entry,), warnings, _ = extract_video(rec, tmp_path / "out")
    assert warnings == []
    assert entry.rotation == clockwise and entry.rotation_changes == [[0, clockwise, 0]]
    with av.open(str(tmp_path / "out" / entry.path)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == display_matrix
