"""extract-audio: one exact-timeline audio file per track, session or stitched participant.

Planning happens here (which segments form one output, where each sits on the output's
timeline, what the file is called); the packet work happens in the Rust core in one call per
output with the GIL released, so outputs are written in parallel. Opus is remuxed, never
re-encoded; G.711 and G.722 are decoded by the core and stored losslessly as FLAC with PyAV.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from rawcore import _core
from rawcore.archive import Archive
from rawcore.errors import InputError, RawcoreError
from rawcore.model import Recording, Segment, Track
from rawcore.output import (
    ManifestEntry,
    atomic_path,
    prepare_output_dir,
    safe_component,
    write_manifest,
)

AudioFormat = Literal["mkv", "mka", "webm", "ogg"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = ("mkv", "mka", "webm", "ogg")
_CONTAINER = {"mkv": "matroska", "mka": "matroska", "webm": "webm", "ogg": "ogg"}
_PCM_CODECS = {"pcmu", "pcma", "g722"}
_SUPPORTED = {"opus"} | _PCM_CODECS


@dataclass(frozen=True)
class Selection:
    """The --user-id / --session-id / --track-id filter (at most one is set)."""

    user_id: str | None = None
    session_id: str | None = None
    track_id: str | None = None

    def admits(self, track: Track) -> bool:
        return (
            (self.user_id is None or track.participant_id == self.user_id)
            and (self.session_id is None or track.session_id == self.session_id)
            and (self.track_id is None or track.track_id == self.track_id)
        )


@dataclass(frozen=True)
class OutputJob:
    """One output file (audio or video): its segments and where each starts, in ms."""

    name: str
    tracks: tuple[Track, ...]
    segments: tuple[tuple[Segment, int], ...]
    start_unix_ms: int | None
    user_id: str
    session_id: str | None
    codec: str
    screenshare: bool
    stitched: bool
    #: Per segment: how fast its media clock runs against the recorder's (ppm), which the core
    #: follows gradually; empty means none.
    drift_ppm: tuple[float, ...] = ()

    def inputs(self, stack: contextlib.ExitStack, archive: Archive) -> list[tuple[Any, int, float]]:
        """The core's segment arguments: each capture opened (closed with `stack`), its offset
        and its clock drift."""
        drift = self.drift_ppm or (0.0,) * len(self.segments)
        return [
            (stack.enter_context(archive.open_buffer(seg.capture)), offset, ppm)
            for (seg, offset), ppm in zip(self.segments, drift, strict=True)
        ]


def _call_start_ms(rec: Recording) -> int:
    return rec.call_start_unix_ms or rec.start_unix_ms or 0


def _placed(
    tracks: Sequence[Track], start_of: Callable[[Segment], float | None]
) -> tuple[tuple[tuple[Segment, int], ...], int | None]:
    """Segments in time order with their offsets (ms) from the earliest start on the call's
    timeline, and that earliest start (Unix ms)."""
    starts = {s.capture: start_of(s) for t in tracks for s in t.segments}
    segments = sorted(
        (s for t in tracks for s in t.segments),
        key=lambda s: (starts[s.capture] is None, starts[s.capture] or 0, s.capture),
    )
    known = [v for v in starts.values() if v is not None]
    t0 = min(known) if known else None
    placed = []
    for s in segments:
        start = starts[s.capture]
        placed.append((s, 0 if t0 is None or start is None else round(start - t0)))
    return tuple(placed), None if t0 is None else round(t0)


def segment_start(rec: Recording) -> Callable[[Segment], float | None]:
    """Each segment's start on the call timeline (falling back to the model's time)."""
    from rawcore.timeline import timeline_of

    timeline = timeline_of(rec)

    def start(seg: Segment) -> float | None:
        placed = timeline.start(seg)
        return placed if placed is not None else seg.start_unix_ms

    return start


def plan_outputs(
    rec: Recording,
    selection: Selection,
    *,
    kind: Literal["audio", "video"],
    ext: str,
    stitch: bool,
    supported: frozenset[str],
) -> tuple[list[OutputJob], list[str]]:
    """Decide the output files of one kind; returns the jobs and warnings for tracks skipped.

    One file per track of a session, or with `stitch` one per participant (camera and screen
    share apart, and codecs apart), named as stream-cli names them.
    """
    warnings: list[str] = []
    usable = []
    for t in rec.tracks:
        if t.kind != kind or not selection.admits(t):
            continue
        if t.codec not in supported:
            warnings.append(
                f"track {t.track_id} ({t.participant_id}/{t.session_id}): codec "
                f"{t.codec or 'unknown'} is not supported for {kind} extraction; skipped"
            )
        else:
            usable.append(t)

    groups: dict[tuple[str, str | None, bool, str], list[Track]] = {}
    for t in usable:
        per = None if stitch else f"{t.session_id}\0{t.track_id}"
        key = (t.participant_id, per, t.screenshare, t.codec or "")
        groups.setdefault(key, []).append(t)

    call_type = safe_component(rec.call_type, fallback="call")
    call_id = safe_component(rec.call_id, fallback="unknown")
    start_ms = _call_start_ms(rec)
    start_of = segment_start(rec)
    from rawcore.timeline import timeline_of

    timeline = timeline_of(rec)
    stems: list[tuple[str, tuple[str, str | None, bool, str], list[Track]]] = []
    per_stem: dict[str, int] = {}
    for key, group in groups.items():
        user, _, screenshare, _ = key
        label = f"shared_{kind}_only" if screenshare else f"{kind}_only"
        parts = ["individual", call_type, call_id, safe_component(user)]
        if not stitch:
            parts.append(safe_component(group[0].session_id))
        stem = "_".join([*parts, label, str(start_ms)])
        per_stem[stem] = per_stem.get(stem, 0) + 1
        stems.append((stem, key, group))
    jobs: list[OutputJob] = []
    for stem, (user, _, screenshare, codec), group in stems:
        name = stem
        if per_stem[stem] > 1:  # several tracks of a kind in one session: keep every one
            name = f"{stem}_{safe_component(group[0].track_id)}"
        segments, t0 = _placed(group, start_of)
        jobs.append(
            OutputJob(
                name=f"{name}.{ext}",
                tracks=tuple(group),
                segments=segments,
                start_unix_ms=t0,
                user_id=user,
                session_id=None if stitch else group[0].session_id,
                codec=codec,
                screenshare=screenshare,
                stitched=stitch,
                drift_ppm=tuple(timeline.clock_ppm(seg) for seg, _ in segments),
            )
        )
    jobs.sort(key=lambda j: j.name)
    return jobs, warnings


def plan_audio(
    rec: Recording, selection: Selection, *, fmt: AudioFormat, stitch: bool
) -> tuple[list[OutputJob], list[str]]:
    """The audio outputs of `extract-audio`."""
    return plan_outputs(
        rec, selection, kind="audio", ext=fmt, stitch=stitch, supported=frozenset(_SUPPORTED)
    )


def _entry(job: OutputJob, path: Path, out_dir: Path, report: Any, container: str) -> ManifestEntry:
    return ManifestEntry(
        path=path.relative_to(out_dir).as_posix(),
        kind="audio",
        user_id=job.user_id,
        session_id=job.session_id,
        track_ids=list(dict.fromkeys(t.track_id for t in job.tracks)),
        codec="flac" if job.codec in _PCM_CODECS else job.codec,
        container=container,
        start_unix_ms=job.start_unix_ms,
        duration_ms=round(report.duration_ms),
        bytes=path.stat().st_size,
        sample_rate=int(report.sample_rate),
        channels=int(report.channels),
        packets=int(report.packets_written),
        packets_lost=int(report.packets_lost),
        duplicates=int(report.duplicates),
        late_packets=int(report.late),
        malformed_packets=int(report.malformed),
        dtx_filled_ms=round(report.dtx_filled_ms),
        loss_filled_ms=round(report.loss_filled_ms),
        pause_filled_ms=round(report.pause_filled_ms),
        timestamp_resets=int(report.resets),
        screenshare=job.screenshare,
        stitched=job.stitched,
        warnings=list(report.warnings),
    )


def _write_flac(
    tmp: Path, container: str, rate: int, run: Callable[[Callable[[Any], None]], Any]
) -> Any:
    """Stream the core's PCM chunks into FLAC (Matroska or Ogg) with PyAV."""
    import av

    fmt = "ogg" if container == "ogg" else "matroska"
    with av.open(str(tmp), "w", format=fmt) as out:
        stream = out.add_stream("flac", rate=rate)
        stream.layout = "mono"
        pts = 0

        def sink(chunk: np.ndarray[Any, np.dtype[np.int16]]) -> None:
            nonlocal pts
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            pts += chunk.shape[0]
            for packet in stream.encode(frame):
                out.mux(packet)

        report = run(sink)
        for packet in stream.encode(None):
            out.mux(packet)
    return report


