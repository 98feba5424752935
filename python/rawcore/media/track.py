"""One track to one file at a path of the caller's choosing (`Track.extract_audio/extract_video`
in the public API): the same planning and writers as the commands, without a manifest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import cast

from rawcore.errors import InputError, RawcoreError
from rawcore.media.audio import AUDIO_CODECS, run_audio_job
from rawcore.media.files import prepare_output_dir
from rawcore.media.formats import AUDIO_FORMATS, VIDEO_FORMATS, AudioFormat, OnLoss, VideoFormat
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import Selection, named_error, plan_outputs
from rawcore.media.video import (
    VIDEO_CODECS,
    check_on_loss,
    run_video_job,
)
from rawcore.recording.model import Recording, Track


def extract_track(
    rec: Recording,
    track: Track,
    path: Path,
    *,
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    on_loss: OnLoss = "freeze",
    fec: bool = True,
) -> ManifestEntry:
    """Write `track` to `path`; the suffix picks the container. Returns the manifest entry
    (no manifest is written)."""
    check_on_loss(on_loss)
    kind = track.kind
    ext = path.suffix.lstrip(".").lower()
    allowed: tuple[str, ...] = AUDIO_FORMATS if kind == "audio" else VIDEO_FORMATS
    if ext not in allowed:
        raise InputError(f"{path}: a {kind} track is written as .{' or .'.join(allowed)}")
    jobs, warnings = plan_outputs(
        rec,
        Selection(track_id=track.track_id),
        kind=kind,
        ext=ext,
        stitch=False,
        supported=AUDIO_CODECS if kind == "audio" else VIDEO_CODECS,
    )
    job = next((j for j in jobs if track in j.tracks), None)
    if job is None:
        raise InputError("; ".join(warnings) or f"track {track.track_id} cannot be extracted")
    out_dir = prepare_output_dir(path.parent or Path("."))
    job = replace(job, name=path.name)
    try:
        if kind == "audio":
            fmt = cast(AudioFormat, ext)
            return run_audio_job(rec, job, out_dir, fmt, fill_gaps, fix_dtx, fec)
        return run_video_job(rec, job, out_dir, cast(VideoFormat, ext), fill_gaps, on_loss)
    except RawcoreError as exc:
        raise named_error(str(path), exc) from None
