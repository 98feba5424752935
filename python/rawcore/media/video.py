"""extract-video: complete, decodable frames per track, gaps filled with black at low rate.

The core assembles and remuxes the frames (never re-encoding them); a first survey pass
(`_core.video_frames`) hands back the frame columns and the core's plan of gap fills: a gap
longer than a few frame intervals that ends at a keyframe (a loss that cost a keyframe wait, a
sender pause, the time between stitched sessions) is filled with black pictures of the size in
force, encoded here once per gap with PyAV in the track's own codec at about one frame per
second, so a 10-minute gap costs kilobytes. A gap that ends in an inter frame is left to the
player (it holds the last picture): a black keyframe there would break the references of the
frames that follow.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np

from rawcore import _core
from rawcore.errors import InputError, RawcoreError
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.media.formats import VIDEO_FORMATS, VideoFormat
from rawcore.media.manifest import ManifestEntry
from rawcore.media.outputs import (
    OutputJob,
    Outputs,
    SegmentArg,
    Selection,
    open_archive_of,
    plan_outputs,
    run_jobs,
)
from rawcore.recording.model import Recording

VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "av1"})
CLOCK = 90_000

FILL_FPS = 1.0  # black pictures per second in a filled gap
MAX_FILL_FRAMES = 600  # per gap: longer gaps get a lower rate

# PyAV encoder per codec, with options that keep decode order = display order and no hidden
# frames, so each encoded packet is one shown picture.
_ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "vp8": ("libvpx", {"deadline": "realtime", "lag-in-frames": "0", "auto-alt-ref": "0"}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "lag-in-frames": "0", "auto-alt-ref": "0"}),
    "h264": ("libx264", {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}),
    "av1": ("libsvtav1", {"preset": "12"}),
}


@dataclass(frozen=True)
class Fill:
    """One gap to fill: output times (90 kHz) and the picture size in force."""

    start: int
    end: int
    width: int
    height: int


class _BlackPictures:
    """Black pictures of one codec and size, encoded once per process and reused for every
    gap: the first a keyframe, the rest inter frames that change nothing. An encoder with no
    look-ahead and no reordering makes each packet depend only on the ones before it, so the
    first `n` packets of one long encode are a valid stream of `n` pictures for any gap; the
    bytes carry no timestamps (the container gives each its time)."""

    def __init__(self, codec: str, width: int, height: int) -> None:
        import av

        name, options = _ENCODERS[codec]
        self._codec, self._name = codec, name
        self._ctx = cast("av.VideoCodecContext", av.CodecContext.create(name, "w"))
        self._ctx.width, self._ctx.height = width, height
        self._ctx.pix_fmt = "yuv420p"
        self._ctx.time_base = Fraction(1, CLOCK)
        self._ctx.framerate = Fraction(1, 1)
        self._ctx.gop_size = 1_000_000  # one keyframe, then inter frames
        self._ctx.options = options
        black = np.zeros((height * 3 // 2, width), dtype=np.uint8)
        black[height:, :] = 128
        self._black = black
        self._sent = 0
        self.packets: list[tuple[bytes, bool]] = []
        self.lock = threading.Lock()

    def first(self, count: int) -> list[tuple[bytes, bool]]:
        """The first `count` pictures (call with `lock` held)."""
        import av

        while len(self.packets) < count:
            # Encode ahead in blocks; a realtime encoder may hold a frame or two back.
            for _ in range(max(8, count - len(self.packets))):
                frame = av.VideoFrame.from_ndarray(self._black, format="yuv420p")
                frame.pts = self._sent * CLOCK
                self._sent += 1
                for packet in self._ctx.encode(frame):
                    data = bytes(packet)
                    if self._codec == "h264":
                        data = _core.annexb_to_avcc(data)
                    self.packets.append((data, bool(packet.is_keyframe)))
        if not self.packets[0][1]:
            raise RawcoreError(f"the {self._name} encoder gave no keyframe for a black picture")
        return self.packets[:count]


_BLACK: dict[tuple[str, int, int], _BlackPictures] = {}
_BLACK_LOCK = threading.Lock()


def encode_black(codec: str, fill: Fill) -> list[tuple[int, bytes, bool]]:
    """Black pictures covering `fill` at about `FILL_FPS`: the first a keyframe, the rest tiny
    inter frames, from the per-process cache of black pictures."""
    span = fill.end - fill.start
    count = max(1, min(MAX_FILL_FRAMES, math.ceil(span / CLOCK * FILL_FPS)))
    step = span / count
    # Encoders want even sizes; the decoder crops nothing, so round up by one pixel at most.
    key = (codec, fill.width + fill.width % 2, fill.height + fill.height % 2)
    with _BLACK_LOCK:
        pictures = _BLACK.get(key)
        if pictures is None:
            pictures = _BLACK[key] = _BlackPictures(*key)
    with pictures.lock:
        packets = pictures.first(count)
    return [(fill.start + round(k * step), data, key_) for k, (data, key_) in enumerate(packets)]


def av_errors() -> type[Exception]:
    import av

    return av.error.FFmpegError


CVO_URI = "urn:3gpp:video-orientation"


def video_options(job: OutputJob) -> dict[str, Any]:
    """The core's options for a job's video: codec, payload type, orientation extension (the
    one id the SDPs of its segments negotiated)."""
    ids = {s.extension_id(CVO_URI) for s, _ in job.segments} - {None}
    return {
        "codec": job.codec,
        "payload_type": job.payload_type,
        "cvo_extension_id": ids.pop() if len(ids) == 1 else None,
    }


def declared_size(job: OutputJob) -> list[int] | None:
    """The largest size the metadata declares for the job's tracks, by area."""
    sizes = [t.declared_size for t in job.tracks if t.declared_size is not None]
    best = max(sizes, key=lambda wh: wh[0] * wh[1]) if sizes else None
    return None if best is None else list(best)


