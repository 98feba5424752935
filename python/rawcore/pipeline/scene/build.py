"""`rawcore scene`: a recording (and the studio's event log) in, a self-contained editor
project out: `scene.json`, `scene.otio` and the stitched per-participant tracks under `tracks/`.

Order of work: the event log is read and checked in full first (every limit and contradiction
is an error before any media work), and its hosts are held against the recording's
participants. Then the stitched tracks are written into `tracks/` by the same engine as
`extract-audio --stitch` / `extract-video --stitch` (Matroska), or reused when `tracks/`
already holds them for this recording (its `manifest.json` lists every planned file, each
present with its size). Voice activity comes from the same plan in one core call per audio
track. The scene's clock: `start_unix_ms` is the log's `recording_started` (or, without one,
the first media packet on the call timeline); every event lands at `unix_ms - start_unix_ms`.

The media may also come already stored: a folder of the tracks post-process wrote
(`rawcore.source.track_folder.TrackFolder`, its stitched files hard-linked into `tracks/`), or
the stitched tracks post-process's own stitched step stored (`stitched=`, which the caller puts
in place). Either way nothing is extracted twice; from a folder there is no voice activity.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

from rawcore import _core
from rawcore.errors import InputError, OutputError, SceneError
from rawcore.media.audio import extract_audio, plan_audio
from rawcore.media.files import prepare_output_dir
from rawcore.media.formats import DEFAULT_MAX_FILL_MS
from rawcore.media.manifest import MANIFEST_NAME, MANIFEST_SCHEMA, ManifestEntry
from rawcore.media.outputs import OutputJob, Selection, open_archive_of, plan_outputs
from rawcore.media.video import VIDEO_CODECS, extract_video
from rawcore.pipeline.scene.events import EventLog, read_event_log
from rawcore.pipeline.scene.layout import Feed, auto_layout
from rawcore.pipeline.scene.model import (
    MAX_DURATION_MS,
    SCENE_NAME,
    Background,
    Canvas,
    Hook,
    Interval,
    LayoutKeyframe,
    Scene,
    SceneTrack,
    Source,
    write_scene,
)
from rawcore.pipeline.scene.otio import write_otio
from rawcore.pipeline.scene.speech import SLOT_MS, Levels, choose_clip, speech_slots
from rawcore.recording.model import Recording
from rawcore.recording.timeline import timeline_of
from rawcore.source.track_folder import FolderTrack, TrackFolder

TRACKS_DIR = "tracks"
OTIO_NAME = "scene.otio"
#: The stitched tracks' container: Matroska holds every codec rawcore writes.
TRACK_FORMAT: Final = "mkv"
DEFAULT_CANVAS = Canvas(1920, 1080, 30.0)
DEFAULT_BACKGROUND = "#000000"


@dataclass(frozen=True)
class PlacedFile:
    """A track file of the project (`path` relative to `tracks/`), placed on the call clock."""

    path: str
    participant_id: str
    kind: str
    screenshare: bool
    start_unix_ms: int
    duration_ms: int

    @classmethod
    def of_entry(cls, e: ManifestEntry) -> PlacedFile:
        assert e.start_unix_ms is not None  # the reused and the written both have one
        return cls(e.path, e.user_id or "unknown", e.kind, e.screenshare, e.start_unix_ms,
                   e.duration_ms)  # fmt: skip

    @classmethod
    def of_stored(cls, entry: Mapping[str, object]) -> PlacedFile | None:
        """A stitched track as the post-process document records it (`name`, `kind`,
        `participant_id`, `start_unix_ms`, …); None when it lacks a field (an older one)."""
        name, pid, kind = entry.get("name"), entry.get("participant_id"), entry.get("kind")
        start, duration = entry.get("start_unix_ms"), entry.get("duration_ms")
        if not (isinstance(name, str) and isinstance(pid, str) and kind in ("audio", "video")
                and isinstance(start, int) and isinstance(duration, int)):  # fmt: skip
            return None
        return cls(name, pid, str(kind), bool(entry.get("screenshare")), start, duration)


@dataclass(frozen=True)
class SceneProject:
    """What `build_scene_project` wrote: the scene, where its files are, and warnings."""

    scene: Scene
    scene_path: Path
    otio_path: Path
    track_paths: tuple[Path, ...]
    warnings: tuple[str, ...]


def read_participants(path: str | os.PathLike[str]) -> dict[str, str]:
    """A participants map file: a JSON object `{participant_id: name}`."""
    p = Path(path)
    try:
        if p.stat().st_size > 16 * 1024 * 1024:
            raise SceneError(f"{p}: larger than 16 MiB; not a participants map")
        data = json.loads(p.read_bytes())
    except FileNotFoundError:
        raise SceneError(f"{p}: no such participants file") from None
    except OSError as exc:
        raise SceneError(f"{p}: cannot be read ({exc.strerror})") from None
    except (ValueError, RecursionError):
        raise SceneError(f"{p}: not JSON") from None
    return check_participants(data, where=str(p))


def check_participants(data: object, *, where: str = "participants") -> dict[str, str]:
    if not isinstance(data, Mapping):
        raise SceneError(f"{where}: a JSON object {{participant_id: name}} is required")
    names: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value:
            raise SceneError(f"{where}: {key!r}: the name must be a non-empty string")
        names[key] = value[:256]
    return names


# --- stitched tracks ----------------------------------------------------------------------------


def _manifest_entries(tracks_dir: Path, rec: Recording) -> dict[str, ManifestEntry]:
    """The stitched entries of `tracks_dir/manifest.json` whose files are there, by path; none
    when the manifest is of another call."""
    try:
        doc = json.loads((tracks_dir / MANIFEST_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA:
        return {}
    if doc.get("call") != rec.call_json():
        return {}
    names = {f.name for f in fields(ManifestEntry)}
    found: dict[str, ManifestEntry] = {}
    for item in doc.get("outputs", []):
        if not isinstance(item, dict) or not item.get("stitched"):
            continue
        try:
            entry = ManifestEntry(**{k: v for k, v in item.items() if k in names})
            size = (tracks_dir / entry.path).stat().st_size
        except (TypeError, OSError):
            continue
        if size == entry.bytes and entry.start_unix_ms is not None:
            found[entry.path] = entry
    return found


def _stitched(
    rec: Recording,
    tracks_dir: Path,
    kind: str,
    jobs: Sequence[OutputJob],
    warnings: list[str],
    workers: int | None,
) -> list[ManifestEntry]:
    """The stitched files of one kind: reused when all are there, else written."""
    if not jobs:
        return []
    have = _manifest_entries(tracks_dir, rec)
    reused = [have.get(j.name) for j in jobs]
    if all(e is not None and e.kind == kind for e in reused):
        return [e for e in reused if e is not None]
    if kind == "audio":
        out = extract_audio(rec, tracks_dir, fmt=TRACK_FORMAT, stitch=True, workers=workers)
    else:
        out = extract_video(rec, tracks_dir, fmt=TRACK_FORMAT, stitch=True, workers=workers)
    warnings.extend(out.warnings)
    return out.entries


def _activity(
    rec: Recording, jobs: Sequence[OutputJob], start_unix_ms: int, workers: int | None
) -> tuple[list[Levels], list[str]]:
    """Each audio output's levels per slot, placed on the scene's timeline."""
    archive = open_archive_of(rec)

    def one(job: OutputJob) -> Levels | str:
        try:
            with contextlib.ExitStack() as stack:
                levels, _ = _core.voice_activity(
                    job.inputs(stack, archive),
                    codec=job.codec,
                    payload_type=job.payload_type,
                    slot_ms=SLOT_MS,
                )
        except (InputError, ValueError) as exc:
            return f"{job.name}: no voice activity ({exc})"
        return Levels((job.start_unix_ms or start_unix_ms) - start_unix_ms, levels)

    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 2)) as pool:
        results = list(pool.map(one, jobs))
    return [r for r in results if isinstance(r, Levels)], [r for r in results if isinstance(r, str)]


# --- the scene's times --------------------------------------------------------------------------


def _clamp(t: int, duration_ms: int) -> int:
    return min(max(t, 0), duration_ms)


def _event_layout(
    log: EventLog, start: int, duration_ms: int, warnings: list[str]
) -> tuple[LayoutKeyframe, ...]:
    keyframes: list[LayoutKeyframe] = []
    late = 0
    for k in log.layouts:  # in time order, one per instant
        t = k.unix_ms - start
        if t > duration_ms:
            late += 1
            continue
        t = max(t, 0)
        if keyframes and keyframes[-1].t_ms == t:  # several before the start: the last holds
            keyframes[-1] = LayoutKeyframe(t, k.hosts)
        else:
            keyframes.append(LayoutKeyframe(t, k.hosts))
    if late:
        warnings.append(f"{log.path}: {late} layout event(s) after the recording's end ignored")
    return tuple(keyframes)


def _backgrounds(log: EventLog | None, start: int, duration_ms: int) -> tuple[Background, ...]:
    if log is None or not log.backgrounds:
        return (Background(0, color=DEFAULT_BACKGROUND),)
    out: list[Background] = []
    for unix_ms, _, b in log.backgrounds:
        t = unix_ms - start
        if t > duration_ms:
            continue
        placed = Background(max(t, 0), color=b.color, image=b.image)
        if out and out[-1].t_ms == placed.t_ms:
            out[-1] = placed
        else:
            out.append(placed)
    return tuple(out) or (Background(0, color=DEFAULT_BACKGROUND),)


def _check_hosts(log: EventLog, known: set[str], screens: set[str], warnings: list[str]) -> None:
    """Every host names a participant of the recording (an error naming the line)."""
    warned = False
    for k in log.layouts:
        for h in k.hosts:
            if h.participant_id not in known:
                raise SceneError(
                    f"{log.path}: line {k.line}: host {h.participant_id!r} is not a participant "
                    f"of the recording ({', '.join(sorted(known)) or 'none'})"
                )
            if h.source == "screen" and h.participant_id not in screens and not warned:
                warned = True
                warnings.append(
                    f"{log.path}: line {k.line}: {h.participant_id} shares no screen in the "
                    "recording; the box shows the background"
                )


#: A video feed's span on the call clock: participant, source, first and last Unix ms.
Span = tuple[str, Source, int, int]


def _spans(rec: Recording) -> list[Span]:
    """Every video track (each session apart: a leave and a rejoin are changes) as a feed,
    placed by the call timeline as the stitched tracks are."""
    timeline = timeline_of(rec)
    feeds: list[Span] = []
    for t in rec.tracks:
        spans = []
        for seg in t.segments:
            at = timeline.start(seg)
            at = seg.start_unix_ms if at is None else at
            if at is not None:
                spans.append((at, at + seg.duration_ms))
        if t.kind != "video" or not spans:
            continue
        source: Source = "screen" if t.screenshare else "camera"
        a, b = min(s for s, _ in spans), max(e for _, e in spans)
        feeds.append((t.participant_id, source, round(a), round(b)))
    return feeds


def _folder_spans(folder: TrackFolder) -> list[Span]:
    """The folder's raw video tracks (a file per session) as feeds; its stitched ones when it
    has no raw video."""
    videos = [t for t in folder.raw if t.kind == "video"] or [
        t for t in folder.stitched if t.kind == "video"
    ]
    return [(t.participant_id, "screen" if t.screenshare else "camera", t.start_unix_ms,
             t.start_unix_ms + t.duration_ms) for t in videos]  # fmt: skip


def _link(src: Path, dst: Path) -> None:
    """`dst` holds `src`'s bytes: a hard link (the folder's file is never changed in place),
    else a copy, under a temporary name renamed when complete."""
    with contextlib.suppress(OSError):
        if os.path.samefile(src, dst):
            return
    tmp = dst.with_name(f".{dst.name}.link")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or no links here: copy
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise OutputError(f"{dst}: cannot write ({exc.strerror})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _folder_files(folder: TrackFolder, tracks_dir: Path) -> list[PlacedFile]:
    """The folder's stitched tracks (its raw ones when it has none) linked into `tracks_dir`,
    each under its participant's folder: no extraction, no bytes rewritten."""
    chosen: tuple[FolderTrack, ...] = folder.stitched or folder.raw
    files: list[PlacedFile] = []
    for t in chosen:
        rel = f"{t.participant_id}/{t.path.name}"
        (tracks_dir / t.participant_id).mkdir(exist_ok=True)
        _link(t.path, tracks_dir / rel)
        files.append(PlacedFile(rel, t.participant_id, t.kind, t.screenshare, t.start_unix_ms,
                                t.duration_ms))  # fmt: skip
    return files


