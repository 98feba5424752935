"""`rawcore compose`: scenes with known tiles, flashes and beeps, rendered and decoded back.

Track files are written here with PyAV (solid colours with flash frames, sine beeps) into a
scene folder with a hand-written scene.json; every check is on the decoded MP4.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.scene_media import (
    RATE,
    decode_audio,
    decode_video,
    onsets,
    solid_video,
    tone,
    wav,
    write_scene,
)
from rawcore._core import rgb_to_yuv
from rawcore.errors import SceneError
from rawcore.pipeline.compose import compose
from rawcore.pipeline.compose.feeds import tile_color

W, H, FPS = 320, 240, 30
RED, BLUE, GREY = (255, 0, 0), (0, 0, 255), (128, 128, 128)
#: Flat areas survive x264 at the default CRF within this many code values.
TOL = 10


def y_of(rgb: tuple[int, int, int]) -> int:
    return rgb_to_yuv(*rgb)[0]


def track(pid: str, kind: str, path: str, start: int = 0, dur: int = 6000) -> dict[str, Any]:
    return {
        "participant_id": pid,
        "kind": kind,
        "path": path,
        "start_ms": start,
        "duration_ms": dur,
    }


def host(pid: str, x: float, y: float, w: float, h: float, **kw: Any) -> dict[str, Any]:
    return {"participant_id": pid, "x": x, "y": y, "w": w, "h": h, **kw}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("compose-media")
    solid_video(d / "red.mkv", (160, 120), FPS, 6, RED, flashes_ms=[500, 2500, 4000])
    solid_video(d / "blue.mkv", (120, 160), FPS, 6, BLUE)
    beeps = [(0.5, 0.1, 1000.0), (2.5, 0.1, 1000.0), (4.0, 0.1, 1000.0)]
    wav(d / "beeps.wav", tone(6, beeps))
    wav(d / "steady.wav", tone(6, [(0.0, 6.0, 500.0)], amp=0.25))
    wav(d / "other.wav", tone(6, [(0.0, 6.0, 2000.0)], amp=0.25))
    # 300 Hz: at 1001 ms and 2012 ms its phase is far from a zero crossing, so a hard cut there
    # would jump.
    wav(d / "hum.wav", tone(6, [(0.0, 6.0, 300.0)], amp=0.25))
    return d


def scene_in(folder: Path, media: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in media.iterdir():
        target = folder / f.name
        if not target.exists():
            target.symlink_to(f)
    base = {"duration_ms": 6000, "canvas": {"width": W, "height": H, "fps": FPS}}
    return write_scene(folder, {**base, **doc})


# --- video: boxes, shapes, layout changes ---------------------------------------------------

LAYOUTS = [
    {
        "t_ms": 0,
        "hosts": [
            host("alice", 0, 0, 0.5, 1),
            host("bob", 0.5, 0.25, 0.5, 0.5, shape="circle", z=1),
        ],
    },
    {
        "t_ms": 1000,
        "hosts": [
            host("bob", 0, 0, 0.5, 1),
            host("alice", 0.55, 0.1, 0.4, 0.5, shape="rounded", radius=0.1),
        ],
    },
    {
        # Not on a frame boundary: 2033 ms falls inside frame 60 (2000-2033.3), so frame 61
        # (2033.3 ms) is the first to show it.
        "t_ms": 2033,
        "hosts": [
            host("alice", 0.25, 0.25, 0.5, 0.5, shape="circle"),
            host("bob", 0.0, 0.0, 0.25, 0.25, z=2),
        ],
    },
]


def box_px(h: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        round(h["x"] * W),
        round(h["y"] * H),
        round((h["x"] + h["w"]) * W),
        round((h["y"] + h["h"]) * H),
    )


def inside(h: dict[str, Any], x: float, y: float) -> bool:
    """Whether pixel centre (x, y) is inside host `h`'s shape, 3 px clear of its outline."""
    x0, y0, x1, y1 = box_px(h)
    m = 3
    if h.get("shape") == "circle":
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
        return math.hypot(x - cx, y - cy) < r - m
    if not (x0 + m < x < x1 - m and y0 + m < y < y1 - m):
        return False
    if h.get("shape") == "rounded":
        r = h["radius"] * min(W, H)
        qx = max(abs(x - (x0 + x1) / 2) - ((x1 - x0) / 2 - r), 0.0)
        qy = max(abs(y - (y0 + y1) / 2) - ((y1 - y0) / 2 - r), 0.0)
        return math.hypot(qx, qy) < r - m
    return True


