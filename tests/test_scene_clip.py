"""Voice activity and the automatic clip: the rules on known activity, and the acceptance on a
generated call with known speech, one hook and a pause (activity decoded by the core)."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
import rawcore
from helpers.audio_truth import av_available, decode_audio
from helpers.gst import gst_available
from helpers.recording import (
    DEFAULT_CALL_START,
    OpusSource,
    SessionSpec,
    TrackSpec,
    build_recording,
)
from rawcore import _core
from rawcore.media.audio import extract_audio, plan_audio
from rawcore.media.outputs import Selection, open_archive_of
from rawcore.pipeline.scene.build import build_scene_project
from rawcore.pipeline.scene.layout import Feed, auto_layout, hosts_for
from rawcore.pipeline.scene.model import Hook, Interval
from rawcore.pipeline.scene.speech import (
    GAP_MS,
    MAX_CLIP_MS,
    MIN_CLIP_MS,
    SLOT_MS,
    choose_clip,
    sentence_gaps,
)

T0 = round(DEFAULT_CALL_START.timestamp() * 1000)
PATH_MS = 20


def _active(duration_ms: int, speech: list[tuple[int, int]]) -> np.ndarray:
    active = np.zeros(duration_ms // SLOT_MS, dtype=np.bool_)
    for a, b in speech:
        active[a // SLOT_MS : b // SLOT_MS] = True
    return active


def _sentences(duration_ms: int, seed: int = 1) -> list[tuple[int, int]]:
    """Sentences of 2-6 s separated by 0.5-1.5 s of silence."""
    rng = random.Random(seed)
    out, t = [], 1000
    while t < duration_ms - 7000:
        length = rng.randrange(2000, 6000, SLOT_MS)
        out.append((t, t + length))
        t += length + rng.randrange(500, 1500, SLOT_MS)
    return out


def _in_silence(t: int, speech: list[tuple[int, int]], slack: int = 0) -> bool:
    """`t` lies in a silence of at least `GAP_MS` (the truth's spans, `slack` ms of tolerance)."""
    ends = [0] + [b for _, b in speech]
    starts = [a for a, _ in speech] + [10**12]
    return any(
        e - slack <= t <= s + slack and s - e >= GAP_MS for e, s in zip(ends, starts, strict=True)
    )


def _speech_in(a: int, b: int, speech: list[tuple[int, int]]) -> int:
    return sum(max(0, min(b, y) - max(a, x)) for x, y in speech)


# Each case: the rule at stake, pauses, hooks, and what the chosen clip must satisfy.
CASES = [
    ("no pause and no hook: the window with the most speech", [], [], None),
    ("never across a pause", [Interval(30_000, 31_000), Interval(70_000, 71_000)], [], None),
    ("containing the hook", [], [Hook("h1", "x", 100_000, 104_000)], "h1"),
    ("the hook and a pause together", [Interval(90_000, 92_000)],
     [Hook("h1", "x", 95_000, 99_000)], "h1"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "pauses", "hooks", "hook_id"), CASES, ids=[c[0] for c in CASES])
def test_the_clip_follows_every_rule(
    case: str, pauses: list[Interval], hooks: list[Hook], hook_id: str | None
) -> None:
    duration = 150_000
    speech = _sentences(duration)
    active = _active(duration, speech)
    clip, warnings = choose_clip(active, duration, pauses, hooks)
    assert clip is not None, (case, warnings)
    assert warnings == []
    assert MIN_CLIP_MS <= clip.end_ms - clip.start_ms <= MAX_CLIP_MS
    assert _in_silence(clip.start_ms, speech) and _in_silence(clip.end_ms, speech)
    assert not any(p.start_ms < clip.end_ms and p.end_ms > clip.start_ms for p in pauses)
    if hook_id is not None:
        hook = next(h for h in hooks if h.hook_id == hook_id)
        assert clip.start_ms <= hook.start_ms and hook.end_ms <= clip.end_ms
        assert f"hook {hook_id}" in clip.reason
    # No other window between sentence gaps that obeys the same rules holds more speech.
    points = [(a + b) // 2 for a, b in sentence_gaps(active)]
    best = _speech_in(clip.start_ms, clip.end_ms, speech)
    for a in points:
        for b in points:
            if not MIN_CLIP_MS <= b - a <= MAX_CLIP_MS:
                continue
            if any(p.start_ms < b and p.end_ms > a for p in pauses):
                continue
            if hooks and not any(a <= h.start_ms and h.end_ms <= b for h in hooks):
                continue
            assert _speech_in(a, b, speech) <= best + SLOT_MS * 2, (case, a, b)


@pytest.mark.parametrize(
    ("case", "duration", "speech", "hooks", "words"),
    [
        ("a recording under 30 s has no clip", 20_000, [(0, 20_000)], [], "under 30000 ms"),
        ("no sentence gap at all: no clip", 90_000, [(0, 90_000)], [], "no sentence gap"),
        ("a hook longer than a clip is given up, with a warning", 150_000, None,
         [Hook("h1", "x", 10_000, 80_000)], "holds no hook"),
    ],
)  # fmt: skip
def test_when_a_rule_cannot_hold_the_scene_says_so(
    case: str, duration: int, speech: list[tuple[int, int]] | None, hooks: list[Hook], words: str
) -> None:
    active = _active(duration, speech if speech is not None else _sentences(duration))
    _, warnings = choose_clip(active, duration, [], hooks)
    assert any(words in w for w in warnings), (case, warnings)


# --- the automatic layout's tiles --------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "live", "boxes"),
    [
        ("one camera fills the canvas", [("a", "camera")], [(0.0, 0.0, 1.0, 1.0)]),
        ("two cameras side by side", [("a", "camera"), ("b", "camera")],
         [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 0.5, 1.0)]),
        ("three cameras in a 2x2 grid", [("a", "camera"), ("b", "camera"), ("c", "camera")],
         [(0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 0.5, 0.5), (0.0, 0.5, 0.5, 0.5)]),
        ("a share large, the cameras in a column",
         [("a", "camera"), ("b", "screen"), ("c", "camera")],
         [(0.75, 0.0, 0.25, 0.5), (0.0, 0.0, 0.75, 1.0), (0.75, 0.5, 0.25, 0.5)]),
        ("a share alone fills the canvas", [("b", "screen")], [(0.0, 0.0, 1.0, 1.0)]),
    ],
)  # fmt: skip
def test_the_automatic_tiles(
    case: str, live: list[tuple[str, str]], boxes: list[tuple[float, float, float, float]]
) -> None:
    feeds = [Feed(p, s, i, 10_000) for i, (p, s) in enumerate(live)]  # type: ignore[arg-type]
    hosts = hosts_for(feeds)
    got = {(h.participant_id, h.source): (h.x, h.y, h.w, h.h) for h in hosts}
    assert got == dict(zip(live, boxes, strict=True)), case