@dataclass
class FillPlan:
    """The frame columns of a video job and the black frames that fill its gaps."""

    cols: dict[str, np.ndarray[Any, Any]]
    fills: list[Fill]
    frames: list[tuple[int, bytes, bool]]
    unfilled_ms: int


def prepare_fill(
    job: OutputJob,
    inputs: Sequence[SegmentArg],
    options: dict[str, Any],
    fill_gaps: bool,
) -> FillPlan:
    """Survey the frames and plan the fills (one fast pass in the core), encode the fills."""
    cols, survey = _core.video_frames(inputs, fill_gaps=fill_gaps, **options)
    if survey.frames_emitted == 0:
        raise InputError(
            f"no decodable video frame ({survey.frames_incomplete} incomplete, "
            f"{survey.frames_undecodable} without a keyframe)"
        )
    fills = [Fill(start, end, width, height) for start, end, width, height in survey.fills]
    frames: list[tuple[int, bytes, bool]] = []
    for fill in fills:
        try:
            frames.extend(encode_black(job.codec, fill))
        except (av_errors(), ValueError) as exc:
            raise RawcoreError(
                f"cannot encode a {fill.width}x{fill.height} black fill ({exc})"
            ) from None
    frames.sort(key=lambda f: f[0])
    return FillPlan(cols, fills, frames, survey.unfilled_ms)


def run_video_job(
    rec: Recording, job: OutputJob, out_dir: Path, fmt: VideoFormat, fill_gaps: bool
) -> ManifestEntry:
    """Write one video output into `out_dir` under `job.name`; returns its manifest entry."""
    archive = open_archive_of(rec)
    container = "webm" if fmt == "webm" else "matroska"
    if container == "webm" and job.codec == "h264":
        raise InputError("WebM cannot hold H.264 video; use --format mkv")
    with contextlib.ExitStack() as stack:
        inputs = job.inputs(stack, archive)
        options = video_options(job)
        prep = prepare_fill(job, inputs, options, fill_gaps)
        with atomic_path(out_dir, job.name) as tmp:
            report = _core.extract_video(
                inputs, str(tmp), container=container, fill=prep.frames, **options
            )
        path = out_dir / job.name
    return ManifestEntry(
        path=path.relative_to(out_dir).as_posix(),
        kind="video",
        user_id=job.user_id,
        session_id=job.session_id,
        track_ids=list(dict.fromkeys(t.track_id for t in job.tracks)),
        codec=job.codec,
        container=container,
        start_unix_ms=job.start_unix_ms,
        bytes=path.stat().st_size,
        screenshare=job.screenshare,
        stitched=job.stitched,
        declared_size=declared_size(job),
        **video_fields(report, prep, fill_gaps, span_ms=job_span_ms(job)),
    )


