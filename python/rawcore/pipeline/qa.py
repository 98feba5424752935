"""The QA report written with every process-all run: what a user reads first when a recording
sounds or looks wrong.

`qa_report.json` lists, per track: loss, jitter, DTX time, filled gaps, keyframe waits, where
the call timeline placed it (Sender Reports or arrival fallback, clock offset and drift, how far
the placement is from the first packet's arrival); `qa_timeline.png` draws the tracks as lanes
over the call with silences, losses and pauses shaded, from the capture's own packet times.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rawcore.media.files import atomic_path
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import Selection
from rawcore.recording.columns import arrival_gaps
from rawcore.recording.model import Recording, Track
from rawcore.recording.timeline import timeline_of

QA_JSON = "qa_report.json"
QA_PNG = "qa_timeline.png"
QA_SCHEMA = "rawcore.qa/1"

_BG, _LANE, _AUDIO, _VIDEO, _GAP, _TEXT = (
    (255, 255, 255),
    (236, 239, 244),
    (76, 138, 214),
    (90, 170, 110),
    (232, 96, 76),
    (30, 30, 30),
)


def _gaps(rec: Recording, track: Track) -> list[tuple[float, float]]:
    """Stretches (Unix ms) with no packet for longer than `GAP_MS`: DTX, loss or pauses."""
    # Kept from the capture's one read of packet columns (usually the call timeline's).
    return [(float(a), float(b)) for seg in track.segments for a, b in arrival_gaps(rec, seg)]


def _track_json(rec: Recording, track: Track, outputs: Sequence[ManifestEntry]) -> dict[str, Any]:
    timeline = timeline_of(rec)
    st = track.stats
    mine = [o for o in outputs if track.track_id in o.track_ids and o.kind in ("audio", "video")]
    placements = [
        timeline.placements[s.capture] for s in track.segments if s.capture in timeline.placements
    ]
    gaps = _gaps(rec, track)
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
        "silent_or_lost_ms": round(sum(b - a for a, b in gaps)),
        "dtx_filled_ms": sum(o.dtx_filled_ms for o in mine),
        "loss_filled_ms": sum(o.loss_filled_ms for o in mine),
        "pause_filled_ms": sum(o.pause_filled_ms for o in mine),
        "keyframe_waits": sum(o.keyframe_waits or 0 for o in mine),
        "keyframe_wait_ms": sum(o.keyframe_wait_ms or 0 for o in mine),
        "video_gaps_filled_ms": sum(o.gaps_filled_ms or 0 for o in mine),
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
        "gaps": [[round(a), round(b)] for a, b in gaps],
    }


def _draw(report: dict[str, Any], path: Path) -> None:
    from PIL import Image, ImageDraw

    tracks = report["tracks"]
    t0 = report["call"]["start_unix_ms"] or 0
    t1 = max([(t["start_unix_ms"] or t0) + t["duration_ms"] for t in tracks] + [t0 + 1])
    label_w, lane_h, width, top = 260, 22, 1200, 30
    height = top + lane_h * len(tracks) + 30
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    scale = (width - label_w - 20) / max(1.0, t1 - t0)

    def x(ms: float) -> float:
        return float(label_w + (ms - t0) * scale)

    draw.text(
        (10, 8),
        f"{report['call'].get('call_id') or 'call'}: {len(tracks)} tracks, "
        f"{(t1 - t0) / 1000:.1f} s (red: silence, loss or pause)",
        fill=_TEXT,
    )
    for i, t in enumerate(tracks):
        y = top + i * lane_h
        draw.rectangle([label_w, y + 2, width - 20, y + lane_h - 4], fill=_LANE)
        screen = " (screen)" if t["screenshare"] else ""
        label = f"{t['participant_id']}/{t['session_id']} {t['kind']}{screen} {t['codec'] or ''}"
        draw.text((6, y + 5), label[:40], fill=_TEXT)
        if t["start_unix_ms"] is None:
            continue
        colour = _AUDIO if t["kind"] == "audio" else _VIDEO
        s = t["start_unix_ms"]
        draw.rectangle(
            [x(s), y + 4, max(x(s) + 1, x(s + t["duration_ms"])), y + lane_h - 6], fill=colour
        )
        for a, b in t["gaps"]:
            draw.rectangle([x(a), y + 4, max(x(a) + 1, x(b)), y + lane_h - 6], fill=_GAP)
    for k in range(0, int((t1 - t0) / 1000) + 1, max(1, int((t1 - t0) / 10000))):
        xx = x(t0 + k * 1000)
        draw.line([xx, height - 26, xx, height - 20], fill=_TEXT)
        draw.text((xx - 6, height - 18), f"{k}s", fill=_TEXT)
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
        "warnings": list(rec.warnings),
    }
    with atomic_path(out_dir, json_name) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    _draw(report, out_dir / png_name)
    return {"json": json_name, "png": png_name}
