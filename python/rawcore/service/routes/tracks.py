"""`/v1/tracks/{track_id}/conversions`: an MP4 of a stored track, as a cached conversion job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse

from rawcore.errors import RawcoreError
from rawcore.jobs.conversion import Job, submit_conversion
from rawcore.media.convert import Mode
from rawcore.service import models
from rawcore.service.deps import Context, Ctx, CurrentOrg
from rawcore.service.jobs_view import job_model
from rawcore.service.store import Org, TrackRow
from rawcore.storage.backends import FolderStorage

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])


def track_of(ctx: Context, org: Org, track_id: str) -> TrackRow:
    t = ctx.store.track(org.id, track_id)
    if t is None:
        raise HTTPException(404, "no such track")
    return t


def convert(ctx: Context, org: Org, t: TrackRow, mode: Mode, *, no_audio: bool = False) -> Job:
    """Submit (or find, cached) the conversion of the stored track `t` for `org`."""
    storage = ctx.storage
    source = (str(storage.path(t.key)) if isinstance(storage, FolderStorage)
              else storage.describe(t.key))  # fmt: skip
    try:
        return submit_conversion(
            source, storage=storage.spec, org=org.id, mode=mode, no_audio=no_audio,
            db=ctx.jobs.path, s3_endpoint=ctx.settings.s3_endpoint, start_workers=False,
        )  # fmt: skip
    except RawcoreError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/{track_id}/conversions", status_code=202, response_model=models.Job,
             responses={200: {"model": models.Job}, 404: {"model": models.Problem}})  # fmt: skip
def create_conversion(
    track_id: str, request: Request, ctx: Ctx, org: CurrentOrg,
    body: Annotated[models.ConversionRequest | None, Body()] = None,
) -> JSONResponse:  # fmt: skip
    """Convert the track to MP4 (`editor`: H.264 + AAC; `remux`: the packets as they are).
    202 with the job; 200 with the finished job when the MP4 is already there."""
    t = track_of(ctx, org, track_id)
    job = convert(ctx, org, t, (body or models.ConversionRequest()).mode)
    row = ctx.job(org, job.id)
    code = 200 if job.status().cached and row.state == "done" else 202
    return JSONResponse(job_model(ctx, request, org, row).model_dump(), status_code=code)


__all__ = ["convert", "router", "track_of"]
