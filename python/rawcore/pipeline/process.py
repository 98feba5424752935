"""mix-audio and process-all: whole-call outputs built from the per-track ones.

mix-audio extracts every participant's timeline-exact audio (into a private folder it removes
afterwards) and mixes it on the call's wall clock; process-all writes audio, video, muxed and
mixed outputs into one folder in one run, mixing from the audio files it has just written, and
leaves the QA report beside them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rawcore.errors import CaptureError, InputError, OutputError
from rawcore.media.audio import extract_audio, plan_audio
from rawcore.media.files import prepare_output_dir
from rawcore.media.formats import DEFAULT_MAX_FILL_MS, OnLoss
from rawcore.media.manifest import ManifestEntry, write_manifest
from rawcore.media.mix import (
    MIX_RATE,
    MixFormat,
    MixInput,
    MixReport,
    OpusTrack,
    check_encoding,
    mix_audio,
    mix_opus,
    mixed_name,
)
from rawcore.media.mux import mux_av
from rawcore.media.outputs import (
    JobFailure,
    Outputs,
    Selection,
    open_archive_of,
    split_into_parts,
)
from rawcore.media.video import check_on_loss, extract_video
from rawcore.pipeline.qa import write_qa_report
from rawcore.recording.model import Recording


class ProcessAll(NamedTuple):
    """What process-all did: every file written, warnings, failures, and the JSON summary."""

    entries: list[ManifestEntry]
    warnings: list[str]
    failures: list[JobFailure]
    summary: dict[str, Any]


def _mix_entries(
    rec: Recording,
    audio: Sequence[ManifestEntry],
    audio_dir: Path,
    out_dir: Path,
    *,
    fmt: MixFormat,
    gains: Mapping[str, float],
    normalize: bool,
    label: str | None,
    sample_rate: int = 48_000,
    bit_rate: int | None = None,
    progress: Callable[[float], None] | None = None,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
) -> tuple[list[ManifestEntry], list[str]]:
    """The mix of the extracted `audio` files, split into parts where more than `max_fill_ms`
    passes with no file holding audio (the rule of `split_into_parts`); its entries and the
    warnings for the cuts."""
    usable = [
        e for e in audio if e.start_unix_ms is not None and e.kind == "audio" and not e.stitched
    ]
    inputs = [
        MixInput(
            path=audio_dir / e.path,
            start_unix_ms=float(e.start_unix_ms or 0),  # None filtered out above
            label=e.user_id or "unknown",
            gain_db=gains.get(e.user_id or "", 0.0),
        )
        for e in usable
    ]
    if not inputs:
        raise InputError("no audio to mix")
    unknown = sorted(set(gains) - {i.label for i in inputs})
    if unknown:
        raise InputError(f"--gain names users without audio: {', '.join(unknown)}")
    start = rec.start_unix_ms
    name = mixed_name(rec.call_type, rec.call_id, rec.call_start_unix_ms or start or 0, fmt, label)
    warnings: list[str] = []
    spans = [
        (i.start_unix_ms, i.start_unix_ms + e.duration_ms)
        for i, e in zip(inputs, usable, strict=True)
    ]
    parts = split_into_parts(name, spans, max_fill_ms)
    entries: list[ManifestEntry] = []
    for n, (part, members, gap_warning) in enumerate(parts):
        group = [inputs[i] for i in members]
        starts = [i.start_unix_ms for i in group]
        mix_start = _mix_start(rec, starts) if n == 0 else min(starts)
        report = mix_audio(
            group,
            out_dir / part,
            fmt=fmt,
            normalize=normalize,
            sample_rate=sample_rate,
            bit_rate=bit_rate,
            progress=_part_progress(progress, n, len(parts)),
            start_unix_ms=mix_start,
        )
        track_ids = sorted({t for i in members for t in usable[i].track_ids})
        entry = _mix_entry(part, out_dir, fmt, report, mix_start, starts, track_ids)
        entries.append(_with_gap_warning(entry, gap_warning, warnings))
    return entries, warnings


def _part_progress(
    progress: Callable[[float], None] | None, n: int, parts: int
) -> Callable[[float], None] | None:
    """The progress of part `n` (from 0) of `parts` as a fraction of the whole mix."""
    if progress is None or parts == 1:
        return progress
    report = progress
    return lambda done: report((n + done) / parts)


def _mix_start(rec: Recording, starts: Sequence[float]) -> float | None:
    """Where the mix starts: the recording's start, or the earliest track if that is earlier."""
    start = rec.start_unix_ms
    return None if start is None else float(min(start, min(starts)))


