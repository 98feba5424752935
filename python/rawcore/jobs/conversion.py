"""Conversions as cached background jobs: `submit_conversion(...)` → `Job` (`status()`, `wait()`).

The job's cache key hashes the organization, the source's identity (content hash of a local
file or folder, ETag + size of an S3 object), the mode and options and the output-format
version; the MP4 goes to `{org}/conversions/{cache_key}.mp4` in the storage. A request whose
job is done and whose MP4 is there returns at once without work; a worker that finds the MP4
already stored marks the job done without decoding anything. The job store (SQLite,
`$RAWCORE_JOBS_DB`, else `jobs.sqlite` in the download cache folder) dedupes concurrent requests;
an in-process worker pool per store file runs them (`rawcore worker --db PATH` adds more
processes on the same host). A track of a recording is converted for its room (given, else
`{call_type}-{call_id}` named by the worker): recorded with the job, not part of the key.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rawcore.errors import InputError, RawcoreError
from rawcore.jobs.pool import WorkerPool
from rawcore.jobs.store import JobRow, JobState, JobStore
from rawcore.media.convert import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    FORMAT_VERSION,
    MODES,
    EditorOptions,
    Mode,
    convert_file,
    convert_track,
    recording_room,
)
from rawcore.recording.build import open_recording
from rawcore.source.cache import default_cache_dir
from rawcore.storage.backends import open_storage
from rawcore.storage.identity import cache_key, source_identity
from rawcore.storage.keys import OrgLayout, validate_id

CONVERT = "convert"


def default_db() -> Path:
    env = os.environ.get("RAWCORE_JOBS_DB")
    if env:
        return Path(env)
    return default_cache_dir() / "jobs.sqlite"


@dataclass(frozen=True)
class JobStatus:
    """A job as its caller sees it."""

    id: str
    state: JobState
    progress: float
    error: str | None
    #: Where the MP4 is (a path or an s3:// URL) once done.
    output: str | None
    key: str
    #: True when the request found the MP4 already made (no work was done for it).
    cached: bool
    #: input | remote | output | internal, when failed.
    error_kind: str | None = None
    #: A track of a recording: its room (given, else `{call_type}-{call_id}` once a worker has
    #: opened the recording). Not part of the cache key: the conversion is the same bytes.
    room: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class Job:
    """A handle on one submitted conversion."""

    def __init__(self, store: JobStore, job_id: str, key: str, where: str, cached: bool) -> None:
        self.store, self.id, self.key, self._where, self._cached = store, job_id, key, where, cached

    def status(self) -> JobStatus:
        row = self.store.get(self.id)
        if row is None:
            raise RawcoreError(f"job {self.id}: gone from {self.store.path}")
        cached = self._cached or bool(row.result and row.result.get("cached"))
        return JobStatus(
            row.id,
            row.state,
            row.progress,
            row.error,
            self._where if row.state == "done" else None,
            self.key,
            cached,
            row.error_kind,
            _room_of(row),
        )

    def wait(self, timeout: float | None = None, poll_s: float = 0.1) -> JobStatus:
        """The status once the job is done or failed (or `timeout` seconds passed)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            st = self.status()
            if st.finished or (end is not None and time.monotonic() >= end):
                return st
            time.sleep(poll_s)


def _room_of(row: JobRow) -> str | None:
    """The room a job's worker settled, else the one its request gave."""
    room = (row.result or {}).get("room") or row.params.get("room")
    return room if isinstance(room, str) else None


_pools: dict[str, WorkerPool] = {}
_pools_lock = threading.Lock()


def run_conversion(job: JobRow, progress: Callable[[float], None]) -> dict[str, Any]:
    """The worker's handler: convert into a temporary file and store it under the job's key
    (nothing at all when the key is already stored)."""
    p = job.params
    storage = open_storage(p["storage"], s3_endpoint=p.get("s3_endpoint"))
    key = OrgLayout(job.org).conversion(job.cache_key)
    source, track_id, room = p["source"], p.get("track_id"), p.get("room")
    if storage.exists(key):
        if track_id is not None and room is None:  # named for the caller: metadata only
            with open_recording(source, s3_endpoint=p.get("s3_endpoint")) as rec:
                room = recording_room(rec)
        return {"key": key, "cached": True, "room": room}
    options = EditorOptions(p.get("preset", DEFAULT_PRESET), p.get("crf", DEFAULT_CRF))
    with tempfile.TemporaryDirectory(prefix="rawcore-job-") as tmp:
        out = Path(tmp) / "out.mp4"
        if track_id is not None:
            with open_recording(source, s3_endpoint=p.get("s3_endpoint")) as rec:
                entry = convert_track(
                    rec, track_id, out, mode=p["mode"], no_audio=p.get("no_audio", False),
                    stitch=p.get("stitch", False), options=options, manifest=False, room=room,
                    on_progress=progress,
                )  # fmt: skip
        else:
            entry = convert_file(
                source, out, mode=p["mode"], audio=p.get("audio"),
                no_audio=p.get("no_audio", False), options=options, manifest=False,
                s3_endpoint=p.get("s3_endpoint"), on_progress=progress,
            )  # fmt: skip
        storage.put_file(key, out)
    return {"key": key, "cached": False, "bytes": entry.bytes, "entry": entry.to_json(),
            "room": entry.room}  # fmt: skip


