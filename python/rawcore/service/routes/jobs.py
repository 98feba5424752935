"""`/v1/jobs/{job_id}`: a job of the caller's organization (another's is not found)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from rawcore.service import models
from rawcore.service.deps import Ctx, CurrentOrg
from rawcore.service.jobs_view import job_model

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=models.Job, responses={404: {"model": models.Problem}})
async def get_job(job_id: str, request: Request, ctx: Ctx, org: CurrentOrg) -> models.Job:
    return job_model(ctx, request, org, ctx.job(org, job_id))


__all__ = ["router"]
