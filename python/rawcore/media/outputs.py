"""The output engine shared by every per-track command: which files to write, and writing them.

Planning decides which segments form one output (a track of a session, or with `stitch` every
session of a participant), where each segment sits on the output's timeline (the call
timeline's placement), and what the file is called (stream-cli's names). Running writes the
outputs in parallel (the core releases the GIL), each under a temporary name, and returns
typed results: an entry per file written and a `JobFailure` per file that could not be. The
manifest is written from the entries.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, TypeVar

from rawcore import _core
from rawcore.errors import RawcoreError
from rawcore.media.files import safe_component
from rawcore.media.manifest import ManifestEntry, OutputKind, write_manifest
from rawcore.recording.columns import arrival_gaps, capture_facts
from rawcore.recording.model import Recording, Segment, Track
from rawcore.recording.timeline import timeline_of
from rawcore.source.archive import Archive, Buffer
from rawcore.threads import map_in_threads

#: One segment as the core takes it: the capture's bytes, its offset (ms) on the output's
#: timeline and its clock drift (ppm).
SegmentArg = tuple[Buffer, int, float]


@dataclass(frozen=True)
class Selection:
    """The --user-id / --session-id / --track-id filter (at most one is set)."""

    user_id: str | None = None
    session_id: str | None = None
    track_id: str | None = None

    @property
    def label(self) -> str | None:
        """What a whole-call output (the mix, the QA report) made from this selection adds to
        its name, so it never replaces the unfiltered one: `user-{id}`, `session-{id}`,
        `track-{id}`; None without a filter."""
        for kind, value in (("user", self.user_id), ("session", self.session_id)):
            if value is not None:
                return f"{kind}-{safe_component(value)}"
        return None if self.track_id is None else f"track-{safe_component(self.track_id)}"

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
    #: Per segment: the records to keep, by arrival (ms after the capture start, [from, to)),
    #: where the output was split at a gap too long to fill; None keeps the whole capture.
    windows: tuple[tuple[int, int] | None, ...] = ()
    #: 1 for the output's first file, N for `_partN` after a gap too long to fill.
    part: int = 1
    #: Where a part cut at a gap too long to fill ends on the call timeline (Unix ms).
    end_unix_ms: float | None = None
    #: What the plan knows of this file before it is written (the gap before a part); the
    #: written file's manifest entry lists them first.
    warnings: tuple[str, ...] = ()

    def span(self) -> tuple[float, float]:
        """Where the output's media starts and ends on the call timeline (Unix ms)."""
        start = float(self.start_unix_ms or 0)
        if self.end_unix_ms is not None:
            return start, self.end_unix_ms
        return start, start + max((o + s.duration_ms for s, o in self.segments), default=0)

    @property
    def payload_type(self) -> int | None:
        """The one media payload type the core follows: set when every segment that knows its
        type agrees, else None (the core then takes the capture's main stream)."""
        types = {s.payload_type for s, _ in self.segments if s.payload_type is not None}
        return types.pop() if len(types) == 1 else None

    def streams(self) -> tuple[list[int | None], bool]:
        """Per segment, the SSRC the analysis chose for it (None where the core must choose:
        the segment's payload type is not the job's, or only a window of its capture is read,
        whose busiest stream may differ), and whether one of those streams is coded stereo.
        Handed to the core, they spare it a pass over each capture."""
        pt = self.payload_type
        windows = self.windows or (None,) * len(self.segments)
        ssrcs = [
            seg.ssrc if pt is not None and seg.payload_type == pt and window is None else None
            for (seg, _), window in zip(self.segments, windows, strict=True)
        ]
        stereo = any(
            seg.opus_stereo
            for (seg, _), ssrc in zip(self.segments, ssrcs, strict=True)
            if ssrc is not None
        )
        return ssrcs, stereo

    def inputs(self, stack: contextlib.ExitStack, archive: Archive) -> list[SegmentArg]:
        """The core's segment arguments: each capture opened (closed with `stack`), its offset
        and its clock drift."""
        drift = self.drift_ppm or (0.0,) * len(self.segments)
        windows = self.windows or (None,) * len(self.segments)
        args: list[SegmentArg] = []
        for (seg, offset), ppm, window in zip(self.segments, drift, windows, strict=True):
            buf: Buffer = stack.enter_context(archive.open_buffer(seg.capture))
            if window is not None:
                buf = _core.slice_capture(buf, *window)
            args.append((buf, offset, ppm))
        return args


