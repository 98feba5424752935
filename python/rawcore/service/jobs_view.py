"""A job row as the API shows it: its state, progress, error and result with a download URL."""

from __future__ import annotations

from fastapi import Request

from rawcore.jobs.store import JobRow
from rawcore.service import models
from rawcore.service.deps import Context
from rawcore.service.store import Org


def job_model(ctx: Context, request: Request, org: Org, row: JobRow) -> models.Job:
    result = None
    if row.state == "done" and row.result is not None:
        result = {k: v for k, v in row.result.items() if k not in ("key", "entry")}
        key = row.result.get("key")
        if isinstance(key, str):
            result["download_url"] = ctx.file_url(
                str(request.base_url), "job", row.id, org.id, key, download=True,
                filename=f"{row.id}.mp4",
            )  # fmt: skip
            entry = row.result.get("entry")
            if isinstance(entry, dict):
                result["bytes"] = entry.get("bytes", result.get("bytes"))
                result["duration_ms"] = entry.get("duration_ms")
            elif "bytes" not in result:
                result["bytes"] = ctx.storage.size(key)
    return models.Job(job_id=row.id, kind=row.kind, state=row.state, progress=row.progress,
                      error=row.error, error_kind=row.error_kind, result=result)  # fmt: skip


__all__ = ["job_model"]
