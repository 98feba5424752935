"""extract-video: complete, decodable frames per track; after a loss the last picture held,
what has no picture at all filled with black at a low rate.

The core assembles and remuxes the frames (never re-encoding them) in one pass, and its report
carries its plan of what the output shows where no new picture comes (`on_loss`): after a loss
the last complete picture stays on screen until the next decodable frame (`freeze`, the default;
nothing is written for it, the container's timing holds the picture), or black until the next
keyframe (`black`), or the complete inter frames are written anyway (`conceal`). What really has
no picture (a sender pause, the time before a participant's first frame or between stitched
sessions) is black: pictures of the size in force, encoded here once per codec and size with
PyAV at about one frame per second, so a 10-minute gap costs kilobytes. Black needs a keyframe
after it (a black keyframe before an inter frame would break the references of the frames that
follow); such a gap is left to the player, which holds the last picture. Every output lasts to
its track's last packet. Only an output whose plan has black in it is written a second time,
with the black pictures merged in (PyAV is loaded for those only).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

from rawcore import _core
from rawcore.errors import CaptureError, InputError, RawcoreError
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.media.formats import DEFAULT_MAX_FILL_MS, ON_LOSS, VIDEO_FORMATS, OnLoss, VideoFormat
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
        # Only a gap to fill needs these: an extraction without one loads neither.
        import av
        import numpy as np

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
        # Drain the encoder when the cache goes (at exit at the latest): SVT-AV1 complains
        # on stderr about an encoder closed without its end of stream.
        weakref.finalize(self, _drain, self._ctx)

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


def _drain(ctx: Any) -> None:
    with contextlib.suppress(Exception):
        ctx.encode(None)


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


def video_options(job: OutputJob, fill_gaps: bool, on_loss: OnLoss) -> dict[str, Any]:
    """The core's options for a job's video: codec, payload type, orientation extension (the
    one id the SDPs of its segments negotiated), what to fill and what to show after a loss."""
    ids = {s.extension_id(CVO_URI) for s, _ in job.segments} - {None}
    return {
        "codec": job.codec,
        "payload_type": job.payload_type,
        "cvo_extension_id": ids.pop() if len(ids) == 1 else None,
        "fill_gaps": fill_gaps,
        "on_loss": on_loss,
    }


def declared_size(job: OutputJob) -> list[int] | None:
    """The largest size the metadata declares for the job's tracks, by area."""
    sizes = [t.declared_size for t in job.tracks if t.declared_size is not None]
    best = max(sizes, key=lambda wh: wh[0] * wh[1]) if sizes else None
    return None if best is None else list(best)


#: Black pictures to merge into an output: (time at 90 kHz, coded frame, keyframe), by time.
FillFrames = list[tuple[int, bytes, bool]]


def check_on_loss(on_loss: str) -> None:
    if on_loss not in ON_LOSS:
        raise InputError(f"unknown on_loss {on_loss!r}; choose one of {', '.join(ON_LOSS)}")


def prepare_fill(
    job: OutputJob,
    inputs: Sequence[SegmentArg],
    options: dict[str, Any],
) -> FillFrames:
    """Survey the frames and plan the output (one fast pass in the core); encode the black
    pictures the plan asks for."""
    _, survey = _core.video_frames(inputs, **options)
    if survey.frames_emitted == 0:
        raise InputError(
            f"no decodable video frame ({survey.frames_incomplete} incomplete, "
            f"{survey.frames_undecodable} without a keyframe)"
        )
    return encode_fills(job, survey)


def encode_fills(job: OutputJob, plan: _core.VideoReport) -> FillFrames:
    """The black pictures `plan` (the core's report) asks for, by time."""
    fills = [Fill(start, end, width, height) for start, end, width, height in plan.fills]
    frames: FillFrames = []
    for fill in fills:
        try:
            frames.extend(encode_black(job.codec, fill))
        except (av_errors(), ValueError) as exc:
            raise RawcoreError(
                f"cannot encode a {fill.width}x{fill.height} black fill ({exc})"
            ) from None
    frames.sort(key=lambda f: f[0])
    return frames


def write_video(
    job: OutputJob,
    inputs: Sequence[SegmentArg],
    path: Path,
    container: str,
    options: dict[str, Any],
) -> tuple[_core.VideoReport, FillFrames]:
    """Write `job`'s video to `path`: one pass where nothing is black (the usual case: a loss
    holds the last picture), since the writer plans the fills itself; only when its plan has
    black to write is the file written again, with the pictures merged in (the plan does not
    depend on them)."""
    try:
        report = _core.extract_video(inputs, str(path), container=container, **options)
    except CaptureError:
        prepare_fill(job, inputs, options)  # the survey's own error where it has one
        raise
    if not report.fills:
        return report, []
    fill = encode_fills(job, report)
    return _core.extract_video(inputs, str(path), container=container, fill=fill, **options), fill