def _run_job(
    rec: Recording,
    job: OutputJob,
    out_dir: Path,
    fmt: AudioFormat,
    fill_gaps: bool,
    fix_dtx: bool,
) -> ManifestEntry:
    archive = rec.archive
    if archive is None:
        raise RawcoreError("the recording is closed")
    container = _CONTAINER[fmt]
    pts = {s.payload_type for s, _ in job.segments if s.payload_type is not None}
    payload_type = pts.pop() if len(pts) == 1 else None
    with contextlib.ExitStack() as stack:
        inputs = job.inputs(stack, archive)
        with atomic_path(out_dir, job.name) as tmp:
            options: dict[str, Any] = {
                "codec": job.codec,
                "payload_type": payload_type,
                "fill_gaps": fill_gaps,
                "fix_dtx": fix_dtx,
            }
            if job.codec in _PCM_CODECS:
                if container == "webm":
                    raise InputError(
                        f"{job.name}: WebM cannot hold {job.codec} audio; use --format mkv"
                    )
                rate = 16_000 if job.codec == "g722" else 8_000
                report = _write_flac(
                    tmp, container, rate, lambda sink: _core.decode_pcm(inputs, sink, **options)
                )
            else:
                report = _core.extract_audio(inputs, str(tmp), container=container, **options)
            if report.packets_written == 0:
                raise InputError(f"{job.name}: no audio packets in {len(inputs)} capture(s)")
        return _entry(job, out_dir / job.name, out_dir, report, container)


