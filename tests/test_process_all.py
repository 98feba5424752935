"""process-all, mix-audio and mux-av on a multi-party call, checked on decoded output.

The call has a late joiner, a participant with two sessions and a screen share; each
participant's tone must sit at its true wall-clock time in the mixed MP3 (±40 ms), and
process-all must write every expected file and nothing else.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.audio_truth import OPUS_LOOKAHEAD_S, av_available, decode_audio, tone_onsets
from helpers.gst import gst_available
from helpers.recording import (
    OpusSource,
    RecordingInfo,
    SessionSpec,
    TrackSpec,
    VideoSource,
    build_recording,
    pack_targz,
)
from helpers.video_truth import decode_video

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

# (participant, session, start in the call s, length s, tone Hz, with video, screen share)
PEOPLE = [
    ("ann", "s1", 0.0, 6.0, 440.0, True, False),
    ("bob", "s1", 0.5, 2.5, 660.0, True, False),
    ("bob", "s2", 4.0, 2.5, 660.0, False, False),  # bob rejoins
    ("cat", "s1", 2.0, 4.0, 880.0, True, True),  # a late joiner who shares her screen
]


def _call(root: Path) -> RecordingInfo:
    sessions = []
    for user, session, start, length, freq, video, share in PEOPLE:
        burst = ((0.5, 0.3, freq),)  # 0.5 s into each session
        tracks = [
            TrackSpec(
                "audio", "opus", source=OpusSource(length, tone_bursts=burst), start_offset_s=start
            )
        ]
        if video:
            tracks.append(
                TrackSpec("video", "vp8", source=VideoSource(length, fps=15), start_offset_s=start)
            )
        if share:
            tracks.append(
                TrackSpec(
                    "screen_share",
                    "vp8",
                    source=VideoSource(length - 1.0, fps=5),
                    start_offset_s=start + 0.5,
                )
            )
        sessions.append(SessionSpec(user, session, tracks))
    return build_recording(root, sessions)


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> tuple[RecordingInfo, Path]:
    tmp = tmp_path_factory.mktemp("pa")
    info = _call(tmp / "rec")
    return info, pack_targz(info.root, tmp / "call.tar.gz")


def rawcore(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rawcore", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_process_all_writes_every_expected_file_and_nothing_else(
    call: tuple[RecordingInfo, Path], tmp_path: Path
) -> None:
    _, archive = call
    out = tmp_path / "out"
    proc = rawcore("process-all", "--input-file", archive, "--output", out, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    start = 1772359200000
    p = "individual_default_call-123"
    expected = {
        *(f"{p}_{u}_{s}_audio_only_{start}.mkv" for u, s, *_ in PEOPLE),
        *(f"{p}_{u}_{s}_video_only_{start}.mkv" for u, s, _, _, _, v, _ in PEOPLE if v),
        f"{p}_cat_s1_shared_video_only_{start}.mkv",
        *(f"{p}_{u}_{s}_audio_video_{start}.mkv" for u, s, *_ in PEOPLE),
        f"{p}_cat_s1_shared_audio_video_{start}.mkv",
        f"composite_default_call-123_audio_{start}.mp3",
        "manifest.json",
        "qa_report.json",
        "qa_timeline.png",
    }
    assert {f.name for f in out.iterdir()} == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert {o["path"] for o in manifest["outputs"]} == expected - {
        "manifest.json",
        "qa_report.json",
        "qa_timeline.png",
    }
    assert {o["path"] for o in summary["outputs"]} == {o["path"] for o in manifest["outputs"]}
    import av

    for o in manifest["outputs"]:
        path = out / o["path"]
        with av.open(str(path)) as container:
            kinds = {s.type for s in container.streams}
        if "video" in kinds:
            assert decode_video(path).errors == 0, o["path"]
        if "audio" in kinds:
            assert decode_audio(path).errors == 0, o["path"]
        assert kinds == {"video": {"video"}, "audio": {"audio"}, "mix": {"audio"}}.get(
            o["kind"], kinds
        ), o["path"]
    qa = json.loads((out / "qa_report.json").read_text())
    assert qa["schema"] == "rawcore.qa/1" and len(qa["tracks"]) == 8
    assert all(t["sync"] and t["sync"][0]["basis"] == "sender_reports" for t in qa["tracks"])
    assert (out / "qa_timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_participants_tone_sits_at_its_time_in_the_mix(
    call: tuple[RecordingInfo, Path], tmp_path: Path
) -> None:
    _, archive = call
    proc = rawcore("mix-audio", "--input-file", archive, "--output", tmp_path)
    assert proc.returncode == 0, proc.stderr
    (name,) = proc.stdout.split()
    assert name == "composite_default_call-123_audio_1772359200000.mp3"
    dec = decode_audio(tmp_path / name)
    assert dec.errors == 0
    # The mix starts at the call start; each tone is 0.5 s into its session.
    for user, session, start, _, freq, *_ in PEOPLE:
        want = start + 0.5 + 0.020 + OPUS_LOOKAHEAD_S  # +20 ms: the path delay of the captures
        found = tone_onsets(dec.samples, dec.rate, freq)
        assert any(abs(f - want) <= 0.040 for f in found), (user, session, want, found)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("line", "files"),
    [
        ("mux-av --input-file {a} --output {o}", 5),
        ("mux-av --input-file {a} --output {o} --user-id cat", 2),
        ("mux-av --input-file {a} --output {o} --media user", 4),
        ("mux-av --input-file {a} --output {o} --media display", 1),
        ("mix-audio --input-file {a} --output {o}", 1),
        ("process-all --input-file {a} --output {o} --user-id bob", 6),
    ],
)
def test_guide_command_lines(
    call: tuple[RecordingInfo, Path], tmp_path: Path, line: str, files: int
) -> None:
    _, archive = call
    proc = rawcore(*shlex.split(line.format(a=archive, o=tmp_path / "out")))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) == files, proc.stdout


def test_mux_av_keeps_audio_only_and_video_only_sessions(
    call: tuple[RecordingInfo, Path], tmp_path: Path
) -> None:
    _, archive = call
    rawcore("mux-av", "--input-file", archive, "--output", tmp_path, "--user-id", "bob")
    import av

    streams = {}
    for f in sorted(tmp_path.glob("*.mkv")):
        with av.open(str(f)) as c:
            streams[f.name.split("_")[4]] = sorted(s.type for s in c.streams)
    assert streams == {"s1": ["audio", "video"], "s2": ["audio"]}


def test_bad_gain_is_a_usage_level_input_error(
    call: tuple[RecordingInfo, Path], tmp_path: Path
) -> None:
    _, archive = call
    proc = rawcore("mix-audio", "--input-file", archive, "--output", tmp_path, "--gain", "nobody=3")
    assert proc.returncode == 3
    assert proc.stderr.startswith("rawcore: error: --gain names users without audio")


@pytest.mark.parametrize(
    ("args", "rate", "kbps"),
    [
        ((), 48_000, 64),
        (("--sample-rate", "24000"), 24_000, 64),
        (("--sample-rate", "16000", "--bitrate", "32"), 16_000, 32),
    ],
)
def test_mix_sample_rate_and_bit_rate_are_what_the_file_decodes_at(
    call: tuple[RecordingInfo, Path], tmp_path: Path, args: tuple[str, ...], rate: int, kbps: int
) -> None:
    _, archive = call
    proc = rawcore("mix-audio", "--input-file", archive, "--output", tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    (name,) = proc.stdout.split()
    import av

    with av.open(str(tmp_path / name)) as c:
        stream = c.streams.audio[0]
        assert (stream.codec_context.sample_rate, stream.codec_context.bit_rate) == (
            rate,
            kbps * 1000,
        )
    # Tones stay at their times at any rate.
    dec = decode_audio(tmp_path / name)
    for _, _, start, _, freq, *_ in PEOPLE:
        want = start + 0.5 + 0.020 + OPUS_LOOKAHEAD_S
        assert any(abs(f - want) <= 0.040 for f in tone_onsets(dec.samples, dec.rate, freq))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bitrate", "2"), "rawcore: error: bit rate 2 kbit/s is out of range (8-512)"),
        (
            ("--sample-rate", "12345"),
            "rawcore: error: sample rate 12345 is not possible for mp3",
        ),
    ],
)
def test_impossible_mix_encodings_are_one_line_usage_errors(
    call: tuple[RecordingInfo, Path], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    _, archive = call
    proc = rawcore("mix-audio", "--input-file", archive, "--output", tmp_path / "o", *args)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(message), line
    assert not (tmp_path / "o").exists()


def test_a_filtered_run_is_named_for_its_selection_and_replaces_nothing(
    call: tuple[RecordingInfo, Path], tmp_path: Path
) -> None:
    _, archive = call
    out = tmp_path / "out"
    assert rawcore("process-all", "--input-file", archive, "-o", out).returncode == 0
    full_mix = out / "composite_default_call-123_audio_1772359200000.mp3"
    full = {p.name: p.read_bytes() for p in (full_mix, out / "qa_report.json")}
    proc = rawcore("process-all", "--input-file", archive, "-o", out, "--user-id", "cat")
    assert proc.returncode == 0, proc.stderr
    # The whole-call mix and QA report are untouched; the selection's have names of their own.
    assert {p.name: p.read_bytes() for p in (full_mix, out / "qa_report.json")} == full
    mine = out / "composite_default_call-123_audio_1772359200000_user-cat.mp3"
    assert mine.exists() and (out / "qa_timeline_user-cat.png").exists()
    qa_all = json.loads((out / "qa_report.json").read_text())
    qa_cat = json.loads((out / "qa_report_user-cat.json").read_text())
    assert {t["participant_id"] for t in qa_all["tracks"]} == {u for u, *_ in PEOPLE}
    assert {t["participant_id"] for t in qa_cat["tracks"]} == {"cat"}
    assert {p["participant_id"] for p in qa_cat["timeline"]["placements"]} == {"cat"}
    # The selection's mix holds the cat's tone only.
    dec = decode_audio(mine)
    for user, _, _, _, freq, *_ in PEOPLE:
        found = tone_onsets(dec.samples, dec.rate, freq)
        assert bool(found) == (user == "cat"), (user, found)


def test_the_qa_report_lists_and_draws_silence_apart_from_loss(tmp_path: Path) -> None:
    from helpers.gst import opus_packets
    from PIL import Image

    packets = opus_packets(6.0, dtx=True, tone_bursts=((1.0, 4.0, 440.0),))
    ts0 = int.from_bytes(packets[0][4:8], "big")
    # One lost packet at 2 s and a burst of 200 ms at 4 s, both inside the tone.
    kept = [
        p
        for p in packets
        if not (2000 <= (int.from_bytes(p[4:8], "big") - ts0) / 48 < 2020)
        and not (4000 <= (int.from_bytes(p[4:8], "big") - ts0) / 48 < 4200)
    ]
    info = build_recording(
        tmp_path / "rec",
        [SessionSpec("ann", "s1", [TrackSpec("audio", "opus", packets=kept, sender_reports=None)])],
    )
    out = tmp_path / "out"
    proc = rawcore("process-all", "--input-dir", info.root, "-o", out)
    assert proc.returncode == 0, proc.stderr
    (track,) = json.loads((out / "qa_report.json").read_text())["tracks"]
    first = info.sessions[0].tracks[0].first_arrival_unix_ms
    assert first is not None
    losses = [(e["start_unix_ms"] - first, e["end_unix_ms"] - first)
              for e in track["events"] if e["kind"] == "loss"]  # fmt: skip
    assert len(losses) == 2, track["events"]
    assert losses[0][0] == pytest.approx(1980, abs=30) and losses[1][1] == pytest.approx(
        4200, abs=30
    )
    silences = [e for e in track["events"] if e["kind"] == "silence"]
    assert silences and track["silent_ms"] >= 1000 and track["lost_ms"] < 400
    # The picture: the single 20 ms loss is still a visible red mark on the lane.
    img = Image.open(out / "qa_timeline.png").convert("RGB")
    red = [
        (x, y)
        for x in range(img.width)
        for y in range(40, img.height - 30)
        if img.getpixel((x, y)) == (214, 48, 49)
    ]
    columns = sorted({x for x, _ in red})
    assert columns and len([c for c in columns if c + 1 not in columns]) == 2  # two marks


def test_a_video_loss_holds_the_picture_in_every_output_and_the_qa_report(tmp_path: Path) -> None:
    """One frame lost 1.33 s into a camera track: the video and A/V files hold the last picture
    until the keyframe at 3 s (or, with --on-loss black, show black), say so in the manifest,
    and the QA report draws the freeze (or the keyframe wait)."""
    from helpers.video_truth import video_packets

    packets, frames = video_packets("vp8", 4.0, fps=15, flashes=None)
    lost = set(frames[20].seqs)
    kept = [p for p in packets if int.from_bytes(p[2:4], "big") not in lost]
    info = build_recording(
        tmp_path / "rec",
        [
            SessionSpec(
                "ann",
                "s1",
                [
                    TrackSpec("audio", "opus", source=OpusSource(4.0)),
                    TrackSpec("video", "vp8", packets=kept),
                ],
            )
        ],
    )
    wait = (20 / 15, 3.0)
    for mode, kind in (("freeze", "freeze"), ("black", "keyframe_wait")):
        out = tmp_path / mode
        proc = rawcore("process-all", "--input-dir", info.root, "-o", out, "--on-loss", mode)
        assert proc.returncode == 0, proc.stderr
        outputs = json.loads((out / "manifest.json").read_text())["outputs"]
        videos = [o for o in outputs if o["kind"] in ("video", "av")]
        assert sorted(o["kind"] for o in videos) == ["av", "video"]
        for o in videos:
            (event,) = o["events"]
            assert event[2] == kind, (mode, o["events"])
            offset = 0 if o["kind"] == "video" else round(o["av_offset_ms"] or 0)
            start = event[0] + min(0, offset)
            assert start == pytest.approx(wait[0] * 1000, abs=70), (mode, o["path"], event)
            assert o["frozen_ms"] == (pytest.approx(1667, abs=70) if mode == "freeze" else 0)
            assert (o["fill_frames"] > 0) == (mode == "black")
            dec = decode_video(out / o["path"])
            assert dec.errors == 0
            # The last frame is held to the video's end: 60 frames at 15 fps.
            assert dec.container_duration_s == pytest.approx(4.0, abs=0.1)
        (track,) = [
            t for t in json.loads((out / "qa_report.json").read_text())["tracks"]
            if t["kind"] == "video"
        ]  # fmt: skip
        # Drawn once, from the video file (the A/V file holds the same track).
        (drawn,) = [e for e in track["events"] if e["kind"] == kind]
        assert drawn["end_unix_ms"] - drawn["start_unix_ms"] == pytest.approx(1667, abs=70)
        assert track["frozen_ms"] == (pytest.approx(1667, abs=70) if mode == "freeze" else 0)
