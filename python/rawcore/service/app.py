"""The app factory (`create_app(settings)`) and `serve`, which runs it under uvicorn.

The app owns one `Context`: the settings, the service store and the job store (one SQLite
file), the storage, and an in-process worker pool that runs ingest and conversion jobs while
the app is up (`rawcore worker --db` adds processes; they share the file). Errors never leave
as a traceback: a malformed body is a 422 with one line, an upload over `--max-upload` a 413,
an unexpected error a 500 that says only that.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rawcore.errors import InputError, RawcoreError, SourceNotFoundError
from rawcore.jobs.conversion import CONVERT, run_conversion
from rawcore.jobs.on_ray import on_ray
from rawcore.jobs.pool import Handler, WorkerPool
from rawcore.jobs.store import JobStore
from rawcore.service.config import Settings
from rawcore.service.deps import Context
from rawcore.service.ingest import INGEST, ingest_handler
from rawcore.service.routes import files, jobs, page, recordings, tracks
from rawcore.service.store import ServiceStore
from rawcore.storage.backends import open_storage


class UploadTooLarge(Exception):
    pass


class LimitUploads:
    """ASGI middleware: a request body over `limit` bytes is a 413, whether it says so in
    Content-Length (refused before a byte is read) or streams past it (stopped there)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_413(send, self.limit)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLarge
            return msg

        async def watch(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, watch)
        except UploadTooLarge:
            if not started:
                await _send_413(send, self.limit)


async def _send_413(send: Send, limit: int) -> None:
    body = f'{{"detail":"upload larger than the limit of {limit} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _validation_line(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "malformed request"
    first = errors[0]
    where = ".".join(str(x) for x in first.get("loc", ())) or "request"
    return f"{where}: {first.get('msg', 'invalid')}"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service as an ASGI app (start it with uvicorn, or in a test)."""
    settings = settings or Settings()
    store = ServiceStore(settings.db)
    job_store = JobStore(settings.db)
    ctx = Context(settings, store, job_store,
                  open_storage(settings.storage, s3_endpoint=settings.s3_endpoint),
                  store.secret())  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool, child = None, None
        if settings.start_workers and settings.worker_process:
            child = subprocess.Popen([
                sys.executable, "-m", "rawcore", "worker", "--db", str(settings.db),
                "--threads", str(settings.workers), "--service", "--exit-with-parent",
                "--nice", "10", *(["--ray", settings.ray] if settings.ray else []),
            ])  # fmt: skip
        elif settings.start_workers:
            convert: Handler = run_conversion
            if settings.ray is not None:  # conversions on Ray; ingest records tracks here
                convert = on_ray(run_conversion, address=settings.ray)
            handlers = {CONVERT: convert, INGEST: ingest_handler(store)}
            pool = WorkerPool(job_store, handlers, threads=settings.workers).start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop(timeout=5.0)
            if child is not None:  # a job it was running is claimed again when its lease ends
                child.terminate()
                child.wait(10)

    app = FastAPI(title="rawcore", summary="Raw tracks of recorded calls: ingest, list, preview, "
                  "download, convert to MP4, per organization", lifespan=lifespan)  # fmt: skip
    app.state.ctx = ctx
    for r in (recordings.router, tracks.router, jobs.router, files.router, page.router):
        app.include_router(r)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    app.add_middleware(LimitUploads, limit=settings.max_upload)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        return {"ok": True}

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_line(exc)}, status_code=422)

    @app.exception_handler(UploadTooLarge)
    async def on_too_large(_: Request, __: UploadTooLarge) -> JSONResponse:
        return JSONResponse({"detail": f"upload larger than the limit of {settings.max_upload} "
                             "bytes"}, status_code=413)  # fmt: skip

    @app.exception_handler(RawcoreError)
    async def on_rawcore(_: Request, exc: RawcoreError) -> JSONResponse:
        if isinstance(exc, SourceNotFoundError):
            return JSONResponse({"detail": "not found"}, status_code=404)
        if isinstance(exc, InputError):
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse({"detail": "the service could not do that; try again"},
                            status_code=503)  # fmt: skip

    @app.exception_handler(Exception)
    async def on_bug(_: Request, __: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app under uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info",
                access_log=False)  # fmt: skip


__all__ = ["LimitUploads", "create_app", "serve"]