def test_the_latest_share_is_large_and_a_leave_is_a_keyframe() -> None:
    feeds = [
        Feed("a", "camera", 0, 10_000),
        Feed("b", "screen", 1_000, 9_000),
        Feed("c", "screen", 3_000, 5_000),
    ]
    layout = auto_layout(feeds, 10_000)
    assert [k.t_ms for k in layout] == [0, 1_000, 3_000, 5_000, 9_000]
    large = [max(k.hosts, key=lambda h: h.w * h.h) for k in layout[1:4]]
    assert [h.participant_id for h in large] == ["b", "c", "b"]


# --- acceptance: a generated call ------------------------------------------------------------


needs_media = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)


@needs_media
def test_on_a_generated_call_the_clip_holds_the_hook_crosses_no_pause_and_cuts_in_silence(
    tmp_path: Path,
) -> None:
    duration_s = 100.0
    # A quiet stretch (55-75 s: one short remark) holds the hook, so the window with the most
    # speech overall (before it) is not the one that may be chosen.
    sentences = [
        (a, b) for a, b in _sentences(int(duration_s * 1000), seed=4) if b < 55_000 or a > 75_000
    ]
    sentences = sorted([*sentences, (63_000, 64_500)])
    # Two people take turns: even sentences are Ann's, odd ones Ben's.
    spans = {
        who: tuple(((a / 1000, (b - a) / 1000) for a, b in sentences[k::2]))
        for k, who in enumerate(("ann", "ben"))
    }
    build_recording(
        tmp_path / "rec",
        [
            SessionSpec(who, "s1", [TrackSpec("audio", "opus", source=src)])
            for who, src in ((w, OpusSource(duration_s, speech=s)) for w, s in spans.items())
        ],
    )  # fmt: skip
    hook, pause = (62_000, 66_000), (80_000, 84_000)
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"unix_ms": T0, "type": "recording_started"},
                {"unix_ms": T0 + hook[1], "type": "hook_hidden", "hook_id": "h1"},
                {"unix_ms": T0 + pause[0], "type": "paused"},
                {"unix_ms": T0 + hook[0], "type": "hook_shown", "hook_id": "h1", "text": "!"},
                {"unix_ms": T0 + pause[1], "type": "resumed"},
            ]
        )
    )
    with rawcore.open_recording(tmp_path / "rec") as rec:
        project = build_scene_project(rec, tmp_path / "project", events=events)
        jobs, _ = plan_audio(rec, Selection(), fmt="mkv", stitch=True)
    clip = project.scene.clip
    assert clip is not None, project.warnings
    truth = [(a + PATH_MS, b + PATH_MS) for a, b in sentences]
    assert MIN_CLIP_MS <= clip.end_ms - clip.start_ms <= MAX_CLIP_MS
    assert clip.start_ms <= hook[0] and hook[1] <= clip.end_ms
    assert clip.end_ms <= pause[0] or clip.start_ms >= pause[1]
    # Cut in the middle of a true silence of at least 300 ms (one slot of tolerance).
    assert _in_silence(clip.start_ms, truth, SLOT_MS), (clip, truth)
    assert _in_silence(clip.end_ms, truth, SLOT_MS), (clip, truth)
    assert "shows hook h1" in clip.reason
    assert len(jobs) == 2