def outside(h: dict[str, Any], x: float, y: float) -> bool:
    """Whether pixel centre (x, y) is clear of host `h`'s shape by 3 px."""
    x0, y0, x1, y1 = box_px(h)
    m = 3
    if h.get("shape") == "circle":
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
        return math.hypot(x - cx, y - cy) > r + m
    if h.get("shape") == "rounded":
        r = h["radius"] * min(W, H)
        qx = max(abs(x - (x0 + x1) / 2) - ((x1 - x0) / 2 - r), 0.0)
        qy = max(abs(y - (y0 + y1) / 2) - ((y1 - y0) / 2 - r), 0.0)
        if (x0 - m < x < x1 + m) and (y0 - m < y < y1 + m) and not (qx > 0 and qy > 0):
            return False
        return not (qx > 0 and qy > 0) or math.hypot(qx, qy) > r + m
    return not (x0 - m < x < x1 + m and y0 - m < y < y1 + m)


def expected_y(layout: dict[str, Any], x: float, y: float) -> int | None:
    """The luma pixel (x, y) should have under `layout`, None where an edge makes it vague."""
    colour = {"alice": RED, "bob": BLUE}
    value: int | None = y_of(GREY)
    for h in sorted(layout["hosts"], key=lambda h: h.get("z", 0)):
        if inside(h, x, y):
            value = y_of(colour[h["participant_id"]])
        elif not outside(h, x, y):
            value = None
    return value


@pytest.fixture(scope="module")
def layout_render(media: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], Path]:
    folder = tmp_path_factory.mktemp("layout")
    scene = scene_in(
        folder,
        media,
        {
            "backgrounds": [{"t_ms": 0, "color": "#808080"}],
            "tracks": [track("alice", "video", "red.mkv"), track("bob", "video", "blue.mkv")],
            "layout": LAYOUTS,
            "duration_ms": 3000,
        },
    )
    compose(scene, folder / "out.mp4")
    frames, _ = decode_video(folder / "out.mp4")
    return frames, folder


@pytest.mark.parametrize(
    ("name", "frame", "layout"),
    [
        ("first frame", 0, 0),
        ("last frame before the change at 1000 ms", 29, 0),
        ("frame of the change at 1000 ms", 30, 1),
        ("frame before the change at 2033 ms", 60, 1),
        ("first frame after 2033 ms", 61, 2),
        ("last frame", 89, 2),
    ],
)
def test_every_box_and_the_background_are_right_from_the_exact_frame(
    layout_render: tuple[list[Any], Path], name: str, frame: int, layout: int
) -> None:
    frames, _ = layout_render
    img = frames[frame]
    wrong = []
    checked = 0
    for y in range(2, H, 6):
        for x in range(2, W, 6):
            want = expected_y(LAYOUTS[layout], x + 0.5, y + 0.5)
            if want is None:
                continue
            checked += 1
            got = int(img[y, x])
            if abs(got - want) > TOL:
                wrong.append((x, y, got, want))
    assert checked > 1500
    assert not wrong, f"{name}: {len(wrong)} wrong samples, e.g. {wrong[:5]}"


def edge_crossing(row: Any, lo: int, hi: int, level: float) -> float:
    """The x (pixel-centre coordinates) where `row` crosses `level` between lo and hi."""
    for x in range(lo, hi):
        a, b = float(row[x]), float(row[x + 1])
        if (a - level) * (b - level) <= 0 and a != b:
            return x + 0.5 + (level - a) / (b - a)
    raise AssertionError("no crossing")


