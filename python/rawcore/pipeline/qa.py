"""The QA report written with every process-all run: what a user reads first when a recording
sounds or looks wrong.

`qa_report.json` lists, per track: loss, jitter, silence, filled gaps, keyframe waits and
freezes, every event with its time and kind (silence, sender pause, pause between captures,
loss, keyframe wait, freeze), and where the call timeline placed it (Sender Reports or arrival
fallback, clock offset and drift). `qa_timeline.png` draws the tracks as lanes over the call,
readable for an hour as for a minute: silence drawn apart from loss, defects never thinner than
two pixels, ticks in h:mm:ss, and a summary line under each lane.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rawcore.media.files import atomic_path
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import Selection
from rawcore.recording.columns import GAP_LOSS, arrival_gaps
from rawcore.recording.model import Recording, Track
from rawcore.recording.timeline import timeline_of

QA_JSON = "qa_report.json"
QA_PNG = "qa_timeline.png"
QA_SCHEMA = "rawcore.qa/1"

#: What an event on a lane is, and how it is drawn. Silence is not a defect: it is drawn
#: apart from loss, and lighter.
EVENT_KINDS = ("silence", "sender_pause", "pause", "loss", "keyframe_wait", "freeze")
_COLOURS: dict[str, tuple[int, int, int]] = {
    "silence": (200, 205, 214),  # DTX or a muted sender: nothing was sent
    "sender_pause": (200, 205, 214),  # a camera that stopped sending
    "pause": (150, 155, 165),  # between the track's captures (a rejoin, a restart)
    "loss": (214, 48, 49),  # packets lost on the way
    "keyframe_wait": (240, 140, 0),  # pictures lost, black until the next keyframe
    "freeze": (240, 140, 0),  # pictures lost, the last one held on screen
}
_BG, _LANE, _AUDIO, _VIDEO, _TEXT, _GRID = (
    (255, 255, 255),
    (236, 239, 244),
    (76, 138, 214),
    (90, 170, 110),
    (30, 30, 30),
    (215, 218, 224),
)
#: A defect is drawn at least this wide (px), so a 20 ms loss in an hour still shows.
_MIN_MARK_PX = 2


def _events(rec: Recording, track: Track, outputs: Sequence[ManifestEntry]) -> list[dict[str, Any]]:
    """What happened on a track, in time order: silences and losses from the packets' arrival
    (kept from the capture's one read of columns), pauses between its captures, and the video
    outputs' keyframe waits and freezes."""
    found: list[tuple[float, float, str]] = []
    video = track.kind == "video"
    for seg in track.segments:
        for a, b, cause in arrival_gaps(rec, seg):
            nothing_sent = "sender_pause" if video else "silence"
            found.append((a, b, "loss" if cause == GAP_LOSS else nothing_sent))
    ordered = sorted(
        (s for s in track.segments if s.start_unix_ms is not None and s.end_unix_ms is not None),
        key=lambda s: s.start_unix_ms or 0,
    )
    for before, after in itertools.pairwise(ordered):
        assert before.end_unix_ms is not None and after.start_unix_ms is not None
        if after.start_unix_ms > before.end_unix_ms:
            found.append((before.end_unix_ms, after.start_unix_ms, "pause"))
    quiet = [(a, b) for a, b, kind in found if kind != "loss"]
    for out in outputs:
        if out.kind != "video" or track.track_id not in out.track_ids or out.start_unix_ms is None:
            continue
        for start_ms, end_ms, kind in out.events or []:
            a, b = out.start_unix_ms + start_ms, out.start_unix_ms + end_ms
            if kind == "no_picture":
                # Nothing was sent (the core saw no packet): a pause, drawn from the captures
                # already unless the arrival gaps missed it.
                covered = sum(max(0.0, min(b, qb) - max(a, qa)) for qa, qb in quiet)
                if covered >= 0.5 * (b - a):
                    continue
                kind = "sender_pause"
            found.append((a, b, kind))
    found.sort()
    return [
        {"start_unix_ms": round(a), "end_unix_ms": round(b), "kind": kind}
        for a, b, kind in found
        if b > a
    ]


def _ms_of(events: Sequence[dict[str, Any]], *kinds: str) -> int:
    return sum(e["end_unix_ms"] - e["start_unix_ms"] for e in events if e["kind"] in kinds)


def _track_json(rec: Recording, track: Track, outputs: Sequence[ManifestEntry]) -> dict[str, Any]:
    timeline = timeline_of(rec)
    st = track.stats
    mine = [o for o in outputs if track.track_id in o.track_ids and o.kind in ("audio", "video")]
    placements = [
        timeline.placements[s.capture] for s in track.segments if s.capture in timeline.placements
    ]
    events = _events(rec, track, mine)
    return {
        "participant_id": track.participant_id,
        "session_id": track.session_id,
        "track_id": track.track_id,
        "kind": track.kind,
        "codec": track.codec,
        "screenshare": track.screenshare,
        "start_unix_ms": track.start_unix_ms,
        "duration_ms": track.duration_ms,
        "packets": st.packets,
        "loss_pct": round(st.loss_pct, 3),
        "lost_packets": st.lost,
        "duplicates": st.duplicates,
        "reordered": st.reordered,
        "jitter_ms": None if st.jitter_ms is None else round(st.jitter_ms, 3),
        "silent_ms": _ms_of(events, "silence", "sender_pause"),
        "lost_ms": _ms_of(events, "loss"),
        "paused_ms": _ms_of(events, "pause"),
        "silent_or_lost_ms": _ms_of(events, "silence", "sender_pause", "loss"),
        "dtx_filled_ms": sum(o.dtx_filled_ms for o in mine),
        "loss_filled_ms": sum(o.loss_filled_ms for o in mine),
        "pause_filled_ms": sum(o.pause_filled_ms for o in mine),
        "keyframe_waits": sum(o.keyframe_waits or 0 for o in mine),
        "keyframe_wait_ms": sum(o.keyframe_wait_ms or 0 for o in mine),
        "frozen_ms": sum(o.frozen_ms or 0 for o in mine),
        "video_gaps_filled_ms": sum(o.gaps_filled_ms or 0 for o in mine),
        "output_warnings": [w for o in mine for w in o.warnings],
        "sync": [
            {
                "capture": p.capture,
                "basis": p.basis,
                "start_unix_ms": round(p.start_unix_ms, 1),
                "placed_vs_first_arrival_ms": round(p.start_unix_ms - p.first_arrival_unix_ms, 1),
                "sender_clock_offset_ms": None if p.offset_ms is None else round(p.offset_ms, 1),
                "drift_ppm": round(p.drift_ppm, 2),
                "sender_reports": p.sender_reports,
            }
            for p in placements
        ],
        "events": events,
        "gaps": [[e["start_unix_ms"], e["end_unix_ms"]] for e in events],
    }


def hms(seconds: float) -> str:
    """h:mm:ss (m:ss under an hour)."""
    whole = round(seconds)
    h, rem = divmod(whole, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def span(ms: float) -> str:
    """A length as people read it: ms under a second, s under a minute, then h:mm:ss."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s" if ms < 60_000 else hms(ms / 1000)


def _tick_step(span_s: float) -> int:
    """A round tick interval giving about 6 to 12 ticks."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span_s / step <= 12:
            return step
    return 7200


def _summary(t: dict[str, Any]) -> str:
    """The lane's one-line summary: what a user checks first."""
    parts = [f"loss {t['loss_pct']:.1f}%"]
    if t["jitter_ms"] is not None:
        parts.append(f"jitter {t['jitter_ms']:.0f} ms")
    if t["kind"] == "audio":
        parts.append(f"silent {span(t['silent_ms'])}")
        filled = t["loss_filled_ms"] + t["pause_filled_ms"]
        if filled:
            parts.append(f"concealed {span(filled)}")
    else:
        if t["keyframe_waits"]:
            waits = t["keyframe_waits"]
            parts.append(f"{waits} keyframe wait{'s' * (waits > 1)} {span(t['keyframe_wait_ms'])}")
        if t["frozen_ms"]:
            parts.append(f"frozen {span(t['frozen_ms'])}")
        if t["video_gaps_filled_ms"]:
            parts.append(f"black {span(t['video_gaps_filled_ms'])}")
    return ", ".join(parts)


def _draw(report: dict[str, Any], path: Path) -> None:
    from PIL import Image, ImageDraw

    tracks = report["tracks"]
    t0 = report["call"]["start_unix_ms"] or 0
    t1 = max([(t["start_unix_ms"] or t0) + t["duration_ms"] for t in tracks] + [t0 + 1])
    label_w, lane_h, width, top, right = 250, 34, 1400, 46, 20
    height = top + lane_h * len(tracks) + 40
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    scale = (width - label_w - right) / max(1.0, t1 - t0)

    def x(ms: float) -> float:
        return float(label_w + (ms - t0) * scale)

    span_s = (t1 - t0) / 1000
    draw.text(
        (10, 8),
        f"{report['call'].get('call_id') or 'call'}: {len(tracks)} tracks, {hms(span_s)}",
        fill=_TEXT,
    )
    # The legend: colour swatches with their meaning.
    lx = 10
    for kind, text in (
        ("silence", "silence (DTX, muted, camera off)"),
        ("pause", "pause between captures"),
        ("loss", "packets lost"),
        ("keyframe_wait", "keyframe wait / freeze"),
    ):
        draw.rectangle([lx, 26, lx + 12, 36], fill=_COLOURS[kind])
        draw.text((lx + 16, 25), text, fill=_TEXT)
        lx += 26 + int(draw.textlength(text))
    step = _tick_step(span_s)
    for k in range(0, int(span_s) + 1, step):
        xx = x(t0 + k * 1000)
        draw.line([xx, top - 2, xx, height - 26], fill=_GRID)
        draw.text((xx - 10, height - 20), hms(k), fill=_TEXT)
    for i, t in enumerate(tracks):
        y = top + i * lane_h
        draw.rectangle([label_w, y + 2, width - right, y + 22], fill=_LANE)
        screen = " screen" if t["screenshare"] else ""
        label = f"{t['participant_id']}/{t['session_id']} {t['kind']}{screen} {t['codec'] or ''}"
        draw.text((6, y + 6), label[:38], fill=_TEXT)
        draw.text((label_w + 2, y + 23), _summary(t), fill=(90, 90, 90))
        if t["start_unix_ms"] is None:
            continue
        colour = _AUDIO if t["kind"] == "audio" else _VIDEO
        s = t["start_unix_ms"]
        draw.rectangle([x(s), y + 4, max(x(s) + 1, x(s + t["duration_ms"])), y + 20], fill=colour)
        # Quiet things first, defects on top; defects never narrower than _MIN_MARK_PX.
        order = {k: n for n, k in enumerate(EVENT_KINDS)}
        for e in sorted(t["events"], key=lambda e: order[e["kind"]]):
            a, b = x(e["start_unix_ms"]), x(e["end_unix_ms"])
            defect = e["kind"] in ("loss", "keyframe_wait", "freeze")
            if defect:
                b = max(b, a + _MIN_MARK_PX)
            elif b - a < 1:
                continue
            inset = 4 if defect else 7
            draw.rectangle([a, y + inset, b, y + 24 - inset], fill=_COLOURS[e["kind"]])
    with atomic_path(path.parent, path.name) as tmp:
        img.save(tmp, format="PNG")


def qa_names(selection: Selection) -> tuple[str, str]:
    """The report's file names: a selection's report is named for it (`qa_report_user-x.json`),
    so it never replaces the whole call's."""
    label = selection.label
    if label is None:
        return QA_JSON, QA_PNG
    return f"qa_report_{label}.json", f"qa_timeline_{label}.png"


def write_qa_report(
    rec: Recording,
    out_dir: Path,
    outputs: Sequence[ManifestEntry],
    selection: Selection | None = None,
) -> dict[str, str]:
    """Write `qa_report.json` and `qa_timeline.png` for the selected tracks; returns their
    names."""
    selection = selection or Selection()
    json_name, png_name = qa_names(selection)
    selected = {t.track_id for t in rec.tracks if selection.admits(t)}
    timeline = timeline_of(rec)
    report = {
        "schema": QA_SCHEMA,
        "call": rec.call_json(),
        "selection": selection.label,
        "tracks": [_track_json(rec, t, outputs) for t in rec.tracks if selection.admits(t)],
        "timeline": {
            "placements": [
                asdict(p) for p in timeline.placements.values() if p.track_id in selected
            ],
            "warnings": timeline.warnings,
        },
        "outputs": [
            {
                "path": o.path,
                "kind": o.kind,
                "track_ids": o.track_ids,
                "start_unix_ms": o.start_unix_ms,
                "duration_ms": o.duration_ms,
                "warnings": o.warnings,
            }
            for o in outputs
        ],
        "warnings": list(rec.warnings),
    }
    with atomic_path(out_dir, json_name) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    _draw(report, out_dir / png_name)
    return {"json": json_name, "png": png_name}
