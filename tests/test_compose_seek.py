"""`rawcore compose` over a part of a long call, and `replace` edits beside a screen share.

A range (or the scene's clip) late in a call seeks into every track rather than decoding it
from its start: the output is checked on decoded frames and samples (flash and beep where the
range puts them, A/V offset), and the decoding work is read from the report's counters, so a
clip costs about its own length wherever it sits. Replacing a participant's video swaps their
camera only: their screen share stays as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.scene_media import (
    RATE,
    decode_audio,
    decode_video,
    onsets,
    opus_mkv,
    solid_video,
    tone,
    wav,
    write_scene,
)
from rawcore._core import rgb_to_yuv
from rawcore.pipeline.compose import compose

W, H, FPS = 160, 120, 30
CALL_S = 60
#: The tracks' keyframe interval (frames): seeking lands on the keyframe before the range.
GOP = 60
FLASHES_S = (10.0, 50.0)
CLIP_MS = 3_000
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
TOL = 10


@pytest.fixture(scope="module")
def long_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("long-call")
    flashes = [round(s * 1000) for s in FLASHES_S]
    solid_video(d / "cam.mkv", (W, H), FPS, CALL_S, RED, flashes_ms=flashes, gop=GOP)
    beeps = tone(CALL_S, [(s, 0.1, 1000.0) for s in FLASHES_S])
    wav(d / "voice.wav", beeps)
    opus_mkv(d / "voice.mkv", beeps)
    return d


def _scene(folder: Path, audio: str) -> Path:
    dur = CALL_S * 1000
    return write_scene(
        folder,
        {
            "duration_ms": dur,
            "canvas": {"width": W, "height": H, "fps": FPS},
            "tracks": [
                {
                    "participant_id": "a",
                    "kind": "video",
                    "path": "cam.mkv",
                    "start_ms": 0,
                    "duration_ms": dur,
                },
                {
                    "participant_id": "a",
                    "kind": "audio",
                    "path": audio,
                    "start_ms": 0,
                    "duration_ms": dur,
                },
            ],
            "layout": [
                {"t_ms": 0, "hosts": [{"participant_id": "a", "x": 0, "y": 0, "w": 1, "h": 1}]}
            ],
        },
    )


def _flashes(out: Path) -> list[float]:
    frames, times = decode_video(out)
    return [t for f, t in zip(frames, times, strict=True) if f[H // 2, W // 2] > 200]


@pytest.mark.parametrize("audio", ["voice.wav", "voice.mkv"], ids=["wav", "opus-in-matroska"])
def test_a_clip_late_in_a_call_is_exact_and_costs_what_an_early_one_does(
    long_call: Path, tmp_path: Path, audio: str
) -> None:
    """The same 3 s around a flash+beep, once near the start and once near the end of a 60 s
    call: both show the flash and the beep 1 s in (±½ frame, ±10 ms, A/V ≤ 20 ms), and the
    late one decodes no more than the early one plus a keyframe interval, far less than the
    50 s before it."""
    for f in long_call.iterdir():
        (tmp_path / f.name).symlink_to(f)
    scene = _scene(tmp_path, audio)
    work = {}
    for at_s in FLASHES_S:
        start = round((at_s - 1) * 1000)
        out = tmp_path / f"clip-{start}.mp4"
        report = compose(scene, out, range_ms=(start, start + CLIP_MS))
        flashes = _flashes(out)
        beeps = onsets(decode_audio(out), 1000.0)
        assert flashes == pytest.approx([1.0], abs=0.5 / FPS), at_s
        assert beeps == pytest.approx([1.0], abs=0.010), at_s
        assert abs(flashes[0] - beeps[0]) <= 0.020, f"A/V offset at {at_s} s"
        work[at_s] = (report.decoded_video_frames, report.decoded_audio_samples)
    (early_v, early_a), (late_v, late_a) = work[FLASHES_S[0]], work[FLASHES_S[1]]
    clip_frames = CLIP_MS * FPS // 1000
    # A keyframe interval before the range at most, and the few frames decoded ahead.
    assert clip_frames <= late_v <= clip_frames + GOP + 20, work
    assert late_v <= early_v + GOP, work
    # The range, the seek's landing (Matroska seeks by cluster: up to 5 s in FFmpeg's audio
    # files) and the blocks decoded ahead: seconds, not the 49 before.
    assert CLIP_MS * RATE // 1000 <= late_a <= 15 * RATE, work
    assert late_a <= early_a + RATE, work


def test_a_range_across_a_long_unseen_stretch_seeks_instead_of_decoding_it(
    long_call: Path, tmp_path: Path
) -> None:
    """A host off the layout from 5 s to 49 s: when they show again their camera seeks to
    the keyframe before 49 s (the flash at 50 s shows on time) rather than decoding the 44 s
    they were away."""
    for f in long_call.iterdir():
        (tmp_path / f.name).symlink_to(f)
    doc = json.loads(_scene(tmp_path, "voice.wav").read_text())
    full = [{"participant_id": "a", "x": 0, "y": 0, "w": 1, "h": 1}]
    doc["layout"] = [
        {"t_ms": 0, "hosts": full},
        {"t_ms": 5000, "hosts": []},
        {"t_ms": 49_000, "hosts": full},
    ]
    (tmp_path / "scene.json").write_text(json.dumps(doc))
    out = tmp_path / "out.mp4"
    report = compose(tmp_path / "scene.json", out, range_ms=(4000, 52_000))
    assert _flashes(out) == pytest.approx([46.0], abs=0.5 / FPS)
    shown = (1 + 3) * FPS  # 4-5 s and 49-52 s
    assert report.decoded_video_frames <= shown + GOP + 20, report


# --- replace: the camera, never the screen share -------------------------------------------


@pytest.mark.parametrize(
    ("case", "replaced", "want_camera", "want_screen"),
    [
        ("replace-video-swaps-the-camera", True, GREEN, BLUE),
        ("no-edit-shows-both-sources", False, RED, BLUE),
    ],
)
def test_replacing_video_swaps_the_camera_and_keeps_the_screen_share(
    tmp_path: Path,
    case: str,
    replaced: bool,
    want_camera: tuple[int, int, int],
    want_screen: tuple[int, int, int],
) -> None:
    """Alice has a camera (red) and a screen share (blue) side by side; `replace.video`
    (green) takes the camera's place only."""
    solid_video(tmp_path / "cam.mkv", (W, H), FPS, 2, RED)
    solid_video(tmp_path / "screen.mkv", (W * 2, H * 2), FPS, 2, BLUE)
    solid_video(tmp_path / "other.mkv", (W, H), FPS, 2, GREEN)
    track: dict[str, Any] = {
        "participant_id": "alice",
        "kind": "video",
        "start_ms": 0,
        "duration_ms": 2000,
    }
    scene = write_scene(
        tmp_path,
        {
            "duration_ms": 2000,
            "canvas": {"width": W * 2, "height": H, "fps": FPS},
            "tracks": [
                {**track, "path": "cam.mkv", "source": "camera"},
                {**track, "path": "screen.mkv", "source": "screen"},
            ],
            "layout": [
                {
                    "t_ms": 0,
                    "hosts": [
                        {
                            "participant_id": "alice",
                            "source": "camera",
                            "x": 0,
                            "y": 0,
                            "w": 0.5,
                            "h": 1,
                        },
                        {
                            "participant_id": "alice",
                            "source": "screen",
                            "x": 0.5,
                            "y": 0,
                            "w": 0.5,
                            "h": 1,
                        },
                    ],
                }
            ],
        },
    )
    edits = None
    if replaced:
        edits = tmp_path / "edits.json"
        doc = {"participants": {"alice": {"replace": {"video": {"path": "other.mkv"}}}}}
        edits.write_text(json.dumps(doc))
    compose(scene, tmp_path / "out.mp4", edits_path=edits)
    frames, _ = decode_video(tmp_path / "out.mp4")
    for f in (frames[0], frames[len(frames) // 2], frames[-1]):
        assert abs(int(f[H // 2, W // 2]) - rgb_to_yuv(*want_camera)[0]) <= TOL, case
        assert abs(int(f[H // 2, W + W // 2]) - rgb_to_yuv(*want_screen)[0]) <= TOL, case


def test_a_track_that_cannot_seek_is_decoded_from_its_start(
    long_call: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the demuxer refuses the seek (here: every seeking graph fails to open), the voice
    is decoded from its start instead: the clip is still right, only dearer."""
    import av

    real_open = av.open

    def no_seek(target: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("format") == "lavfi" and ":sp=" in str(target):
            raise OSError("seek refused")
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(av, "open", no_seek)
    for f in long_call.iterdir():
        (tmp_path / f.name).symlink_to(f)
    out = tmp_path / "clip.mp4"
    report = compose(_scene(tmp_path, "voice.mkv"), out, range_ms=(49_000, 52_000))
    assert onsets(decode_audio(out), 1000.0) == pytest.approx([1.0], abs=0.010)
    assert report.decoded_audio_samples >= 49 * RATE, "decoded from the start"
