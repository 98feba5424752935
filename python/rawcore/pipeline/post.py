"""The post-recording pipeline (`rawcore post-process`): one resumable job per recording.

Steps, in order, each recorded in the recording's metadata document
(`{org}/recordings/{recording_id}/metadata.json`) as soon as it is done:

1. `finalize`: complete the composed video's pending upload under `…/composed/` (a multipart
   upload on S3, a `parts/` folder on a folder storage), check its size and ETag against its
   parts, record its URL. Nothing pending is not an error; an upload that appears after the
   step was done (the recorder was still uploading) makes the next run finalize again.
2. `raw`: every track of the recording as its own file under `{org}/raw/{room}/{recording_id}/
   {participant_id}/`, and its key, kind, duration and size in the document.
3. `stitched`: one file per participant and medium across sessions, under `…/stitched/`.
4. `scene`: the scene project (`rawcore.scene/1`, its OTIO and track files) under `…/scene/`;
   its tracks are storage-side copies of the stored stitched ones, not extracted again.
5. `clip`: the scene's auto clip rendered (`compose(..., clip=True)`, the default preset) from
   the stored scene project into `…/clip/clip.mp4`, its range, key, size and duration in the
   document. A clip already stored by a run that stopped before recording it is recorded as it
   is, not rendered again. `clip=False` leaves the step for a later run.

Every object goes to a key that depends only on the recording, written atomically (the storage
renames a finished temporary file, or S3 shows a completed upload), and the document is written
atomically after each step and each item of the `raw` and `stitched` steps. A run killed at any
point therefore leaves whole objects and a document naming what is finished; the next run skips
that and writes the rest to the same keys: nothing is duplicated or half-written. One run at a
time per recording is the caller's to ensure (the service's job lease does).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rawcore.errors import InputError, OutputError, RawcoreError
from rawcore.media.audio import extract_audio, plan_audio
from rawcore.media.formats import DEFAULT_MAX_FILL_MS
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import OutputJob, Selection, plan_outputs
from rawcore.media.video import VIDEO_CODECS, extract_video
from rawcore.pipeline.compose import compose
from rawcore.recording.build import open_recording
from rawcore.recording.model import Recording, Track
from rawcore.storage.backends import PendingUpload, Storage, UploadPart, read_json, write_json
from rawcore.storage.keys import OrgLayout, default_room, validate_id

Step = Literal["finalize", "raw", "stitched", "scene", "clip"]
STEPS: tuple[Step, ...] = ("finalize", "raw", "stitched", "scene", "clip")
SCHEMA = "rawcore.recording/1"
_WEBM = {"vp8", "vp9", "av1", "opus"}

#: Called at each checkpoint of a run: `"{step}:start"`, `"{step}:item"` (an item of `raw` or
#: `stitched` stored, before the document says so), `"{step}:stored"` (the step's objects
#: stored, before the document says so), `"{step}:done"` and `"{step}:skipped"`.
Checkpoint = Callable[[str], None]


@dataclass(frozen=True)
class PostTarget:
    """Where a recording's objects go: a storage, its organization, room and recording id.
    Without a room, the one its metadata document names, else `{call_type}-{call_id}` of the
    recording (the CLI's rule)."""

    storage: Storage
    org: str
    room: str | None
    recording_id: str

    def __post_init__(self) -> None:
        if self.room is not None:
            validate_id("room", self.room)
        validate_id("recording id", self.recording_id)

    @property
    def layout(self) -> OrgLayout:
        return OrgLayout(self.org)

    @property
    def metadata_key(self) -> str:
        return self.layout.metadata(self.recording_id)


@dataclass(frozen=True)
class PostResult:
    """What a run did: the steps it ran and those it found done, and the document."""

    metadata_key: str
    metadata_url: str
    ran: tuple[Step, ...]
    skipped: tuple[Step, ...]
    document: dict[str, Any]
    warnings: tuple[str, ...]


def new_document(target: PostTarget) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "org": target.org,
        "room": target.room,
        "recording_id": target.recording_id,
        "steps": {},
        "composed": [],
        "raw_tracks": [],
        "stitched_tracks": [],
        "scene": None,
        "clip": None,
        "warnings": [],
    }


def load_document(target: PostTarget) -> dict[str, Any]:
    """The recording's metadata document, or a new one."""
    doc = read_json(target.storage, target.metadata_key)
    if doc is None:
        return new_document(target)
    where = target.storage.describe(target.metadata_key)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InputError(f"{where}: not a {SCHEMA} document")
    if (doc.get("org"), doc.get("recording_id")) != (target.org, target.recording_id):
        raise InputError(f"{where}: the document of another recording")
    return doc