def run_video_job(
    rec: Recording,
    job: OutputJob,
    out_dir: Path,
    fmt: VideoFormat,
    fill_gaps: bool,
    on_loss: OnLoss = "freeze",
) -> ManifestEntry:
    """Write one video output into `out_dir` under `job.name`; returns its manifest entry."""
    archive = open_archive_of(rec)
    container = "webm" if fmt == "webm" else "matroska"
    if container == "webm" and job.codec == "h264":
        raise InputError("WebM cannot hold H.264 video; use --format mkv")
    with contextlib.ExitStack() as stack:
        inputs = job.inputs(stack, archive)
        options = video_options(job, fill_gaps, on_loss)
        options["ssrcs"] = job.streams()[0]
        with atomic_path(out_dir, job.name) as tmp:
            report, fill = write_video(job, inputs, tmp, container, options)
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
        **video_fields(report, fill),
    )


def ms(pts_90k: int) -> int:
    """Milliseconds of a 90 kHz time, rounded down."""
    return pts_90k * 1000 // CLOCK


def video_fields(report: _core.VideoReport, fill: FillFrames) -> dict[str, Any]:
    """The manifest fields of a video output, from the writer's report (which carries the
    core's plan: freezes, black stretches, the output's end) and the black pictures in it."""
    width, height = report.max_size or (0, 0)
    stretches = report.stretches
    return {
        # The file lasts to its track's last packet: the last frame is held until then.
        "duration_ms": ms(report.end_pts_90k),
        "packets": int(report.packets_in),
        "packets_lost": int(report.packets_lost),
        "duplicates": int(report.duplicates),
        "late_packets": int(report.late),
        "malformed_packets": int(report.refused_packetizations),
        "warnings": list(report.warnings),
        "width": int(width),
        "height": int(height),
        "frames": int(report.frames_emitted) + len(fill),
        "keyframes": int(report.keyframes_emitted) + sum(1 for f in fill if f[2]),
        "frames_dropped": int(report.frames_undecodable),
        "frames_concealed": int(report.frames_concealed),
        "frames_incomplete": int(report.frames_incomplete),
        "keyframe_waits": int(report.keyframe_waits),
        "keyframe_wait_ms": round(report.keyframe_wait_ms),
        "resolution_changes": [[ms(p), w, h] for p, w, h in report.resolution_changes],
        "rotation_changes": [[ms(p), d, int(f)] for p, d, f in report.rotation_changes],
        "rotation": report.rotation_changes[0][1] if report.rotation_changes else None,
        "fill_frames": len(fill),
        "gaps_filled_ms": sum(end - start for start, end, _, _ in report.fills) * 1000 // CLOCK,
        "gaps_unfilled_ms": int(report.unfilled_ms),
        "frozen_ms": sum(ms(b) - ms(a) for a, b, kind, _ in stretches if kind == "freeze"),
        # Every stretch without a new picture, from the file's start: "freeze" (the last picture
        # held after a loss), "keyframe_wait" (black after a loss), "no_picture" (nothing sent).
        "events": [[ms(a), ms(b), kind] for a, b, kind, _ in stretches],
    }


def extract_video(
    rec: Recording,
    output: str | os.PathLike[str],
    *,
    selection: Selection | None = None,
    fmt: VideoFormat = "mkv",
    fill_gaps: bool = True,
    on_loss: OnLoss = "freeze",
    stitch: bool = False,
    max_fill_ms: int | None = DEFAULT_MAX_FILL_MS,
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> Outputs:
    """Write the video outputs and `manifest.json`; returns what was written and what failed.
    `on_loss`: what a loss shows until the next decodable frame (see the module's docs)."""
    if fmt not in VIDEO_FORMATS:
        raise InputError(f"unknown video format {fmt!r}; choose one of {', '.join(VIDEO_FORMATS)}")
    check_on_loss(on_loss)
    out_dir = prepare_output_dir(output)
    jobs, warnings = plan_outputs(
        rec,
        selection or Selection(),
        kind="video",
        ext=fmt,
        stitch=stitch,
        supported=VIDEO_CODECS,
        max_fill_ms=max_fill_ms if fill_gaps else None,  # unfilled gaps close up anyway
    )
    if not jobs:
        raise InputError("no video tracks match the selection")
    return run_jobs(
        rec,
        jobs,
        out_dir,
        lambda job: run_video_job(rec, job, out_dir, fmt, fill_gaps, on_loss),
        kind="video",
        command="extract-video",
        warnings=warnings,
        workers=workers,
        on_done=on_done,
    )


__all__: Sequence[str] = ("ON_LOSS", "VIDEO_FORMATS", "encode_black", "extract_video")
