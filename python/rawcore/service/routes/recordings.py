"""`/v1/recordings`: ingest (an upload or an allowed URL), list, one, its tracks, stop."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from rawcore.errors import RawcoreError
from rawcore.jobs.store import JobRow
from rawcore.service import models
from rawcore.service.deps import Context, Ctx, CurrentOrg
from rawcore.service.ingest import INGEST
from rawcore.service.signing import file_query
from rawcore.service.sources import check_source
from rawcore.service.store import Org, RecordingRow, TrackRow, mint
from rawcore.source.archive import open_archive
from rawcore.storage.keys import OrgLayout, validate_id

router = APIRouter(prefix="/v1/recordings", tags=["recordings"])

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file", "room"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "the raw recording (ZIP, tar, tar.gz)"},
                    "room": {"type": "string"},
                    "participants": {"type": "string",
                                     "description": 'JSON: {"user_1": "Ada Lovelace", …}'},
                },
            }},
            "application/json": {"schema": models.SourceIngest.model_json_schema()},
        }
    }
}  # fmt: skip


def _participants(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise HTTPException(422, "participants: not JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise HTTPException(422, 'participants: expected {"participant id": "name", …}')
    return value


def _state(ctx: Context, rec: RecordingRow) -> JobRow | None:
    return ctx.jobs.get(rec.job_id)


def recording_model(ctx: Context, request: Request, rec: RecordingRow) -> models.Recording:
    job = _state(ctx, rec)
    return models.Recording(
        recording_id=rec.id, room=rec.room, state=job.state if job else "failed",
        error=job.error if job else "the ingest job is gone", job_id=rec.job_id,
        created=rec.created, participants=rec.participants, call_id=rec.call_id,
        call_start_unix_ms=rec.call_start_unix_ms,
        page_url=f"{request.base_url}recordings/{rec.id}",
    )  # fmt: skip


def track_model(ctx: Context, request: Request, org: Org, rec: RecordingRow,
                t: TrackRow) -> models.Track:  # fmt: skip
    base = str(request.base_url)
    if t.container == "webm":
        preview = ctx.file_url(base, "track", t.id, org.id, t.key, download=False,
                               filename=t.name)  # fmt: skip
    else:  # Matroska (H.264, FLAC): an MP4 the app makes on first request, as a cached job
        q = file_query(ctx.secret, "preview", t.id, org.id, ctx.settings.url_ttl_s, False)
        preview = f"{base}files/preview/{t.id}?{q}"
    return models.Track(
        track_id=t.id, participant_id=t.participant_id,
        participant_name=rec.participants.get(t.participant_id, t.participant_id),
        kind=t.kind, screenshare=t.screenshare, stitched=t.stitched,  # type: ignore[arg-type]
        session_id=t.session_id, stream_track_ids=t.stream_track_ids, codec=t.codec,
        container=t.container, duration_ms=t.duration_ms, bytes=t.bytes, file_name=t.name,
        preview_url=preview,
        download_url=ctx.file_url(base, "track", t.id, org.id, t.key, download=True,
                                  filename=t.name),
    )  # fmt: skip


def _save_upload(ctx: Context, layout: OrgLayout, rid: str, upload: UploadFile) -> str:
    """Check the archive under the hostile-archive rules, then keep it in the storage."""
    key = layout.upload(rid, "archive")
    with tempfile.TemporaryDirectory(prefix="rawcore-upload-") as tmp:
        path = Path(tmp) / "archive"
        with open(path, "wb") as out:
            upload.file.seek(0)
            while chunk := upload.file.read(1 << 20):
                out.write(chunk)
        try:
            open_archive(path, cache_dir=Path(tmp) / "cache").close()
        except RawcoreError as exc:
            raise HTTPException(422, f"file: {exc}") from None
        ctx.storage.put_file(key, path)
    return key


@router.post("", status_code=202, response_model=models.IngestAccepted,
             openapi_extra=_UPLOAD_DOC,
             responses={413: {"model": models.Problem},
                        422: {"model": models.Problem}})  # fmt: skip
async def ingest(request: Request, ctx: Ctx, org: CurrentOrg) -> JSONResponse:
    """Ingest a raw recording: a multipart upload (`file`, `room`, `participants` as JSON), or
    a JSON body naming a `source` URL the operator allowed. 202 with the ingest job."""
    ctype = request.headers.get("content-type", "")
    layout = OrgLayout(org.id)
    rid = mint("rec")
    params: dict[str, Any] = {"storage": ctx.storage.spec, "s3_endpoint": ctx.settings.s3_endpoint,
                              "recording_id": rid}  # fmt: skip
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=8)
        upload, room = form.get("file"), form.get("room")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "file: the archive is missing (multipart field `file`)")
        if not isinstance(room, str) or not room:
            raise HTTPException(422, "room: missing")
        parts = form.get("participants")
        participants = _participants(parts if isinstance(parts, str) else None)
        source = f"upload:{upload.filename or 'archive'}"
        try:
            validate_id("room", room)
        except RawcoreError as exc:
            raise HTTPException(422, str(exc)) from None
        from starlette.concurrency import run_in_threadpool

        params["upload_name"] = upload.filename or "the upload"
        params["upload_key"] = await run_in_threadpool(_save_upload, ctx, layout, rid, upload)
    elif ctype.startswith("application/json"):
        try:
            body = models.SourceIngest.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "body"
            raise HTTPException(422, f"{where}: {first['msg']}") from None
        try:
            validate_id("room", body.room)
            check_source(body.source, ctx.settings.allow_source)
        except RawcoreError as exc:
            raise HTTPException(422, str(exc)) from None
        room, participants, source = body.room, body.participants, body.source
        params["source"] = body.source
    else:
        raise HTTPException(422, "send multipart/form-data (an upload) or application/json")
    params.update(room=room, participants=participants)
    job, _ = ctx.jobs.submit(INGEST, org.id, rid, params)
    ctx.store.add_recording(RecordingRow(rid, org.id, room, source, participants, job.id,
                                         time.time(), None, None))  # fmt: skip
    return JSONResponse({"job_id": job.id, "recording_id": rid}, status_code=202)


@router.get("", response_model=models.RecordingList)
async def list_recordings(request: Request, ctx: Ctx, org: CurrentOrg, limit: int = 100,
                    offset: int = 0) -> models.RecordingList:  # fmt: skip
    limit = max(1, min(limit, 500))
    rows = ctx.store.recordings(org.id, limit, max(0, offset))
    return models.RecordingList(recordings=[recording_model(ctx, request, r) for r in rows])


def _recording(ctx: Context, org: Org, recording_id: str) -> RecordingRow:
    rec = ctx.store.recording(org.id, recording_id)
    if rec is None:
        raise HTTPException(404, "no such recording")
    return rec


@router.get("/{recording_id}", response_model=models.Recording,
            responses={404: {"model": models.Problem}})  # fmt: skip
async def get_recording(recording_id: str, request: Request, ctx: Ctx,
                  org: CurrentOrg) -> models.Recording:  # fmt: skip
    return recording_model(ctx, request, _recording(ctx, org, recording_id))


@router.get("/{recording_id}/tracks", response_model=models.TrackList,
            responses={404: {"model": models.Problem}})  # fmt: skip
async def get_tracks(recording_id: str, request: Request, ctx: Ctx,
               org: CurrentOrg) -> models.TrackList:  # fmt: skip
    rec = _recording(ctx, org, recording_id)
    job = ctx.jobs.get(rec.job_id)
    return models.TrackList(
        recording_id=rec.id, state=job.state if job else "failed",
        tracks=[track_model(ctx, request, org, rec, t) for t in ctx.store.tracks(org.id, rec.id)],
    )  # fmt: skip


@router.post("/{recording_id}/stop", status_code=202, response_model=models.IngestAccepted,
             responses={404: {"model": models.Problem}})  # fmt: skip
async def stop_recording(recording_id: str, ctx: Ctx, org: CurrentOrg) -> JSONResponse:
    """The recording stopped: run its post-recording pipeline (again). Steps already done are
    skipped; a composed video the recorder left as a pending upload is completed. 202 with
    the recording's job (still the running one if it has not finished)."""
    rec = _recording(ctx, org, recording_id)
    ctx.jobs.requeue(rec.job_id)  # a done or failed job only: a queued or running one stays
    return JSONResponse({"job_id": rec.job_id, "recording_id": rec.id}, status_code=202)


__all__ = ["recording_model", "router", "track_model"]