@dataclass(frozen=True)
class JobFailure:
    """An output that could not be written, and why."""

    path: str
    kind: OutputKind
    reason: str
    error: RawcoreError = field(compare=False, repr=False)


class Outputs(NamedTuple):
    """What a writing command did: the files written, warnings to show, the files that failed."""

    entries: list[ManifestEntry]
    warnings: list[str]
    failures: list[JobFailure]


def named_error(name: str, exc: RawcoreError) -> RawcoreError:
    """`exc` with the output it concerns named in front, as one line: the writers raise
    without the name, so it appears once whether the error is a warning or the last word."""
    named = type(exc)(f"{name}: {exc}")
    named.__cause__ = exc.__cause__
    return named


def open_archive_of(rec: Recording) -> Archive:
    """The recording's archive, or a clear error once the recording is closed."""
    if rec.archive is None:
        raise RawcoreError("the recording is closed")
    return rec.archive


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


def plan_outputs(
    rec: Recording,
    selection: Selection,
    *,
    kind: Literal["audio", "video"],
    ext: str,
    stitch: bool,
    supported: frozenset[str],
    max_fill_ms: int | None = None,
) -> tuple[list[OutputJob], list[str]]:
    """Decide the output files of one kind; returns the jobs and warnings for tracks skipped.

    One file per track of a session, or with `stitch` one per participant (camera and screen
    share apart, and codecs apart), named as stream-cli names them. With `max_fill_ms`, an
    output is split where a gap is longer than that (see `DEFAULT_MAX_FILL_MS`).
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
    start_ms = rec.call_start_unix_ms or rec.start_unix_ms or 0
    timeline = timeline_of(rec)

    def start_of(seg: Segment) -> float | None:
        # The call timeline's placement, else the model's time (metadata or arrival).
        placed = timeline.start(seg)
        return placed if placed is not None else seg.start_unix_ms

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
    if max_fill_ms is not None:
        split: list[OutputJob] = []
        for job in jobs:
            split.extend(_split_at_long_gaps(rec, job, max_fill_ms))
        jobs = split
    jobs.sort(key=lambda j: j.name)
    return jobs, warnings


_U32_MAX = 2**32 - 1


class _Piece(NamedTuple):
    """A segment, or the part of one between gaps too long to fill, on the call timeline."""

    segment: Segment
    drift_ppm: float
    window: tuple[int, int] | None
    start: float  # Unix ms on the call timeline
    end: float


def _pieces(rec: Recording, job: OutputJob, max_fill_ms: int) -> list[_Piece]:
    timeline = timeline_of(rec)
    drift = job.drift_ppm or (0.0,) * len(job.segments)
    t0 = job.start_unix_ms or 0
    pieces: list[_Piece] = []
    for (seg, offset), ppm in zip(job.segments, drift, strict=True):
        start = t0 + offset
        end = start + seg.duration_ms
        long = [g for g in arrival_gaps(rec, seg) if g[1] - g[0] > max_fill_ms]
        if not long:
            pieces.append(_Piece(seg, ppm, None, start, end))
            continue
        # Arrival times to the call timeline: the placement's distance from the first arrival.
        placed = timeline.placements.get(seg.capture)
        shift = 0.0 if placed is None else placed.start_unix_ms - placed.first_arrival_unix_ms
        capture_start = capture_facts(rec, seg).start_unix_ms
        cut_from = 0
        piece_start: float = start
        for before, after, _ in long:
            cut_to = round(before - capture_start) + 1
            pieces.append(_Piece(seg, ppm, (cut_from, cut_to), piece_start, before + shift))
            cut_from, piece_start = round(after - capture_start), after + shift
        pieces.append(_Piece(seg, ppm, (cut_from, _U32_MAX), piece_start, max(end, piece_start)))
    return pieces


def _split_at_long_gaps(rec: Recording, job: OutputJob, max_fill_ms: int) -> list[OutputJob]:
    """`job` as one output per stretch without a gap longer than `max_fill_ms` (inside a
    capture or between its captures); the first keeps the name, the others get `_partN`."""
    pieces = _pieces(rec, job, max_fill_ms)
    parts = split_into_parts(job.name, [(p.start, p.end) for p in pieces], max_fill_ms)
    if len(parts) == 1 and all(p.window is None for p in pieces):
        return [job]
    jobs: list[OutputJob] = []
    for n, (name, members, warning) in enumerate(parts, 1):
        group = [pieces[i] for i in members]
        t0 = min(p.start for p in group)
        jobs.append(
            replace(
                job,
                name=name,
                segments=tuple((p.segment, round(p.start - t0)) for p in group),
                start_unix_ms=round(t0),
                drift_ppm=tuple(p.drift_ppm for p in group),
                windows=tuple(p.window for p in group),
                part=n,
                end_unix_ms=max(p.end for p in group),
                warnings=(warning,) if warning else (),
            )
        )
    return jobs


def part_name(name: str, n: int) -> str:
    """The name of an output's `n`-th part: the first keeps `name`, the others add `_partN`."""
    if n == 1:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}_part{n}{dot}{ext}" if dot else f"{name}_part{n}"