def build_scene_project(
    recording: Recording | TrackFolder,
    output_dir: Path,
    *,
    events: Path | None = None,
    participants: Mapping[str, str] | None = None,
    quiet: bool = False,
    clip: bool = True,
    event_log: EventLog | None = None,
    workers: int | None = None,
    stitched: Sequence[PlacedFile] | None = None,
) -> SceneProject:
    """Write `output_dir/scene.json`, `output_dir/scene.otio` and the stitched tracks under
    `output_dir/tracks/` (reused when there); see the module's docs.

    `recording`: a raw recording, or a folder of the tracks post-process stored
    (`rawcore.source.track_folder`), whose stitched files are linked into `tracks/` as they
    are (no voice activity without the RTP captures: no automatic clip, with a warning).
    `events`: the studio's event log (`events.jsonl`), else the automatic layout.
    `participants`: display names by participant id (the id when missing). `quiet` is for
    callers that print: the builder prints nothing and returns its warnings. `clip=False`
    skips voice activity and the automatic clip. `event_log`: the log already read (by
    `read_event_log(events)`, e.g. to check it before the recording is opened), used instead of
    reading `events` again. `stitched`: the recording's stitched tracks, already stored (by
    post-process's stitched step): nothing is extracted, the caller puts each file at
    `tracks/{path}`.
    """
    del quiet  # nothing is printed here; kept so every caller can pass its own setting
    warnings: list[str] = []
    names = check_participants(dict(participants or {}))
    log = event_log
    if log is None and events is not None:
        log = read_event_log(events)
    if isinstance(recording, TrackFolder):
        known = set(recording.participants)
        screens = {t.participant_id for t in recording.tracks if t.kind == "video"
                   and t.screenshare}  # fmt: skip
    else:
        known = {p.participant_id for p in recording.participants}
        screens = {t.participant_id for t in recording.tracks if t.kind == "video"
                   and t.screenshare}  # fmt: skip
    if log is not None:
        warnings.extend(log.warnings)
        _check_hosts(log, known, screens, warnings)
        if (
            log.started_unix_ms is not None
            and log.stopped_unix_ms is not None
            and log.stopped_unix_ms < log.started_unix_ms
        ):
            raise SceneError(f"{log.path}: recording_stopped comes before recording_started")

    activity: Callable[[int], tuple[list[Levels], list[str]]] | None = None
    if isinstance(recording, TrackFolder):
        out = prepare_output_dir(output_dir)
        files = _folder_files(recording, prepare_output_dir(out / TRACKS_DIR))
        spans = _folder_spans(recording)
        default_id = recording.recording_id
        if clip:
            warnings.append(f"{recording.root}: no automatic clip from stored tracks (voice "
                            "activity is measured on the raw recording)")  # fmt: skip
    else:
        rec = recording
        audio_jobs, _ = plan_audio(
            rec, Selection(), fmt=TRACK_FORMAT, stitch=True, max_fill_ms=DEFAULT_MAX_FILL_MS
        )
        video_jobs, _ = plan_outputs(
            rec,
            Selection(),
            kind="video",
            ext=TRACK_FORMAT,
            stitch=True,
            supported=VIDEO_CODECS,
            max_fill_ms=DEFAULT_MAX_FILL_MS,
        )
        if not audio_jobs and not video_jobs:
            raise InputError("the recording has no audio or video rawcore can extract")
        out = prepare_output_dir(output_dir)
        if stitched is None:
            tracks_dir = prepare_output_dir(out / TRACKS_DIR)
            entries = _stitched(rec, tracks_dir, "audio", audio_jobs, warnings, workers)
            entries += _stitched(rec, tracks_dir, "video", video_jobs, warnings, workers)
            files = [PlacedFile.of_entry(e) for e in entries]
        else:
            files = list(stitched)
        spans = _spans(rec)
        default_id = rec.call_session_id or rec.call_id or "recording"
        if clip and audio_jobs:
            activity = functools.partial(_activity, rec, audio_jobs, workers=workers)

    return _assemble(out, files, spans, log, names, activity, default_id, warnings)