@pytest.mark.parametrize(
    ("name", "frame", "h"),
    [
        ("circle of bob at t=0", 0, LAYOUTS[0]["hosts"][1]),
        ("circle of alice after 2033 ms", 70, LAYOUTS[2]["hosts"][0]),
    ],
)
def test_circle_edges_are_within_one_pixel(
    layout_render: tuple[list[Any], Path], name: str, frame: int, h: dict[str, Any]
) -> None:
    frames, _ = layout_render
    x0, y0, x1, y1 = box_px(h)
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
    img = frames[frame][:H].astype(float)
    fill = img[int(cy), int(cx)]
    level = (fill + y_of(GREY)) / 2
    for dy in (-0.6, -0.3, 0.0, 0.3, 0.6):  # rows through the circle at several heights
        row_y = int(cy + dy * r)
        yc = row_y + 0.5
        half = math.sqrt(max(0.0, r * r - (yc - cy) ** 2))
        row = img[row_y]
        left = edge_crossing(row, int(cx - half) - 4, int(cx), level)
        right = edge_crossing(row, int(cx), int(cx + half) + 4, level)
        assert abs(left - (cx - half)) <= 1.0, f"{name}: left edge {left} vs {cx - half}"
        assert abs(right - (cx + half)) <= 1.0, f"{name}: right edge {right} vs {cx + half}"


def test_a_host_without_picture_shows_its_tile_then_its_video(media: Path, tmp_path: Path) -> None:
    """Carol has no video at all: her tile. Dave's camera starts at 1000 ms: his tile before
    it, his picture after; never black or garbage."""
    scene = scene_in(
        tmp_path,
        media,
        {
            "duration_ms": 2000,
            "backgrounds": [{"t_ms": 0, "color": "#000000"}],
            "tracks": [
                track("dave", "video", "red.mkv", start=1000, dur=1000),
                {**track("carol", "audio", "steady.wav"), "name": "Carol Singer"},
            ],
            "layout": [
                {"t_ms": 0, "hosts": [host("carol", 0, 0, 0.5, 1), host("dave", 0.5, 0, 0.5, 1)]}
            ],
        },
    )
    compose(scene, tmp_path / "out.mp4")
    frames, _ = decode_video(tmp_path / "out.mp4")
    for pid, x, n, want in [
        ("carol", 10, 5, y_of(tile_color("carol"))),
        ("carol", 10, 45, y_of(tile_color("carol"))),
        ("dave", 170, 5, y_of(tile_color("dave"))),
        ("dave", 170, 50, y_of(RED)),  # file time 500 ms is a flash
    ]:
        assert abs(int(frames[n][10, x]) - want) <= TOL, (pid, n)
    # The initials are drawn in the tile's middle: light pixels there, none at its corner.
    carol = frames[5][:H, :160]
    assert carol[100:140, 50:110].max() > 180 > carol[0:20, 0:20].max()


# --- pause trimming ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trimmed(media: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pauses")
    scene = scene_in(
        folder,
        media,
        {
            "backgrounds": [{"t_ms": 0, "color": "#808080"}],
            "tracks": [track("alice", "video", "red.mkv"), track("alice", "audio", "beeps.wav")],
            "layout": [{"t_ms": 0, "hosts": [host("alice", 0, 0, 1, 1)]}],
            "pauses": [{"start_ms": 1000, "end_ms": 2000}, {"start_ms": 3000, "end_ms": 3500}],
        },
    )
    compose(scene, folder / "out.mp4", trim_pauses=True)
    return scene, folder / "out.mp4"