def _fmt(codecs: set[str]) -> str:
    """WebM where every codec allows it (browsers play it as it is), else Matroska."""
    return "webm" if codecs and codecs <= _WEBM else "mkv"


def _entry_json(entry: ManifestEntry, key: str, participant: str) -> dict[str, Any]:
    return {
        "key": key, "name": entry.path, "participant_id": participant,
        "session_id": entry.session_id, "track_ids": list(entry.track_ids), "kind": entry.kind,
        "screenshare": entry.screenshare, "codec": entry.codec, "container": entry.container,
        "start_unix_ms": entry.start_unix_ms, "duration_ms": entry.duration_ms,
        "bytes": entry.bytes,
    }  # fmt: skip


def _upload_json(up: PendingUpload) -> dict[str, Any]:
    return {"key": up.key, "upload_id": up.upload_id,
            "parts": [[p.number, p.size, p.md5] for p in up.parts]}  # fmt: skip


def _upload_of(d: Mapping[str, Any]) -> PendingUpload:
    parts = tuple(UploadPart(int(n), int(s), str(m)) for n, s, m in d["parts"])
    return PendingUpload(str(d["key"]), str(d["upload_id"]), parts)


class _Run:
    """One run over one recording: the document, the lazily opened recording, the steps."""

    def __init__(
        self,
        target: PostTarget,
        source: str | os.PathLike[str] | None,
        *,
        events: str | os.PathLike[str] | None,
        participants: Mapping[str, str] | None,
        s3_endpoint: str | None,
        cache_dir: Path | None,
        checkpoint: Checkpoint | None,
        workers: int | None,
        clip: bool = True,
    ) -> None:
        self.target, self.source = target, source
        self.render_clip = clip
        self.workers = workers or min(2, os.cpu_count() or 1)
        self.events, self.participants = events, participants
        self.s3_endpoint, self.cache_dir = s3_endpoint, cache_dir
        self.checkpoint = checkpoint or (lambda _point: None)
        self.storage = target.storage
        self.layout = target.layout
        self.doc = load_document(target)
        recorded = self.doc.get("room")
        if target.room is not None and recorded is not None and recorded != target.room:
            where = self.storage.describe(target.metadata_key)
            raise InputError(f"{where}: the recording was processed in room {recorded!r}, "
                             f"not {target.room!r}")  # fmt: skip
        self.doc["room"] = target.room or recorded
        self.warnings: list[str] = []
        self._rec: Recording | None = None

    # the document

    def save(self) -> None:
        write_json(self.storage, self.target.metadata_key, self.doc)

    def state(self, step: Step) -> dict[str, Any]:
        steps: dict[str, Any] = self.doc.setdefault("steps", {})
        st: dict[str, Any] = steps.setdefault(step, {"state": "pending"})
        return st

    def done(self, step: Step) -> bool:
        return bool(self.state(step).get("state") == "done")

    def finish(self, step: Step) -> None:
        self.state(step).update(state="done")
        self.save()

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        if text not in self.doc["warnings"]:
            self.doc["warnings"].append(text)

    def room(self) -> str:
        """The room: given, recorded, or `{call_type}-{call_id}` of the recording."""
        room: str | None = self.doc.get("room")
        if room is None:
            rec = self.recording()
            room = default_room(rec.call_type, rec.call_id, self.target.recording_id)
            self.doc["room"] = room
        return room

    # the recording, opened only when a step needs it

    def recording(self) -> Recording:
        if self._rec is None:
            if self.source is None:
                raise InputError("the recording is needed for the remaining steps: give it")
            self._rec = open_recording(self.source, s3_endpoint=self.s3_endpoint,
                                       cache_dir=self.cache_dir)  # fmt: skip
            self.doc["call"] = {"call_id": self._rec.call_id,
                                "call_start_unix_ms": self._rec.call_start_unix_ms}  # fmt: skip
        return self._rec

    def close(self) -> None:
        if self._rec is not None:
            self._rec.close()

    # the steps

    def finalize(self) -> None:
        """Complete every pending upload of the composed video and check it."""
        rid = self.target.recording_id
        st = self.state("finalize")
        # What a run before this one was completing when it stopped: complete it again (a
        # completion done twice is not an error) so it is checked and recorded.
        pending = {(u["key"], u["upload_id"]): _upload_of(u) for u in st.get("uploads", [])}
        for up in self.storage.pending_uploads(self.layout.composed_prefix(rid)):
            pending[(up.key, up.upload_id)] = up
        if pending:
            st["uploads"] = [_upload_json(u) for u in pending.values()]
            self.save()  # the parts are listed before the upload (and its listing) is gone
        recorded = {c["key"] for c in self.doc["composed"]}
        for up in pending.values():
            stored = self.storage.complete_upload(up)
            self.checkpoint("finalize:stored")
            if (stored.size, stored.etag) != (up.size, up.etag):
                raise OutputError(
                    f"{self.storage.describe(up.key)}: completed as {stored.size} bytes, ETag "
                    f"{stored.etag}; its {len(up.parts)} parts make {up.size} bytes, ETag "
                    f"{up.etag}"
                )
            self.doc["composed"] = [c for c in self.doc["composed"] if c["key"] != up.key]
            self.doc["composed"].append({"key": up.key, "url": self.storage.describe(up.key),
                                         "bytes": stored.size, "etag": stored.etag,
                                         "parts": len(up.parts)})  # fmt: skip
            recorded.add(up.key)
        # An object the recorder completed itself: recorded as it is.
        for key in self.storage.keys(self.layout.composed_prefix(rid)):
            if key not in recorded and "/parts/" not in key:
                self.doc["composed"].append({"key": key, "url": self.storage.describe(key),
                                             "bytes": self.storage.size(key)})  # fmt: skip
        st.pop("uploads", None)

    def _extract(
        self, step: Literal["raw", "stitched"], item: str, tracks: list[Track], sel: Selection
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Extract one item of a plan and store its files (in a worker thread): its entries
        for the document and its warnings."""
        rid, room = self.target.recording_id, self.room()
        stitch = step == "stitched"
        rec = self.recording()
        fmt = _fmt({t.codec or "" for t in tracks})
        if stitch and (twins := self._raw_twins(tracks, sel, fmt)) is not None:
            copies: list[dict[str, Any]] = []
            for name, raw in twins:
                key = self.layout.stitched(room, rid, raw["participant_id"], name)
                self.storage.copy(raw["key"], key)
                copies.append({**raw, "key": key, "name": name, "session_id": None})
            return copies, []
        with _workdir() as work:
            try:
                if tracks[0].kind == "audio":
                    got = extract_audio(rec, work, selection=sel, fmt=fmt,  # type: ignore[arg-type]
                                        stitch=stitch, workers=1)  # fmt: skip
                else:
                    got = extract_video(rec, work, selection=sel, fmt=fmt,  # type: ignore[arg-type]
                                        stitch=stitch, workers=1)  # fmt: skip
            except RawcoreError as exc:  # one track that cannot be written: the rest are
                return [], [f"{item}: {exc}"]
            entries: list[dict[str, Any]] = []
            for entry in got.entries:
                user = entry.user_id or tracks[0].participant_id
                key = (self.layout.stitched(room, rid, user, entry.path) if stitch
                       else self.layout.raw(room, rid, user, entry.path))  # fmt: skip
                self.storage.put_file(key, work / entry.path, move=True)
                entries.append(_entry_json(entry, key, user))
            return entries, list(got.warnings)

    def _raw_twins(
        self, tracks: list[Track], sel: Selection, fmt: str
    ) -> list[tuple[str, dict[str, Any]]] | None:
        """When every stitched output of the item is planned exactly as a raw track's output
        (one session: the same captures, offsets, start, codec and parts), the writer makes
        the same bytes, so the stored raw file is copied instead: its stitched names and raw
        entries. None when any differs (several sessions) or a raw file is missing."""
        rec = self.recording()
        kind = tracks[0].kind

        def plan(selection: Selection, stitch: bool) -> list[OutputJob]:
            if kind == "audio":
                jobs, _ = plan_audio(rec, selection, fmt=fmt, stitch=stitch)  # type: ignore[arg-type]
            else:
                jobs, _ = plan_outputs(rec, selection, kind="video", ext=fmt, stitch=stitch,
                                       supported=VIDEO_CODECS,
                                       max_fill_ms=DEFAULT_MAX_FILL_MS)  # fmt: skip
            return jobs

        def body(job: OutputJob) -> tuple[Any, ...]:  # what the writer's bytes depend on
            return (job.tracks, job.segments, job.start_unix_ms, job.codec, job.drift_ppm,
                    job.windows, job.part)  # fmt: skip

        raw_by_name = {e["name"]: e for e in self.doc["raw_tracks"]}
        stitched = plan(sel, True)
        if not stitched or any(len(job.tracks) != 1 for job in stitched):
            return None
        raw = plan(Selection(track_id=stitched[0].tracks[0].track_id), False)
        if len(raw) != len(stitched) or len({j.tracks for j in stitched}) != 1:
            return None
        twins: list[tuple[str, dict[str, Any]]] = []
        for s_job, r_job in zip(stitched, raw, strict=True):
            entry = raw_by_name.get(r_job.name)
            if body(s_job) != body(r_job) or entry is None:
                return None
            twins.append((s_job.name, entry))
        return twins

    def _items(
        self, step: Literal["raw", "stitched"], plan: list[tuple[str, list[Track], Selection]]
    ) -> None:
        """Extract and store the items of the plan not yet recorded, `workers` at a time, and
        record each in plan order as soon as it and those before it are stored."""
        st = self.state(step)
        finished: list[str] = st.setdefault("items", [])
        listed: list[dict[str, Any]] = self.doc[f"{step}_tracks"]
        todo = [p for p in plan if p[0] not in finished]
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rawcore-post")
        try:
            futures = [pool.submit(self._extract, step, *p) for p in todo]
            for (item, _, _), future in zip(todo, futures, strict=True):
                entries, warnings = future.result()
                for w in warnings:
                    self.warn(w)
                self.checkpoint(f"{step}:item")
                keys = {e["key"] for e in entries}
                listed[:] = [e for e in listed if e["key"] not in keys] + entries
                finished.append(item)
                self.save()
        finally:  # stopped: what has not begun never does; what runs ends (stored, unrecorded)
            pool.shutdown(wait=True, cancel_futures=True)

    def raw(self) -> None:
        rec = self.recording()
        self.room()  # settled here, before the worker threads use it
        self._items("raw", [(t.track_id, [t], Selection(track_id=t.track_id))
                            for t in rec.tracks])  # fmt: skip
        self.checkpoint("raw:stored")

    def stitched(self) -> None:
        rec = self.recording()
        self.room()
        plan: list[tuple[str, list[Track], Selection]] = []
        for part in rec.participants:
            for kind in ("audio", "video"):
                mine = [t for t in part.tracks if t.kind == kind]
                if mine:
                    plan.append((f"{part.participant_id}/{kind}", mine,
                                 Selection(user_id=part.participant_id)))  # fmt: skip
        self._items("stitched", plan)
        self.checkpoint("stitched:stored")

    def scene(self) -> None:
        """Build the scene project in a temporary folder and store every file of it, the scene
        document last. Its tracks are the stored stitched ones (storage-side copies: a hard
        link on a folder, a CopyObject on S3), re-extracted only when the document lacks their
        place on the call clock (written by an older rawcore)."""
        from rawcore.pipeline.scene.build import TRACKS_DIR, PlacedFile, build_scene_project

        rid = self.target.recording_id
        stored = [(PlacedFile.of_stored(e), e["key"]) for e in self.doc["stitched_tracks"]]
        reuse = [(p, key) for p, key in stored if p is not None]
        if not reuse or len(reuse) != len(stored):
            reuse = []
        with _workdir() as work:
            events = None if self.events is None else Path(self.events)
            project = build_scene_project(self.recording(), work, events=events,
                                          participants=self.participants, quiet=True,
                                          workers=self.workers,
                                          stitched=[p for p, _ in reuse] or None)  # fmt: skip
            for w in project.warnings:
                self.warn(w)
            keys: list[str] = []
            for placed, key in reuse:
                copy = self.layout.scene(rid, f"{TRACKS_DIR}/{placed.path}")
                self.storage.copy(key, copy)
                keys.append(copy)
            scene_path = Path(project.scene_path)
            files = sorted(p for p in work.rglob("*") if p.is_file() and p != scene_path)
            for path in [*files, scene_path]:  # the scene last: it names the others
                key = self.layout.scene(rid, path.relative_to(work).as_posix())
                self.storage.put_file(key, path, move=True)
                keys.append(key)
            scene_key = keys[-1]
            otio = Path(project.otio_path).relative_to(work).as_posix()
        self.checkpoint("scene:stored")
        clip = project.scene.clip
        self.doc["scene"] = {
            "key": scene_key, "url": self.storage.describe(scene_key),
            "otio_key": self.layout.scene(rid, otio), "files": keys,
            "duration_ms": project.scene.duration_ms,
            "clip": None if clip is None else {"start_ms": clip.start_ms, "end_ms": clip.end_ms,
                                               "reason": clip.reason},
        }  # fmt: skip

    def clip(self) -> None:
        """Render the scene's auto clip from the stored scene project and record it. A clip
        already at its key is whole (stores write atomically): a run stopped after storing it
        recorded nothing more, so it is recorded without being rendered again."""
        scene = self.doc.get("scene") or {}
        clip = scene.get("clip")
        if clip is None:  # no range: the scene's warnings say why (a call too short, no speech)
            self.doc["clip"] = None
            self.checkpoint("clip:stored")
            return
        rid = self.target.recording_id
        key = self.layout.clip(rid)
        if not self.storage.exists(key):
            prefix = self.layout.scene(rid, "scene.json").removesuffix("scene.json")
            with _workdir() as work:
                for k in scene["files"]:
                    dest = work / k.removeprefix(prefix)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    self.storage.get_file(k, dest)
                out = work / "clip.mp4"
                compose(work / scene["key"].removeprefix(prefix), out, clip=True)
                self.storage.put_file(key, out, move=True)
        self.checkpoint("clip:stored")
        self.doc["clip"] = {
            **clip, "rendered": True, "key": key, "url": self.storage.describe(key),
            "bytes": self.storage.size(key), "duration_ms": clip["end_ms"] - clip["start_ms"],
        }  # fmt: skip

    def run(self) -> PostResult:
        ran: list[Step] = []
        skipped: list[Step] = []
        try:
            if not all(self.done(s) for s in ("raw", "stitched", "scene")):
                self.recording()  # a recording that cannot be opened stops the run at once
            for step in STEPS:
                if step == "clip" and not self.render_clip:
                    continue  # left pending for a run that renders it
                # A finished finalize runs again when the recorder has since left an upload.
                again = step == "finalize" and self.done(step) and bool(
                    self.storage.pending_uploads(self.layout.composed_prefix(
                        self.target.recording_id))
                )  # fmt: skip
                if self.done(step) and not again:
                    skipped.append(step)
                    self.checkpoint(f"{step}:skipped")
                    continue
                self.checkpoint(f"{step}:start")
                getattr(self, step)()
                self.finish(step)
                ran.append(step)
                self.checkpoint(f"{step}:done")
        finally:
            self.close()
        key = self.target.metadata_key
        return PostResult(key, self.storage.describe(key), tuple(ran), tuple(skipped),
                          self.doc, tuple(self.warnings))  # fmt: skip


@contextmanager
def _workdir() -> Iterator[Path]:
    try:
        tmp = tempfile.TemporaryDirectory(prefix="rawcore-post-")
    except OSError as exc:
        raise OutputError(f"cannot make a temporary folder ({exc.strerror})") from None
    with tmp as path:
        yield Path(path)


def post_process(
    source: str | os.PathLike[str] | None,
    target: PostTarget,
    *,
    events: str | os.PathLike[str] | None = None,
    participants: Mapping[str, str] | None = None,
    s3_endpoint: str | None = None,
    cache_dir: Path | None = None,
    checkpoint: Checkpoint | None = None,
    workers: int | None = None,
    clip: bool = True,
) -> PostResult:
    """Run the steps `target`'s metadata document does not list as done, in order.

    `source` is the recording (archive, folder, `s3://` or presigned URL); it is opened only
    when a step needs it (None is fine when every such step is done). `events` is the studio's
    event log for the scene, `participants` the names shown for participant ids. `checkpoint`
    is called at each checkpoint (see `Checkpoint`): progress for a caller, a place to stop
    a run for a test. `workers` tracks are extracted at a time (default: 2, or 1 on one CPU).
    `clip=False` leaves the clip render (the one step that is not needed to serve the call's
    tracks and scene) pending: neither run nor skipped.
    """
    run = _Run(target, source, events=events, participants=participants,
               s3_endpoint=s3_endpoint, cache_dir=cache_dir, checkpoint=checkpoint,
               workers=workers, clip=clip)  # fmt: skip
    return run.run()


__all__ = ["SCHEMA", "STEPS", "Checkpoint", "PostResult", "PostTarget", "Step", "load_document",
           "new_document", "post_process"]  # fmt: skip