def job_span_ms(job: OutputJob) -> int | None:
    """How long the job's tracks last on the call timeline: from the output's t=0 to the last
    packet of its last segment."""
    ends = [offset + s.duration_ms for s, offset in job.segments if s.end_unix_ms is not None]
    return max(ends) if ends else None


def video_fields(
    report: _core.VideoReport, prep: FillPlan, fill_gaps: bool, *, span_ms: int | None = None
) -> dict[str, Any]:
    """The manifest fields of a video output, from the core's report and the fill plan. A
    shortfall against the track's span (`span_ms`) is an event and a warning."""
    del fill_gaps  # the survey planned with it: unfilled gaps are in the plan either way
    width, height = report.max_size or (0, 0)
    pts = prep.cols["pts_90k"]
    interval = int(np.median(np.diff(pts))) if len(pts) > 1 else 0
    duration_ms = (int(pts[-1]) + interval) * 1000 // CLOCK if len(pts) else 0
    frames = prep.frames
    warnings = list(report.warnings)
    events: list[list[Any]] = [
        [a * 1000 // CLOCK, b * 1000 // CLOCK, "no_picture"] for a, b, _, _ in report.gaps
    ]
    # A shortfall against the track's span is no picture until its end (lost pictures while
    # waiting for a keyframe that never came).
    if span_ms is not None and span_ms - duration_ms > max(1000 * interval // CLOCK, 100):
        events.append([duration_ms, span_ms, "no_picture"])
    return {
        "duration_ms": duration_ms,
        "packets": int(report.packets_in),
        "packets_lost": int(report.packets_lost),
        "duplicates": int(report.duplicates),
        "late_packets": int(report.late),
        "malformed_packets": int(report.refused_packetizations),
        "warnings": warnings,
        "width": int(width),
        "height": int(height),
        "frames": int(report.frames_emitted) + len(frames),
        "keyframes": int(report.keyframes_emitted) + sum(1 for f in frames if f[2]),
        "frames_dropped": int(report.frames_undecodable),
        "frames_incomplete": int(report.frames_incomplete),
        "keyframe_waits": int(report.keyframe_waits),
        "keyframe_wait_ms": round(report.keyframe_wait_ms),
        "resolution_changes": [[p * 1000 // CLOCK, w, h] for p, w, h in report.resolution_changes],
        "rotation_changes": [[p * 1000 // CLOCK, d, int(f)] for p, d, f in report.rotation_changes],
        "rotation": report.rotation_changes[0][1] if report.rotation_changes else None,
        "fill_frames": len(frames),
        "gaps_filled_ms": sum(f.end - f.start for f in prep.fills) * 1000 // CLOCK,
        "gaps_unfilled_ms": prep.unfilled_ms,
        # Every stretch with no new picture (a loss that cost a keyframe wait, a sender pause,
        # the time between sessions), from the file's start.
        "events": [
            [a * 1000 // CLOCK, b * 1000 // CLOCK, "no_picture"] for a, b, _, _ in report.gaps
        ],
    }


def extract_video(
    rec: Recording,
    output: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    fmt: VideoFormat = "mkv",
    fill_gaps: bool = True,
    stitch: bool = False,
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> Outputs:
    """Write the video outputs and `manifest.json`; returns what was written and what failed."""
    if fmt not in VIDEO_FORMATS:
        raise InputError(f"unknown video format {fmt!r}; choose one of {', '.join(VIDEO_FORMATS)}")
    out_dir = prepare_output_dir(output)
    jobs, warnings = plan_outputs(
        rec,
        selection or Selection(),
        kind="video",
        ext=fmt,
        stitch=stitch,
        supported=VIDEO_CODECS,
    )
    if not jobs:
        raise InputError("no video tracks match the selection")
    return run_jobs(
        rec,
        jobs,
        out_dir,
        lambda job: run_video_job(rec, job, out_dir, fmt, fill_gaps),
        kind="video",
        command="extract-video",
        warnings=warnings,
        workers=workers,
        on_done=on_done,
    )


__all__: Sequence[str] = ("VIDEO_FORMATS", "encode_black", "extract_video")