@needs_media
def test_voice_activity_matches_the_decoded_extraction_slot_by_slot(tmp_path: Path) -> None:
    """The core's levels (Opus decoded at 8 kHz) against the RMS of every 20 ms of the file
    `extract-audio --stitch` writes, decoded by FFmpeg at 48 kHz: the same timeline, the same
    loudness; silent where the source is."""
    speech = ((1.0, 2.0), (4.5, 1.5))
    source = OpusSource(8, speech=speech)
    build_recording(
        tmp_path / "rec", [SessionSpec("ann", "s1", [TrackSpec("audio", "opus", source=source)])]
    )
    with rawcore.open_recording(tmp_path / "rec") as rec:
        (job,), _ = plan_audio(rec, Selection(), fmt="mkv", stitch=True)
        with contextlib.ExitStack() as stack:
            levels, report = _core.voice_activity(
                job.inputs(stack, open_archive_of(rec)), codec="opus", slot_ms=SLOT_MS
            )
        (entry,), _, _ = extract_audio(rec, tmp_path / "out", stitch=True)
    decoded = decode_audio(tmp_path / "out" / entry.path)
    n = decoded.rate * SLOT_MS // 1000
    x = decoded.samples[: len(decoded.samples) // n * n].reshape(-1, n)
    truth = 10 * np.log10(np.mean(x.astype(np.float64) ** 2, axis=1) + 1e-12)
    assert levels.dtype == np.float32
    assert abs(len(levels) - len(truth)) <= 1
    assert abs(len(levels) * SLOT_MS - report.duration_ms) <= SLOT_MS
    m = min(len(levels), len(truth))
    audible = truth[:m] > -60
    assert audible.sum() > 100
    assert np.abs(levels[:m][audible] - truth[:m][audible]).max() < 2.0
    assert (levels[:m][~audible] < -50).all()
    # Before, between and after the speech: silence.
    for a, b in ((0.0, 0.9), (3.1, 4.4), (6.1, 7.9)):
        assert (levels[round(a * 50) : round(b * 50)] < -60).all(), (a, b)