def run_jobs(
    rec: Recording,
    jobs: Sequence[OutputJob],
    out_dir: Path,
    run_one: Callable[[OutputJob], ManifestEntry],
    *,
    command: str,
    warnings: list[str],
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> list[ManifestEntry]:
    """Run `run_one` over the jobs in parallel (the core releases the GIL), then write the
    manifest. A job that fails becomes a warning ending in "; not written"; when nothing could
    be written the first error is raised."""
    entries: list[ManifestEntry] = []
    errors: list[RawcoreError] = []

    def run(job: OutputJob) -> ManifestEntry | RawcoreError:
        try:
            return run_one(job)
        except RawcoreError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 2)) as pool:
        for done, (job, result) in enumerate(zip(jobs, pool.map(run, jobs), strict=True), 1):
            if on_done is not None:
                on_done(done, len(jobs))
            if isinstance(result, RawcoreError):
                errors.append(result)
                warnings.append(f"{job.name}: {result}; not written")
            else:
                entries.append(result)
                warnings.extend(f"{job.name}: {w}" for w in result.warnings)
    if not entries and errors:
        raise errors[0]
    write_manifest(out_dir, entries, call=call_json(rec), command=command)
    return entries


def extract_audio(
    rec: Recording,
    output: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    fmt: AudioFormat = "mkv",
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    stitch: bool = False,
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> tuple[list[ManifestEntry], list[str]]:
    """Write the audio outputs and `manifest.json`; returns the entries and warnings.

    A track that fails is skipped with a warning (the rest are still written); when nothing
    could be written the first error is raised.
    """
    if fmt not in AUDIO_FORMATS:
        raise InputError(f"unknown audio format {fmt!r}; choose one of {', '.join(AUDIO_FORMATS)}")
    out_dir = prepare_output_dir(output)
    jobs, warnings = plan_audio(rec, selection or Selection(), fmt=fmt, stitch=stitch)
    if not jobs:
        raise InputError("no audio tracks match the selection")
    entries = run_jobs(
        rec,
        jobs,
        out_dir,
        lambda job: _run_job(rec, job, out_dir, fmt, fill_gaps, fix_dtx),
        command="extract-audio",
        warnings=warnings,
        workers=workers,
        on_done=on_done,
    )
    return entries, warnings


def extract_track(
    rec: Recording, track: Track, path: Path, *, fill_gaps: bool = True, fix_dtx: bool = True
) -> ManifestEntry:
    """One track to one file at `path` (the API's `track.extract_audio/extract_video`); the
    suffix picks the container. No manifest is written: the entry is returned."""
    from rawcore.video import VIDEO_CODECS, VideoFormat, run_video_job

    kind = track.kind
    ext = path.suffix.lstrip(".").lower()
    allowed = AUDIO_FORMATS if kind == "audio" else ("mkv", "webm")
    if ext not in allowed:
        raise InputError(f"{path}: a {kind} track is written as .{' or .'.join(allowed)}")
    supported = frozenset(_SUPPORTED) if kind == "audio" else VIDEO_CODECS
    jobs, warnings = plan_outputs(
        rec,
        Selection(track_id=track.track_id),
        kind=kind,
        ext=ext,
        stitch=False,
        supported=supported,
    )
    job = next((j for j in jobs if track in j.tracks), None)
    if job is None:
        raise InputError("; ".join(warnings) or f"track {track.track_id} cannot be extracted")
    out_dir = prepare_output_dir(path.parent or Path("."))
    job = replace(job, name=path.name)
    if kind == "audio":
        return _run_job(rec, job, out_dir, ext, fill_gaps, fix_dtx)
    return run_video_job(rec, job, out_dir, cast(VideoFormat, ext), fill_gaps)


def call_json(rec: Recording) -> dict[str, Any]:
    return {
        "call_type": rec.call_type,
        "call_id": rec.call_id,
        "call_session_id": rec.call_session_id,
        "call_start_unix_ms": rec.call_start_unix_ms,
        "start_unix_ms": rec.start_unix_ms,
    }