def flash_times(path: Path) -> list[float]:
    frames, times = decode_video(path)
    return [t for f, t in zip(frames, times, strict=True) if f[H // 2, W // 2] > 200]


def test_flashes_and_beeps_after_pauses_land_at_their_time_minus_the_pauses(
    trimmed: tuple[Path, Path],
) -> None:
    _, out = trimmed
    want = [0.5, 2.5 - 1.0, 4.0 - 1.5]  # scene times minus the pauses before them
    flashes = flash_times(out)
    beeps = onsets(decode_audio(out), 1000.0)
    assert flashes == pytest.approx(want, abs=0.5 / FPS)
    assert beeps == pytest.approx(want, abs=0.010)
    for f, b in zip(flashes, beeps, strict=True):
        assert abs(f - b) <= 0.020, "A/V offset after a cut"


def test_the_trimmed_output_is_the_scene_minus_its_pauses(trimmed: tuple[Path, Path]) -> None:
    _, out = trimmed
    _, times = decode_video(out)
    video_s = times[-1] + 1 / FPS
    audio_s = len(decode_audio(out)) / RATE
    assert abs(video_s - 4.5) <= 1 / FPS
    assert abs(audio_s - 4.5) <= 1 / FPS


def test_cuts_do_not_click(media: Path, tmp_path: Path) -> None:
    """A steady tone cut mid-cycle: the crossfade keeps every step between samples small."""
    scene = scene_in(
        tmp_path,
        media,
        {
            "tracks": [track("alice", "audio", "hum.wav")],
            "pauses": [{"start_ms": 1001, "end_ms": 2012}],
            "duration_ms": 3000,
        },
    )
    compose(scene, tmp_path / "out.mp4", trim_pauses=True)
    x = decode_audio(tmp_path / "out.mp4")
    steady_step = 0.25 * 2 * math.pi * 300 / RATE
    cut = round(1.001 * RATE)
    assert np.abs(np.diff(x[cut - 960 : cut + 960])).max() < 2.5 * steady_step


def test_range_is_in_original_time_before_the_cuts(media: Path, tmp_path: Path) -> None:
    scene = scene_in(
        tmp_path,
        media,
        {
            "tracks": [track("alice", "video", "red.mkv"), track("alice", "audio", "beeps.wav")],
            "layout": [{"t_ms": 0, "hosts": [host("alice", 0, 0, 1, 1)]}],
            "pauses": [{"start_ms": 3000, "end_ms": 3500}],
        },
    )
    compose(scene, tmp_path / "out.mp4", trim_pauses=True, range_ms=(2000, 5000))
    assert flash_times(tmp_path / "out.mp4") == pytest.approx([0.5, 1.5], abs=0.5 / FPS)
    assert onsets(decode_audio(tmp_path / "out.mp4"), 1000.0) == pytest.approx(
        [0.5, 1.5], abs=0.010
    )


# --- edits -------------------------------------------------------------------------------------


def rms_db(x: Any) -> float:
    return 20 * math.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-9))


def tone_level_db(x: Any, freq: float, start_s: float, end_s: float) -> float:
    """Level of `freq` in a stretch (dB, a sine of amplitude 1 at 0)."""
    seg = x[round(start_s * RATE) : round(end_s * RATE)].astype(np.float64)
    t = np.arange(len(seg)) / RATE
    c = np.abs(np.sum(seg * np.exp(-2j * np.pi * freq * t))) * 2 / len(seg)
    return 20 * math.log10(max(float(c), 1e-9))