def pool_for(store: JobStore, threads: int = 2) -> WorkerPool:
    """The in-process worker pool of a store file (started on first use)."""
    with _pools_lock:
        pool = _pools.get(str(store.path.resolve()))
        if pool is None:
            pool = WorkerPool(store, {CONVERT: run_conversion}, threads=threads).start()
            _pools[str(store.path.resolve())] = pool
        return pool


def submit_conversion(
    source: str | os.PathLike[str],
    *,
    storage: str | os.PathLike[str],
    org: str = "local",
    room: str | None = None,
    mode: Mode = "editor",
    track_id: str | None = None,
    audio: str | os.PathLike[str] | None = None,
    no_audio: bool = False,
    stitch: bool = False,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    db: str | os.PathLike[str] | None = None,
    s3_endpoint: str | None = None,
    workers: int = 2,
    start_workers: bool = True,
) -> Job:
    """Submit (or find) the conversion of `source` for `org`; returns its `Job` at once.

    `source` is a media file, or a recording (archive, folder, s3:// URL) with `track_id`.
    `storage` is a folder or `s3://bucket[/prefix]`. With `start_workers` the process runs
    the job itself (a pool of `workers` threads); otherwise a `rawcore worker` does.

    `room` (a track of a recording only) is the recording's room in the storage layout
    (`{org}/raw/{room}/…`); by default the worker names it `{call_type}-{call_id}` when it
    opens the recording. It is recorded with the job and in the MP4's manifest entry, not
    hashed into the cache key: a recording lives in one room, and a request naming another
    room than the one recorded for the same source is an `InputError` (as `post-process`).
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose editor or remux")
    layout = OrgLayout(org)
    if room is not None:
        validate_id("room", room)
        if track_id is None:
            raise InputError("a room names the room of a recording: give track_id too")
    EditorOptions(preset, crf)  # checked now, not in a worker
    identity = source_identity(source, s3_endpoint=s3_endpoint)
    options: dict[str, Any] = {"mode": mode, "track_id": track_id, "no_audio": no_audio,
                               "stitch": stitch}  # fmt: skip
    if audio is not None:
        options["audio"] = source_identity(audio, s3_endpoint=s3_endpoint)
    if mode == "editor":
        options.update(preset=preset, crf=crf)
    key = cache_key(org, identity, options, FORMAT_VERSION)
    store_obj = open_storage(storage, s3_endpoint=s3_endpoint)
    out_key = layout.conversion(key)
    params = {
        "source": os.fspath(source), "storage": store_obj.spec, "s3_endpoint": s3_endpoint,
        "mode": mode, "track_id": track_id, "audio": None if audio is None else os.fspath(audio),
        "no_audio": no_audio, "stitch": stitch, "preset": preset, "crf": crf, "room": room,
    }  # fmt: skip
    store = JobStore(db or default_db())
    row, _ = store.submit(CONVERT, org, key, params)
    known = _room_of(row)
    if room is not None and known is not None and known != room:
        raise InputError(f"track {track_id!r} of {os.fspath(source)}: the recording is in room "
                         f"{known!r}, not {room!r}")  # fmt: skip
    where = store_obj.describe(out_key)
    if row.state == "done":
        if store_obj.exists(out_key):
            return Job(store, row.id, key, where, cached=True)
        store.requeue(row.id)
    if start_workers:
        pool_for(store, workers)
    return Job(store, row.id, key, where, cached=False)


__all__ = ["CONVERT", "Job", "JobStatus", "default_db", "pool_for", "run_conversion",
           "submit_conversion"]  # fmt: skip
