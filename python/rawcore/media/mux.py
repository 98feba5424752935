"""mux-av: each participant's audio and video in one lip-synced Matroska file.

Pairing is deterministic: within a session (or a stitched participant), the camera video goes
with the microphone audio and the screen-share video with the screen-share audio; the first
track by id wins when there are several. A video without audio, or audio without video, still
gets its file. The two streams are placed on the call timeline (Sender Reports give lip sync,
see `rawcore.recording.timeline`), the earlier one starting at the file's t=0, and written by
the core in one pass, interleaved by time.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from rawcore import _core
from rawcore.errors import InputError
from rawcore.media.audio import run_audio_job
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.media.formats import DEFAULT_MAX_FILL_MS, MEDIA, Media, OnLoss
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import (
    OutputJob,
    Outputs,
    Selection,
    open_archive_of,
    plan_outputs,
    run_jobs,
)
from rawcore.media.video import (
    VIDEO_CODECS,
    check_on_loss,
    declared_size,
    prepare_fill,
    run_video_job,
    video_fields,
    video_options,
)
from rawcore.recording.model import Recording


@dataclass(frozen=True)
class AvJob:
    """One muxed output: at most one video job and one audio job of the same sender."""

    name: str
    video: OutputJob | None
    audio: OutputJob | None

    @property
    def warnings(self) -> tuple[str, ...]:
        """The plan's warnings of both streams, each once (a part's gap is usually in both)."""
        return tuple(dict.fromkeys(w for j in (self.video, self.audio) if j for w in j.warnings))

    @property
    def any(self) -> OutputJob:
        job = self.video or self.audio
        assert job is not None, "an A/V job has at least one stream"
        return job


def plan_av(
    rec: Recording,
    selection: Selection,
    *,
    media: Media,
    stitch: bool,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
) -> tuple[list[AvJob], list[str]]:
    plan = functools.partial(
        plan_outputs, rec, selection, ext="mkv", stitch=stitch, max_fill_ms=max_fill_ms
    )
    videos, warnings = plan(kind="video", supported=VIDEO_CODECS)
    audios, more = plan(kind="audio", supported=frozenset({"opus"}))
    warnings.extend(more)

    def key(job: OutputJob) -> tuple[str, str | None, bool, int]:
        return (job.user_id, job.session_id, job.screenshare, job.part)

    def wanted(job: OutputJob) -> bool:
        return media == "both" or (job.screenshare == (media == "display"))

    by_key: dict[tuple[str, str | None, bool, int], dict[str, OutputJob]] = {}
    for job in sorted(videos + audios, key=lambda j: (j.name, j.tracks[0].track_id)):
        if not wanted(job):
            continue
        slot = by_key.setdefault(key(job), {})
        kind = job.tracks[0].kind
        if kind in slot:
            warnings.append(
                f"{job.name}: a second {kind} track for {job.user_id}/{job.session_id}; "
                f"muxing {slot[kind].tracks[0].track_id}, skipping {job.tracks[0].track_id}"
            )
            continue
        slot[kind] = job
    jobs = []
    for slot in by_key.values():
        first = slot.get("video") or slot["audio"]
        base = first.name.rsplit(".", 1)[0]
        for label in ("_shared_video_only_", "_shared_audio_only_", "_video_only_", "_audio_only_"):
            if label in base:
                base = base.replace(
                    label, "_shared_audio_video_" if "shared" in label else "_audio_video_"
                )
                break
        jobs.append(AvJob(f"{base}.mkv", slot.get("video"), slot.get("audio")))
    jobs.sort(key=lambda j: j.name)
    return jobs, warnings


def _run_av(
    rec: Recording,
    job: AvJob,
    out_dir: Path,
    fill_gaps: bool,
    fix_dtx: bool,
    on_loss: OnLoss,
    fec: bool,
) -> ManifestEntry:
    if job.video is None or job.audio is None:
        # One stream only: the single-stream writers, under the A/V name.
        single = replace(job.any, name=job.name)
        if job.video is not None:
            entry = run_video_job(rec, single, out_dir, "mkv", fill_gaps, on_loss)
        else:
            entry = run_audio_job(rec, single, out_dir, "mkv", fill_gaps, fix_dtx, fec)
        entry.kind = "av"
        return entry
    archive = open_archive_of(rec)
    video, audio = job.video, job.audio
    if video.start_unix_ms is None or audio.start_unix_ms is None:
        raise InputError("the streams have no place on the call timeline")
    audio_offset_ms = float(audio.start_unix_ms - video.start_unix_ms)
    with contextlib.ExitStack() as stack:
        vin = video.inputs(stack, archive)
        ain = audio.inputs(stack, archive)
        options = video_options(video, fill_gaps, on_loss)
        fill = prepare_fill(video, vin, options)
        with atomic_path(out_dir, job.name) as tmp:
            vreport, areport = _core.extract_av(
                vin,
                ain,
                str(tmp),
                video_codec=options["codec"],
                video_payload_type=options["payload_type"],
                cvo_extension_id=options["cvo_extension_id"],
                audio_payload_type=audio.payload_type,
                audio_offset_ms=audio_offset_ms,
                fill=fill,
                fill_gaps=fill_gaps,
                fix_dtx=fix_dtx,
                on_loss=on_loss,
                fec=fec,
            )
    path = out_dir / job.name
    fields = video_fields(vreport, fill)
    start = min(video.start_unix_ms, audio.start_unix_ms)
    audio_end = audio.start_unix_ms + areport.duration_ms
    video_end = video.start_unix_ms + fields["duration_ms"]
    fields["duration_ms"] = round(max(audio_end, video_end) - start)
    fields["warnings"] = fields["warnings"] + list(areport.warnings)
    return ManifestEntry(
        path=job.name,
        kind="av",
        user_id=video.user_id,
        session_id=video.session_id,
        track_ids=[t.track_id for t in video.tracks + audio.tracks],
        codec=f"{video.codec}+opus",
        container="matroska",
        start_unix_ms=start,
        bytes=path.stat().st_size,
        sample_rate=int(areport.sample_rate),
        channels=int(areport.channels),
        dtx_filled_ms=round(areport.dtx_filled_ms),
        loss_filled_ms=round(areport.loss_filled_ms),
        fec_recovered=int(areport.fec_recovered),
        pause_filled_ms=round(areport.pause_filled_ms),
        screenshare=video.screenshare,
        stitched=video.stitched,
        av_offset_ms=round(audio_offset_ms, 1),
        declared_size=declared_size(video),
        **fields,
    )


def mux_av(
    rec: Recording,
    output: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    media: Media = "both",
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    on_loss: OnLoss = "freeze",
    stitch: bool = False,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
    fec: bool = True,
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> Outputs:
    """Write one A/V file per participant session (or stitched participant); `on_loss` as for
    `extract_video`, the audio as `extract_audio` writes it (`fec` the same)."""
    if media not in MEDIA:
        raise InputError(f"unknown --media {media!r}; choose one of {', '.join(MEDIA)}")
    check_on_loss(on_loss)
    out_dir = prepare_output_dir(output)
    jobs, warnings = plan_av(
        rec,
        selection or Selection(),
        media=media,
        stitch=stitch,
        max_fill_ms=max_fill_ms if fill_gaps else None,  # unfilled gaps close up anyway
    )
    if not jobs:
        raise InputError("no tracks match the selection")
    return run_jobs(
        rec,
        jobs,
        out_dir,
        lambda job: _run_av(rec, job, out_dir, fill_gaps, fix_dtx, on_loss, fec),
        kind="av",
        command="mux-av",
        warnings=warnings,
        workers=workers,
        on_done=on_done,
    )


__all__ = ["MEDIA", "AvJob", "mux_av", "plan_av"]