def test_edits_gain_trim_mute_and_replace(media: Path, tmp_path: Path) -> None:
    doc = {
        "tracks": [
            track("alice", "audio", "steady.wav"),
            track("bob", "audio", "beeps.wav"),
            track("carol", "audio", "beeps.wav"),
        ],
        "duration_ms": 3000,
    }
    scene = scene_in(tmp_path, media, doc)
    compose(scene, tmp_path / "plain.mp4")
    edits = {
        "schema": "rawcore.edits/1",
        "participants": {
            "alice": {"gain_db": -6, "trim": [{"start_ms": 1000, "end_ms": 2000}]},
            "bob": {"replace": {"audio": {"path": "other.wav", "offset_ms": 0}}},
            "carol": {"mute": True},
        },
    }
    (tmp_path / "edits.json").write_text(json.dumps(edits))
    compose(scene, tmp_path / "edited.mp4", edits_path=tmp_path / "edits.json")
    plain, edited = decode_audio(tmp_path / "plain.mp4"), decode_audio(tmp_path / "edited.mp4")
    gain = tone_level_db(edited, 500, 0.2, 0.45) - tone_level_db(plain, 500, 0.2, 0.45)
    assert gain == pytest.approx(-6.0, abs=0.5)
    assert tone_level_db(plain, 500, 1.05, 1.95) > -20
    assert tone_level_db(edited, 500, 1.05, 1.95) < -60, "alice silent in her trimmed range"
    assert tone_level_db(edited, 500, 2.05, 2.95) > -20, "and back after it"
    assert tone_level_db(plain, 2000, 0.1, 2.9) < -60
    assert tone_level_db(edited, 2000, 0.1, 2.9) > -20, "bob's replacement is there"
    for start in (0.5, 2.5):  # the beeps were bob's (replaced) and carol's (muted)
        assert tone_level_db(plain, 1000, start, start + 0.1) > -20
        assert tone_level_db(edited, 1000, start, start + 0.1) < -50


# --- hostile scenes ----------------------------------------------------------------------------

HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    (
        "a box outside the canvas",
        {"layout": [{"t_ms": 0, "hosts": [host("alice", 0.8, 0, 0.5, 0.5)]}]},
        "outside the canvas",
    ),
    (
        "a box of zero size",
        {"layout": [{"t_ms": 0, "hosts": [host("alice", 0.1, 0.1, 0, 0.5)]}]},
        "positive width",
    ),
    ("a missing track file", {"tracks": [track("alice", "video", "gone.mkv")]}, "no such file"),
    (
        "a 100k x 100k canvas",
        {"canvas": {"width": 100_000, "height": 100_000, "fps": 30}},
        "outside",
    ),
    ("a range past the end", {"_range": (5000, 9000)}, "not inside the scene"),
    ("a clip the scene lacks", {"_clip": True}, "no clip"),
    ("an unknown participant in the edits", {"_edits": {"participants": {"zed": {}}}}, "zed"),
    (
        "a gain out of range",
        {
            "_edits": {"participants": {"alice": {"gain_db": 400}}},
            "tracks": [track("alice", "audio", "beeps.wav")],
        },
        "gain_db",
    ),
]