class Part(NamedTuple):
    """One file of an output split at gaps too long to fill."""

    name: str
    #: Indices of the spans it holds, in time order.
    members: list[int]
    #: For every part but the first: the gap before it, as a warning about this file.
    warning: str | None


def split_into_parts(
    name: str,
    spans: Sequence[tuple[float, float]],
    max_fill_ms: int | None,
) -> list[Part]:
    """The one rule for gaps too long to fill: `spans` (start, end on the call timeline, ms) of
    what an output holds, grouped into parts wherever more than `max_fill_ms` passes with none
    of them. Each part after the first carries one warning, about itself, naming no other file
    (a part may be written under another name: mux-av joins audio and video parts). None never
    cuts."""
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    parts: list[Part] = []
    end = 0.0
    for i in order:
        start, stop = spans[i]
        if parts and (max_fill_ms is None or start - end <= max_fill_ms):
            parts[-1].members.append(i)
            end = max(end, stop)
            continue
        warning = None
        if parts:
            assert max_fill_ms is not None
            warning = (
                f"part {len(parts) + 1}: starts after {(start - end) / 1000:.0f} s without "
                f"packets, longer than --max-fill ({max_fill_ms / 1000:.0f} s); the gap is not "
                "filled, the output is split there"
            )
        parts.append(Part(part_name(name, len(parts) + 1), [i], warning))
        end = stop
    return parts


class NamedJob(Protocol):
    """Any planned output: it knows the file name it will write."""

    @property
    def name(self) -> str: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...


_Job = TypeVar("_Job", bound=NamedJob)


def run_jobs(
    rec: Recording,
    jobs: Sequence[_Job],
    out_dir: Path,
    run_one: Callable[[_Job], ManifestEntry],
    *,
    kind: OutputKind,
    command: str,
    warnings: list[str],
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> Outputs:
    """Run `run_one` over the jobs in parallel (the core releases the GIL), then write the
    manifest. A job that fails becomes a `JobFailure` (and a warning ending in "; not written",
    for people); when nothing could be written the first error is raised."""
    entries: list[ManifestEntry] = []
    failures: list[JobFailure] = []

    def run(job: _Job) -> ManifestEntry | RawcoreError:
        try:
            return run_one(job)
        except RawcoreError as exc:
            return exc

    results = map_in_threads(run, jobs, workers or min(4, os.cpu_count() or 2))
    for done, (job, result) in enumerate(zip(jobs, results, strict=True), 1):
        if on_done is not None:
            on_done(done, len(jobs))
        if isinstance(result, RawcoreError):
            failures.append(JobFailure(job.name, kind, str(result), named_error(job.name, result)))
            warnings.append(f"{job.name}: {result}; not written")
        else:
            result.warnings[:0] = job.warnings
            entries.append(result)
            warnings.extend(f"{job.name}: {w}" for w in result.warnings)
    if not entries and failures:
        raise failures[0].error
    write_manifest(out_dir, entries, call=rec.call_json(), command=command)
    return Outputs(entries, warnings, failures)
