"""`/files/{what}/{id}`: the objects of a folder storage behind short-lived signed URLs.

`what` is `track` (a stored track), `job` (a finished conversion's MP4) or `preview` (a
Matroska track as an MP4 browsers play, made on first request as a cached conversion and
waited for). A wrong, foreign or expired signature answers 404, as an unknown id does. On S3
storage, `track` and `job` URLs are presigned by S3 and never come here; `preview` redirects to
the presigned MP4 once made.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from rawcore.service.deps import Ctx
from rawcore.service.routes.tracks import convert
from rawcore.service.signing import check_file
from rawcore.storage.backends import FolderStorage

router = APIRouter(prefix="/files", tags=["files"], include_in_schema=False)
PREVIEW_WAIT_S = 120.0
_TYPES = {"webm": "video/webm", "mp4": "video/mp4", "mkv": "video/x-matroska"}


def _not_found() -> HTTPException:
    return HTTPException(404, "no such file, or its link expired")


@router.get("/{what}/{ident}")
def get_file(
    what: str, ident: str, request: Request, ctx: Ctx,
    o: Annotated[str, Query(max_length=64)] = "",
    exp: Annotated[int, Query()] = 0,
    dl: Annotated[int, Query()] = 0,
    sig: Annotated[str, Query(max_length=128)] = "",
) -> Response:  # fmt: skip
    if what not in ("track", "job", "preview") or not check_file(
        ctx.secret, what, ident, o, exp, dl == 1, sig
    ):
        raise _not_found()
    org = ctx.store.org(o)
    if org is None:
        raise _not_found()
    if what == "job":
        row = ctx.jobs.get(ident)
        if row is None or row.org != org.id or row.state != "done" or not row.result:
            raise _not_found()
        key, name = str(row.result["key"]), f"{ident}.mp4"
    else:
        t = ctx.store.track(org.id, ident)
        if t is None:
            raise _not_found()
        key, name = t.key, t.name
        if what == "preview":
            mode = "remux" if t.kind == "video" and t.codec in ("h264", "vp9", "av1") else "editor"
            job = convert(ctx, org, t, mode, no_audio=t.kind == "video")  # type: ignore[arg-type]
            end = time.monotonic() + PREVIEW_WAIT_S
            st = job.status()
            while not st.finished and time.monotonic() < end:
                time.sleep(0.1)
                st = job.status()
            if st.state != "done":
                raise HTTPException(503 if not st.finished else 404,
                                    st.error or "the preview is not ready yet")  # fmt: skip
            row = ctx.job(org, job.id)
            key, name = str((row.result or {})["key"]), Path(t.name).stem + ".mp4"
            if not isinstance(ctx.storage, FolderStorage):
                return RedirectResponse(ctx.file_url(str(request.base_url), "job", row.id,
                                                     org.id, key, download=False,
                                                     filename=name))  # fmt: skip
    if not isinstance(ctx.storage, FolderStorage):
        raise _not_found()
    path = ctx.storage.path(key)
    if not path.is_file():
        raise _not_found()
    return FileResponse(
        path, media_type=_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream"),
        filename=name if dl == 1 else None,
        content_disposition_type="attachment" if dl == 1 else "inline",
        headers={"Cache-Control": "private, max-age=60"},
    )  # fmt: skip


__all__ = ["router"]