def _assemble(
    out: Path,
    files: Sequence[PlacedFile],
    spans: Sequence[Span],
    log: EventLog | None,
    names: Mapping[str, str],
    activity: Callable[[int], tuple[list[Levels], list[str]]] | None,
    default_id: str,
    warnings: list[str],
) -> SceneProject:
    """The scene of placed track files, feeds and the log, written beside its tracks."""
    # The clock: the studio's start, else the first media packet on the call timeline.
    if not files:
        raise InputError("the recording has no media with a time on the call clock")
    media_start = min(f.start_unix_ms for f in files)
    media_end = max(f.start_unix_ms + f.duration_ms for f in files)
    start = media_start
    if log is not None and log.started_unix_ms is not None:
        start = log.started_unix_ms
        if media_start < start:
            warnings.append(
                f"{log.path}: media begins {start - media_start} ms before recording_started; "
                "the scene starts at the first media packet"
            )
            start = media_start
    end = media_end
    if log is not None and log.stopped_unix_ms is not None:
        end = log.stopped_unix_ms
    duration_ms = end - start
    if not 0 <= duration_ms <= MAX_DURATION_MS:
        raise SceneError(f"the recording's span ({duration_ms} ms) is outside 0..{MAX_DURATION_MS}")

    tracks: list[SceneTrack] = []
    for f in sorted(files, key=lambda f: (f.participant_id, f.screenshare, f.kind, f.path)):
        at = f.start_unix_ms - start
        if at > duration_ms:
            warnings.append(f"{f.path}: starts after the recording's end; left out of the scene")
            continue
        pid = f.participant_id
        tracks.append(
            SceneTrack(
                participant_id=pid,
                name=names.get(pid, pid),
                kind="audio" if f.kind == "audio" else "video",
                source="screen" if f.screenshare else "camera",
                path=f"{TRACKS_DIR}/{f.path}",
                start_ms=at,
                duration_ms=f.duration_ms,
            )
        )

    if log is not None and log.layouts:
        layout = _event_layout(log, start, duration_ms, warnings)
    else:
        feeds = [Feed(pid, src, a - start, b - start) for pid, src, a, b in spans]
        layout = auto_layout(feeds, duration_ms)
    pauses: list[Interval] = []
    hooks: list[Hook] = []
    if log is not None:
        pause_spans, hook_spans = log.spans(end)
        for p in pause_spans:
            a, b = (
                _clamp(p.start_unix_ms - start, duration_ms),
                _clamp(p.end_unix_ms - start, duration_ms),
            )
            if b > a:
                pauses.append(Interval(a, b))
        for h in hook_spans:
            a, b = (
                _clamp(h.start_unix_ms - start, duration_ms),
                _clamp(h.end_unix_ms - start, duration_ms),
            )
            hooks.append(Hook(h.hook_id, h.text, a, b))

    chosen = None
    if activity is not None:
        levels, problems = activity(start)
        warnings.extend(problems)
        active = speech_slots(levels, duration_ms)
        chosen, notes = choose_clip(active, duration_ms, pauses, hooks)
        warnings.extend(notes)

    extra: dict[str, object] = {}
    if log is not None:
        extra.update(log.extra)
        extra["event_log"] = {"file": Path(log.path).name, "events": log.events}
    backgrounds = _backgrounds(log, start, duration_ms)
    for bg in backgrounds:
        if bg.image is not None and not (out / bg.image).is_file():
            warnings.append(
                f"background image {bg.image!r} is not in {out}; put it there for the renderer"
            )
    scene = Scene(
        recording_id=(log.recording_id if log is not None else None) or default_id,
        start_unix_ms=start,
        duration_ms=duration_ms,
        canvas=(log.canvas if log is not None else None) or DEFAULT_CANVAS,
        backgrounds=backgrounds,
        tracks=tuple(tracks),
        layout=layout,
        pauses=tuple(pauses),
        hooks=tuple(hooks),
        clip=chosen,
        extra=extra,
    )
    scene_path = write_scene(scene, out / SCENE_NAME)
    otio_path = write_otio(scene, out / OTIO_NAME)
    return SceneProject(
        scene=scene,
        scene_path=scene_path,
        otio_path=otio_path,
        track_paths=tuple(out / t.path for t in scene.tracks),
        warnings=tuple(dict.fromkeys(warnings)),
    )
