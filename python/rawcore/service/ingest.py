"""The ingest job: a raw recording goes through the post-recording pipeline into the org's layout.

The archive (an upload kept in the storage, or an allowed `source` URL) is opened under the
same hostile-archive rules as the CLI; `rawcore.pipeline.post` completes the composed video's
pending upload, writes one file per track (`{org}/raw/{room}/{recording_id}/{participant_id}/…`)
and one per participant and medium across sessions (`…/stitched/…`), builds the scene and
records all of it in the recording's metadata document. Each track file then becomes a row
with a `trk_…` id, kept across runs of the same recording (a `POST …/stop` runs the job again;
finished steps are skipped). Files are WebM where the codec allows it (VP8, VP9, AV1, Opus) so
browsers play them as they are, else Matroska (H.264, FLAC).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rawcore.errors import RawcoreError
from rawcore.jobs.store import JobRow
from rawcore.pipeline.post import STEPS, PostTarget, post_process
from rawcore.service.store import ServiceStore, TrackRow, mint
from rawcore.storage.backends import open_storage

INGEST = "ingest"


def ingest_handler(service: ServiceStore) -> Callable[[JobRow, Callable[[float], None]],
                                                      dict[str, Any]]:  # fmt: skip
    """The worker's handler for `ingest` jobs, recording tracks in `service`."""

    def run(job: JobRow, progress: Callable[[float], None]) -> dict[str, Any]:
        p = job.params
        storage = open_storage(p["storage"], s3_endpoint=p.get("s3_endpoint"))
        rid, room = p["recording_id"], p["room"]
        target = PostTarget(storage, job.org, room, rid)
        finished = [0]

        def checkpoint(point: str) -> None:
            if point.endswith((":done", ":skipped")):
                finished[0] += 1
                progress(finished[0] / len(STEPS))

        with tempfile.TemporaryDirectory(prefix="rawcore-ingest-") as tmp:
            if p.get("upload_key"):
                source = str(Path(tmp) / "upload")
                storage.get_file(p["upload_key"], Path(source))
            else:
                source = p["source"]
            try:
                result = post_process(source, target, participants=p.get("participants"),
                                      s3_endpoint=p.get("s3_endpoint"),
                                      checkpoint=checkpoint)  # fmt: skip
            except RawcoreError as exc:  # say "the upload", not a temporary path
                shown = p.get("upload_name") or "the upload"
                raise type(exc)(str(exc).replace(source, shown)) from None
        doc = result.document
        known = {t.key: t.id for t in service.tracks(job.org, rid)}
        rows: list[TrackRow] = []
        for stitched, listed in ((False, doc["raw_tracks"]), (True, doc["stitched_tracks"])):
            for t in listed:
                rows.append(TrackRow(
                    known.get(t["key"]) or mint("trk"), job.org, rid, t["participant_id"],
                    t["session_id"], list(t["track_ids"]), t["kind"], bool(t["screenshare"]),
                    stitched, t["codec"], t["container"], int(t["duration_ms"]),
                    int(t["bytes"]), t["key"], t["name"], len(rows),
                ))  # fmt: skip
        service.set_tracks(job.org, rid, rows, doc.get("call") or {})
        return {"recording_id": rid, "tracks": len(rows), "warnings": list(result.warnings),
                "steps_ran": list(result.ran)}  # fmt: skip

    return run


__all__ = ["INGEST", "ingest_handler"]
