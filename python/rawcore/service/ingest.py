"""The ingest job: a raw recording becomes raw and stitched tracks in the org's layout.

The archive (an upload kept in the storage, or an allowed `source` URL) is opened under the
same hostile-archive rules as the CLI; rawcore's own extraction writes one file per track
(`{org}/raw/{room}/{recording_id}/{participant_id}/…`) and one per participant and medium
across sessions (`…/stitched/…`), and each becomes a row with a minted `trk_…` id. Files are
WebM where the codec allows it (VP8, VP9, AV1, Opus) so browsers play them as they are, else
Matroska (H.264, FLAC).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rawcore.errors import RawcoreError
from rawcore.jobs.store import JobRow
from rawcore.media.audio import extract_audio
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import Selection
from rawcore.media.video import extract_video
from rawcore.recording.build import open_recording
from rawcore.recording.model import Recording, Track
from rawcore.service.store import ServiceStore, TrackRow, mint
from rawcore.storage.backends import open_storage
from rawcore.storage.keys import OrgLayout

INGEST = "ingest"
_WEBM = {"vp8", "vp9", "av1", "opus"}


def _fmt(codecs: set[str]) -> str:
    return "webm" if codecs and codecs <= _WEBM else "mkv"


def _extract(rec: Recording, out: Path, tracks: list[Track], stitch: bool,
             sel: Selection) -> list[ManifestEntry]:  # fmt: skip
    fmt = _fmt({t.codec or "" for t in tracks})
    if tracks[0].kind == "audio":
        got = extract_audio(rec, out, selection=sel, fmt=fmt, stitch=stitch)  # type: ignore[arg-type]
    else:
        got = extract_video(rec, out, selection=sel, fmt=fmt, stitch=stitch)  # type: ignore[arg-type]
    return list(got.entries)


def ingest_handler(service: ServiceStore) -> Callable[[JobRow, Callable[[float], None]],
                                                      dict[str, Any]]:  # fmt: skip
    """The worker's handler for `ingest` jobs, recording tracks in `service`."""

    def run(job: JobRow, progress: Callable[[float], None]) -> dict[str, Any]:
        p = job.params
        storage = open_storage(p["storage"], s3_endpoint=p.get("s3_endpoint"))
        layout = OrgLayout(job.org)
        rid, room = p["recording_id"], p["room"]
        with tempfile.TemporaryDirectory(prefix="rawcore-ingest-") as tmp:
            work = Path(tmp)
            if p.get("upload_key"):
                source = str(work / "upload")
                storage.get_file(p["upload_key"], Path(source))
            else:
                source = p["source"]
            try:
                rec = open_recording(source, s3_endpoint=p.get("s3_endpoint"))
            except RawcoreError as exc:  # say "the upload", not a temporary path
                shown = p.get("upload_name") or "the upload"
                raise type(exc)(str(exc).replace(source, shown)) from None
            with rec:
                # One extraction per track (raw), and per participant and medium (stitched).
                plan: list[tuple[list[Track], bool, Selection]] = [
                    ([t], False, Selection(track_id=t.track_id)) for t in rec.tracks
                ]
                for part in rec.participants:
                    for kind in ("audio", "video"):
                        mine = [t for t in part.tracks if t.kind == kind]
                        if mine:
                            plan.append((mine, True, Selection(user_id=part.participant_id)))
                rows: list[TrackRow] = []
                warnings: list[str] = []
                for i, (tracks, stitch, sel) in enumerate(plan):
                    out = work / f"out{i}"
                    try:
                        entries = _extract(rec, out, tracks, stitch, sel)
                    except RawcoreError as exc:  # one track that cannot be written: the rest are
                        warnings.append(str(exc))
                        entries = []
                    for entry in entries:
                        user = entry.user_id or tracks[0].participant_id
                        key = (layout.stitched(room, rid, user, entry.path) if stitch
                               else layout.raw(room, rid, user, entry.path))  # fmt: skip
                        storage.put_file(key, out / entry.path)
                        rows.append(TrackRow(
                            mint("trk"), job.org, rid, user, entry.session_id,
                            list(entry.track_ids), entry.kind, entry.screenshare, stitch,
                            entry.codec, entry.container, entry.duration_ms, entry.bytes, key,
                            entry.path, len(rows),
                        ))  # fmt: skip
                    progress((i + 1) / len(plan))
                call = {"call_id": rec.call_id, "call_start_unix_ms": rec.call_start_unix_ms}
        service.set_tracks(job.org, rid, rows, call)
        return {"recording_id": rid, "tracks": len(rows), "warnings": warnings}

    return run


__all__ = ["INGEST", "ingest_handler"]