def _mix_entry(
    name: str,
    out_dir: Path,
    fmt: MixFormat,
    report: MixReport,
    mix_start: float | None,
    starts: Sequence[float],
    track_ids: list[str],
) -> ManifestEntry:
    first = min(starts) if mix_start is None else min(mix_start, min(starts))
    return ManifestEntry(
        path=name,
        kind="mix",
        user_id=None,
        session_id=None,
        track_ids=track_ids,
        codec={"mp3": "mp3", "opus": "opus", "m4a": "aac", "flac": "flac", "wav": "pcm_s16le"}[fmt],
        container={"mp3": "mp3", "opus": "ogg", "m4a": "mp4", "flac": "flac", "wav": "wav"}[fmt],
        start_unix_ms=round(first),
        duration_ms=report.duration_ms,
        bytes=(out_dir / name).stat().st_size,
        sample_rate=report.sample_rate,
        channels=report.channels,
        warnings=[] if report.limited_ms == 0 else [f"limiter engaged for {report.limited_ms} ms"],
    )


def _core_mix(
    rec: Recording,
    out_dir: Path,
    *,
    selection: Selection,
    fmt: MixFormat,
    gains: Mapping[str, float],
    progress: Callable[[float], None] | None,
    bit_rate: int | None,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
) -> tuple[list[ManifestEntry], list[str]] | None:
    """The mix made in the core straight from the captures, when every track is Opus; None
    when some track is not (or a capture cannot be read: the file path then names the track
    that failed and mixes the rest). Split into parts where more than `max_fill_ms` passes
    with no track holding packets (the rule of `split_into_parts`)."""
    # Each track cut where its own gaps are too long to fill (the parts extract-audio writes,
    # whose names and warnings do not concern the mix), then the mix where all of them are.
    _, warnings = plan_audio(rec, selection, fmt="mkv", stitch=False, max_fill_ms=None)
    jobs, _ = plan_audio(rec, selection, fmt="mkv", stitch=False, max_fill_ms=max_fill_ms)
    jobs = [j for j in jobs if j.start_unix_ms is not None and not j.stitched]
    if not jobs or any(j.codec != "opus" for j in jobs):
        return None
    unknown = sorted(set(gains) - {j.user_id for j in jobs})
    if unknown:
        raise InputError(f"--gain names users without audio: {', '.join(unknown)}")
    starts = [float(j.start_unix_ms or 0) for j in jobs]
    name = mixed_name(
        rec.call_type,
        rec.call_id,
        rec.call_start_unix_ms or rec.start_unix_ms or 0,
        fmt,
        selection.label,
    )
    archive = open_archive_of(rec)
    parts = split_into_parts(name, [j.span() for j in jobs], max_fill_ms)
    entries: list[ManifestEntry] = []
    for n, (part, members, gap_warning) in enumerate(parts):
        group = [jobs[i] for i in members]
        part_starts = [starts[i] for i in members]
        mix_start = _mix_start(rec, part_starts) if n == 0 else min(part_starts)
        with contextlib.ExitStack() as stack:
            tracks = [
                OpusTrack(
                    segments=j.inputs(stack, archive),
                    start_unix_ms=start,
                    label=j.user_id,
                    gain_db=gains.get(j.user_id, 0.0),
                    payload_type=j.payload_type,
                )
                for j, start in zip(group, part_starts, strict=True)
            ]
            try:
                report = mix_opus(
                    tracks,
                    out_dir / part,
                    fmt=fmt,
                    bit_rate=bit_rate,
                    progress=_part_progress(progress, n, len(parts)),
                    start_unix_ms=mix_start,
                )
            except CaptureError:
                return None
        track_ids = sorted({t.track_id for j in group for t in j.tracks})
        entry = _mix_entry(part, out_dir, fmt, report, mix_start, part_starts, track_ids)
        entries.append(_with_gap_warning(entry, gap_warning, warnings))
    return entries, warnings


def _with_gap_warning(
    entry: ManifestEntry, gap_warning: str | None, warnings: list[str]
) -> ManifestEntry:
    """A mix part's entry with the gap before it first among its warnings, and among the
    command's, named for the file."""
    if gap_warning:
        entry.warnings.insert(0, gap_warning)
        warnings.append(f"{entry.path}: {gap_warning}")
    return entry


