"""extract-audio: one exact-timeline audio file per track, session or stitched participant.

The outputs are planned and run by the shared engine (`rawcore.media.outputs`); the packet
work happens in the Rust core in one call per output with the GIL released. Opus is remuxed:
every received packet is written as it came, and only a lost frame whose successor carries
in-band FEC is rebuilt (with libopus, in the core) as a packet of the stream's own coding;
G.711 and G.722 are decoded by the core and stored losslessly as FLAC with PyAV.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rawcore import _core
from rawcore.errors import InputError
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.media.formats import AUDIO_FORMATS, DEFAULT_MAX_FILL_MS, AudioFormat
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import (
    OutputJob,
    Outputs,
    Selection,
    open_archive_of,
    plan_outputs,
    run_jobs,
)
from rawcore.recording.model import Recording

if TYPE_CHECKING:
    import numpy as np

_CONTAINER = {"mkv": "matroska", "mka": "matroska", "webm": "webm", "ogg": "ogg"}
_PCM_CODECS = {"pcmu", "pcma", "g722"}
AUDIO_CODECS = frozenset({"opus"} | _PCM_CODECS)


def plan_audio(
    rec: Recording,
    selection: Selection,
    *,
    fmt: AudioFormat,
    stitch: bool,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
) -> tuple[list[OutputJob], list[str]]:
    """The audio outputs of `extract-audio`."""
    return plan_outputs(
        rec,
        selection,
        kind="audio",
        ext=fmt,
        stitch=stitch,
        supported=AUDIO_CODECS,
        max_fill_ms=max_fill_ms,
    )


def _entry(
    job: OutputJob, path: Path, out_dir: Path, report: _core.AudioReport, container: str
) -> ManifestEntry:
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
        fec_recovered=int(report.fec_recovered),
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


def run_audio_job(
    rec: Recording,
    job: OutputJob,
    out_dir: Path,
    fmt: AudioFormat,
    fill_gaps: bool,
    fix_dtx: bool,
    fec: bool = True,
) -> ManifestEntry:
    """Write one audio output into `out_dir` under `job.name`; returns its manifest entry."""
    archive = open_archive_of(rec)
    container = _CONTAINER[fmt]
    with contextlib.ExitStack() as stack:
        inputs = job.inputs(stack, archive)
        with atomic_path(out_dir, job.name) as tmp:
            options: dict[str, Any] = {
                "codec": job.codec,
                "payload_type": job.payload_type,
                "fill_gaps": fill_gaps,
                "fix_dtx": fix_dtx,
            }
            if job.codec in _PCM_CODECS:
                if container == "webm":
                    raise InputError(f"WebM cannot hold {job.codec} audio; use --format mkv")
                rate = 16_000 if job.codec == "g722" else 8_000
                report = _write_flac(
                    tmp, container, rate, lambda sink: _core.decode_pcm(inputs, sink, **options)
                )
            else:
                ssrcs, stereo = job.streams()
                report = _core.extract_audio(
                    inputs,
                    str(tmp),
                    container=container,
                    fec=fec,
                    ssrcs=ssrcs,
                    opus_stereo=stereo,
                    **options,
                )
            if report.packets_written == 0:
                raise InputError(f"no audio packets in {len(inputs)} capture(s)")
        return _entry(job, out_dir / job.name, out_dir, report, container)


def extract_audio(
    rec: Recording,
    output: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    fmt: AudioFormat = "mkv",
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    stitch: bool = False,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
    fec: bool = True,
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> Outputs:
    """Write the audio outputs and `manifest.json`; returns what was written and what failed.

    `fec=False` conceals every lost Opus frame instead of rebuilding the ones whose successor
    carries in-band FEC. A track that fails is skipped with a warning (the rest are still
    written); when nothing could be written the first error is raised.
    """
    if fmt not in AUDIO_FORMATS:
        raise InputError(f"unknown audio format {fmt!r}; choose one of {', '.join(AUDIO_FORMATS)}")
    out_dir = prepare_output_dir(output)
    jobs, warnings = plan_audio(
        rec,
        selection or Selection(),
        fmt=fmt,
        stitch=stitch,
        max_fill_ms=max_fill_ms if fill_gaps else None,  # unfilled gaps close up anyway
    )
    if not jobs:
        raise InputError("no audio tracks match the selection")
    return run_jobs(
        rec,
        jobs,
        out_dir,
        lambda job: run_audio_job(rec, job, out_dir, fmt, fill_gaps, fix_dtx, fec),
        kind="audio",
        command="extract-audio",
        warnings=warnings,
        workers=workers,
        on_done=on_done,
    )