@pytest.mark.parametrize(("name", "doc", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_scenes_fail_clearly_before_any_work(
    media: Path, tmp_path: Path, name: str, doc: dict[str, Any], message: str
) -> None:
    doc = dict(doc)
    range_ms = doc.pop("_range", None)
    clip = doc.pop("_clip", False)
    edits = doc.pop("_edits", None)
    edits_path = None
    if edits is not None:
        edits_path = tmp_path / "edits.json"
        edits_path.write_text(json.dumps(edits))
    scene = scene_in(tmp_path, media, doc)
    out = tmp_path / "out" / "x.mp4"
    with pytest.raises(SceneError, match=message):
        compose(scene, out, range_ms=range_ms, clip=clip, edits_path=edits_path)
    assert not out.parent.exists() or not list(out.parent.iterdir()), "nothing written"


def test_ten_thousand_layout_changes_render(media: Path, tmp_path: Path) -> None:
    """A change every millisecond: each frame shows the keyframe in force at its instant."""
    layout = [
        {"t_ms": t, "hosts": [host("alice", 0 if (t // 100) % 2 == 0 else 0.5, 0, 0.5, 1)]}
        for t in range(10_000)
    ]
    scene = scene_in(
        tmp_path,
        media,
        {
            "duration_ms": 10_000,
            "canvas": {"width": 64, "height": 48, "fps": 10},
            "tracks": [track("alice", "video", "blue.mkv", dur=6000)],
            "layout": layout,
        },
    )
    compose(scene, tmp_path / "out.mp4", preset="fast")
    frames, _ = decode_video(tmp_path / "out.mp4")
    assert len(frames) == 100
    for n in (0, 1, 2, 7):  # frame n at n*100 ms: left half when n is even
        left = abs(int(frames[n][24, 8]) - y_of(BLUE)) <= TOL
        assert left == (n % 2 == 0), n


# --- the command line --------------------------------------------------------------------------


def test_cli_prints_the_output_and_fails_in_one_line(media: Path, tmp_path: Path) -> None:
    scene = scene_in(
        tmp_path,
        media,
        {"duration_ms": 1000, "tracks": [track("alice", "audio", "beeps.wav")]},
    )
    run = [sys.executable, "-m", "rawcore", "compose", "--scene", str(scene)]
    ok = subprocess.run([*run, "-o", str(tmp_path / "o.mp4"), "--preset", "fast"],
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(tmp_path / "o.mp4")
    bad = subprocess.run([*run, "-o", str(tmp_path / "p.mp4"), "--range", "900-5000"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode == 3
    assert bad.stderr.count("\n") == 1 and "not inside the scene" in bad.stderr
    assert not (tmp_path / "p.mp4").exists()


def test_background_image_covers_the_canvas_and_a_replaced_video_shows(
    media: Path, tmp_path: Path
) -> None:
    """A 300x100 image (thirds green, blue, white) covers the 320x240 canvas: scaled by 2.4
    to 720x240 and cropped to its middle 320 columns, so green shows on canvas columns 0-40,
    blue 40-280, white 280-320 (stretched, green would reach 107). Bob's camera is replaced by
    the red file."""
    from PIL import Image

    img = Image.new("RGB", (300, 100), BLUE)
    img.paste(Image.new("RGB", (100, 100), (0, 255, 0)), (0, 0))
    img.paste(Image.new("RGB", (100, 100), (255, 255, 255)), (200, 0))
    folder = tmp_path / "p"
    scene = scene_in(
        folder,
        media,
        {
            "duration_ms": 1000,
            "backgrounds": [{"t_ms": 0, "image": "bg.png"}],
            "tracks": [track("bob", "video", "blue.mkv", dur=1000)],
            "layout": [{"t_ms": 0, "hosts": [host("bob", 0.375, 0.75, 0.25, 0.25)]}],
        },
    )
    img.save(folder / "bg.png")
    edits = {"participants": {"bob": {"replace": {"video": {"path": "red.mkv", "offset_ms": 0}}}}}
    (folder / "edits.json").write_text(json.dumps(edits))
    compose(scene, folder / "out.mp4", edits_path=folder / "edits.json")
    frames, _ = decode_video(folder / "out.mp4")
    f = frames[10]
    for x, rgb in [(20, (0, 255, 0)), (60, BLUE), (260, BLUE), (300, (255, 255, 255))]:
        assert abs(int(f[100, x]) - y_of(rgb)) <= TOL, x
    assert abs(int(f[220, 160]) - y_of(RED)) <= TOL, "bob's replacement video"


# --- the time map and the edits file, without rendering ------------------------------------


def _scene(pauses: list[tuple[int, int]], duration: int = 10_000) -> Any:
    from rawcore.pipeline.scene.model import scene_from_dict

    return scene_from_dict(
        {
            "recording_id": "r",
            "start_unix_ms": 0,
            "duration_ms": duration,
            "canvas": {"width": 64, "height": 48, "fps": 25},
            "tracks": [track("alice", "audio", "a.wav", dur=duration)],
            "pauses": [{"start_ms": a, "end_ms": b} for a, b in pauses],
        }
    )


@pytest.mark.parametrize(
    ("name", "pauses", "range_ms", "trim", "segments", "probes"),
    [
        ("no cuts: the identity", [(1000, 2000)], None, False, [(0, 10_000)], [(1500, 1500)]),
        (
            "pauses cut: later times move back by the pauses before them",
            [(1000, 2000), (5000, 5500)],
            None,
            True,
            [(0, 1000), (2000, 5000), (5500, 10_000)],
            [(999, 999), (1000, 2000), (3999, 4999), (4000, 5500), (4000.5, 5500.5)],
        ),
        (
            "a range in original time, a pause across its start",
            [(1000, 3000)],
            (2000, 6000),
            True,
            [(3000, 6000)],
            [(0, 3000), (2999, 5999)],
        ),
    ],
)
def test_time_map(
    name: str,
    pauses: list[tuple[int, int]],
    range_ms: tuple[int, int] | None,
    trim: bool,
    segments: list[tuple[int, int]],
    probes: list[tuple[float, float]],
) -> None:
    from rawcore.pipeline.compose import build_time_map

    tm = build_time_map(_scene(pauses), range_ms=range_ms, trim_pauses=trim)
    assert [(s.scene_start_ms, s.scene_end_ms) for s in tm.segments] == segments, name
    assert tm.duration_ms == sum(b - a for a, b in segments)
    for out_ms, scene_ms in probes:
        assert tm.scene_ms(out_ms) == scene_ms, (name, out_ms)
        assert tm.out_ms(scene_ms) == out_ms, (name, scene_ms)


@pytest.mark.parametrize(
    ("name", "doc", "message"),
    [
        ("another schema", {"schema": "x/2"}, "schema"),
        ("not an object", [], "must be an object"),
        ("a gain that is a string", {"participants": {"alice": {"gain_db": "-6"}}}, "number"),
        ("mute not a bool", {"participants": {"alice": {"mute": 1}}}, "true or false"),
        (
            "a trim past the end",
            {"participants": {"alice": {"trim": [{"start_ms": 0, "end_ms": 99_999}]}}},
            "trim\\[0\\].end_ms",
        ),
        (
            "a replacement file that is not there",
            {"participants": {"alice": {"replace": {"audio": {"path": "nope.wav"}}}}},
            "no such file",
        ),
        ("an unknown field", {"participants": {"alice": {"volume": 3}}}, "volume"),
    ],
)
def test_bad_edits_are_one_clear_line(tmp_path: Path, name: str, doc: Any, message: str) -> None:
    from rawcore.pipeline.compose import load_edits

    path = tmp_path / "edits.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SceneError, match=message) as err:
        load_edits(path, _scene([]))
    assert "\n" not in str(err.value), name


def test_trim_edges_fade_without_a_click(media: Path, tmp_path: Path) -> None:
    """A steady tone trimmed from 1001 ms: silent inside, and no jump bigger than the tone's
    own steps at the edges."""
    scene = scene_in(
        tmp_path, media, {"tracks": [track("alice", "audio", "hum.wav")], "duration_ms": 3000}
    )
    edits = {"participants": {"alice": {"trim": [{"start_ms": 1001, "end_ms": 2012}]}}}
    (tmp_path / "edits.json").write_text(json.dumps(edits))
    compose(scene, tmp_path / "out.mp4", edits_path=tmp_path / "edits.json")
    x = decode_audio(tmp_path / "out.mp4")
    steady_step = 0.25 * 2 * math.pi * 300 / RATE
    for edge in (1.001, 2.012):
        at = round(edge * RATE)
        assert np.abs(np.diff(x[at - 960 : at + 960])).max() < 2.5 * steady_step, edge
    assert rms_db(x[round(1.010 * RATE) : round(2.000 * RATE)]) < -60


def test_a_track_that_is_not_media_fails_in_one_line_and_leaves_no_file(
    media: Path, tmp_path: Path
) -> None:
    from rawcore.errors import InputError

    (tmp_path / "junk.mkv").write_bytes(b"\x00not a video" * 100)
    scene = scene_in(
        tmp_path,
        media,
        {
            "duration_ms": 1000,
            "tracks": [track("alice", "video", "junk.mkv", dur=1000)],
            "layout": [{"t_ms": 0, "hosts": [host("alice", 0, 0, 1, 1)]}],
        },
    )
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"junk\.mkv") as err:
        compose(scene, out / "x.mp4")
    assert "\n" not in str(err.value)
    assert list(out.iterdir()) == [], "no partial file"