def mix_recording(
    rec: Recording,
    output: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    fmt: MixFormat = "mp3",
    gains: Mapping[str, float] | None = None,
    normalize: bool = False,
    sample_rate: int = 48_000,
    bit_rate: int | None = None,
    progress: Callable[[float], None] | None = None,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
) -> Outputs:
    """`mix-audio`: one mixed file of every (selected) participant, or one per stretch where
    more than `max_fill_ms` passes with no participant's audio (`_part2`, …)."""
    check_encoding(fmt, sample_rate, bit_rate)
    out_dir = prepare_output_dir(output)
    if not normalize and sample_rate == MIX_RATE:
        # Opus tracks are decoded, summed and limited in the core, with no file in between;
        # loudness normalisation (a first pass over each decoded track), other rates and
        # other codecs take the path through the extracted files.
        made = _core_mix(
            rec,
            out_dir,
            selection=selection or Selection(),
            fmt=fmt,
            gains=gains or {},
            progress=progress,
            bit_rate=bit_rate,
            max_fill_ms=max_fill_ms,
        )
        if made is not None:
            made_entries, warnings = made
            write_manifest(out_dir, made_entries, call=rec.call_json(), command="mix-audio")
            return Outputs(made_entries, warnings, [])
    try:
        work = Path(tempfile.mkdtemp(prefix=".rawcore-mix-", dir=out_dir))
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write ({exc.strerror})") from None
    try:
        audio, warnings, failures = extract_audio(
            rec, work, selection=selection, max_fill_ms=max_fill_ms
        )
        mixed, cuts = _mix_entries(
            rec,
            audio,
            work,
            out_dir,
            fmt=fmt,
            gains=gains or {},
            normalize=normalize,
            label=(selection or Selection()).label,
            sample_rate=sample_rate,
            bit_rate=bit_rate,
            progress=progress,
            max_fill_ms=max_fill_ms,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_manifest(out_dir, mixed, call=rec.call_json(), command="mix-audio")
    # Tracks that failed to extract are missing from the mix: the mix is partial.
    return Outputs(mixed, warnings + cuts, failures)


def process_all(
    rec: Recording,
    output: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    on_loss: OnLoss = "freeze",
    fec: bool = True,
    mix_format: MixFormat = "mp3",
    gains: Mapping[str, float] | None = None,
    normalize: bool = False,
    qa: bool = True,
    on_stage: Callable[[str], None] | None = None,
    on_done: Callable[[int, int], None] | None = None,
    mix_sample_rate: int = 48_000,
    mix_bit_rate: int | None = None,
    on_fraction: Callable[[float], None] | None = None,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
) -> ProcessAll:
    """Audio, video, muxed and mixed outputs, the manifest and the QA report, in one run.

    `on_stage` is called with each stage's name as it starts ("audio", "video", "mux", "mix",
    "qa"); `on_done(done, total)` as the running stage's outputs are written (the mix is one);
    `on_fraction` with the fraction of the mix done. `mix_sample_rate` and `mix_bit_rate`
    (bit/s, None for the format's default) set the mix's encoding. `on_loss` is what the video
    and A/V outputs show after a loss (see `rawcore.media.video`).
    """
    check_on_loss(on_loss)
    out_dir = prepare_output_dir(output)
    sel = selection or Selection()
    entries: list[ManifestEntry] = []
    warnings: list[str] = []
    failures: list[JobFailure] = []

    def stage(name: str) -> None:
        if on_stage is not None:
            on_stage(name)

    stage("audio")
    audio = extract_audio(
        rec,
        out_dir,
        selection=sel,
        fill_gaps=fill_gaps,
        fix_dtx=fix_dtx,
        max_fill_ms=max_fill_ms,
        fec=fec,
        on_done=on_done,
    )
    entries += audio.entries
    warnings += audio.warnings
    failures += audio.failures
    if any(t.kind == "video" and sel.admits(t) for t in rec.tracks):
        stage("video")
        video = extract_video(
            rec,
            out_dir,
            selection=sel,
            fill_gaps=fill_gaps,
            max_fill_ms=max_fill_ms,
            on_loss=on_loss,
            on_done=on_done,
        )
        entries += video.entries
        warnings += video.warnings
        failures += video.failures
    stage("mux")
    muxed = mux_av(
        rec,
        out_dir,
        selection=sel,
        fill_gaps=fill_gaps,
        fix_dtx=fix_dtx,
        max_fill_ms=max_fill_ms,
        on_loss=on_loss,
        fec=fec,
        on_done=on_done,
    )
    entries += muxed.entries
    warnings += muxed.warnings
    failures += muxed.failures
    stage("mix")
    mixed, cuts = _mix_entries(
        rec,
        audio.entries,
        out_dir,
        out_dir,
        fmt=mix_format,
        gains=gains or {},
        normalize=normalize,
        label=sel.label,
        sample_rate=mix_sample_rate,
        bit_rate=mix_bit_rate,
        progress=on_fraction,
        max_fill_ms=max_fill_ms,
    )
    entries += mixed
    warnings += cuts
    if on_done is not None:
        on_done(1, 1)
    write_manifest(out_dir, mixed, call=rec.call_json(), command="process-all")
    qa_paths: dict[str, str] = {}
    if qa:
        stage("qa")
        qa_paths = write_qa_report(rec, out_dir, entries, sel)
    summary = {
        "schema": "rawcore.process-all/1",
        "output": str(out_dir),
        "call": rec.call_json(),
        "outputs": [e.to_json() for e in entries],
        "qa": qa_paths,
        "warnings": warnings,
    }
    return ProcessAll(entries, warnings, failures, summary)
