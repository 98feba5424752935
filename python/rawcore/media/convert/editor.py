"""editor: an MP4 every editor and phone takes, on the call timeline, frame-exact.

Video becomes H.264 (libx264, yuv420p, High profile) at constant frame rate: the track's
nominal rate (the median interval between its pictures), every frame the largest picture size
observed in the track (a first pass finds it: from the frame headers of a Matroska/WebM track
in VP8, VP9 or H.264, else by decoding the keyframes; smaller stretches are scaled with their
aspect kept and letterboxed in black). Output frame `n` (at `n / fps`) shows
the latest source picture whose time rounds to frame `n` or before, so every source picture
appears at its time ± half a frame; stretches without a new picture repeat the last one; before
the first picture and after the last, black. Audio becomes AAC-LC at 48 kHz, each decoded
frame at its time (silence where the source has none). Both start at t=0 (the input's t=0: for
a rawcore output, its `start_unix_ms` on the call timeline) and end together on a frame
boundary. Video and audio are encoded into two temporary MP4s and then merged by time.
"""

from __future__ import annotations

import itertools
import math
import statistics
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from rawcore._core import scan_pictures
from rawcore.errors import InputError, RawcoreError
from rawcore.media.convert.probe import Inputs, StreamRef, open_media
from rawcore.media.convert.remux import open_mp4, remux
from rawcore.media.formats import DEFAULT_CRF, DEFAULT_PRESET, PRESETS

RATE = 48_000
AAC_FRAME = 1024
#: Above this much (samples) between where an audio frame should start and where the previous
#: one ended, the difference is silence (or overlap, trimmed); below it, the frame follows on.
_AUDIO_SLACK = 480


@dataclass(frozen=True)
class EditorOptions:
    preset: str = DEFAULT_PRESET
    crf: int = DEFAULT_CRF

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"unknown x264 preset {self.preset!r}; one of {', '.join(PRESETS)}")
        if not 0 <= self.crf <= 51:
            raise InputError(f"--crf {self.crf}: expected 0 to 51")


@dataclass(frozen=True)
class VideoPlan:
    """What the first pass found: picture times (s), the nominal rate and the largest size."""

    times_s: list[float]
    fps: Fraction
    width: int
    height: int


@dataclass(frozen=True)
class EditorStats:
    width: int | None
    height: int | None
    fps: float | None
    frames: int
    duration_s: float
    audio_samples: int


def _nominal_rate(times: list[float]) -> Fraction:
    steps = [b - a for a, b in itertools.pairwise(times) if b - a > 1e-4]
    if not steps:
        return Fraction(30)
    fps = 1.0 / statistics.median(steps)
    fps = min(max(fps, 1.0), 120.0)
    if abs(fps - round(fps)) < 0.03 * fps:
        return Fraction(round(fps))
    return Fraction(fps).limit_denominator(1001)


#: Codecs whose picture sizes the core reads from frame headers in a Matroska/WebM file.
_HEADER_CODECS = frozenset({"vp8", "vp9", "h264"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def _plan(times: list[float], width: int, height: int) -> VideoPlan:
    times.sort()
    # yuv420p needs even sizes: an odd size gains a black line.
    return VideoPlan(times, _nominal_rate(times), width + width % 2, height + height % 2)


def scan_video(ref: StreamRef) -> VideoPlan:
    """Every picture's time, and the largest picture size the decoder outputs: from the frame
    headers when the input is Matroska/WebM in a codec the core reads (no decoding), else by
    decoding the keyframes."""
    return _scan_headers(ref) or _scan_decoding(ref)


def _scan_headers(ref: StreamRef) -> VideoPlan | None:
    """The plan from `rawcore._core.scan_pictures`, None when it cannot tell (another container
    or codec, a file it cannot read, no sized picture): the decoding scan decides then."""
    if ref.codec not in _HEADER_CODECS:
        return None
    try:
        with ref.path.open("rb") as f:
            if f.read(4) != _EBML_MAGIC:
                return None
    except OSError:
        return None
    try:
        pictures = scan_pictures(ref.path)
    except RawcoreError:
        return None
    if pictures is None or not pictures.times_s or not pictures.width:
        return None
    return _plan(list(pictures.times_s), pictures.width, pictures.height)


def _scan_decoding(ref: StreamRef) -> VideoPlan:
    """The plan by decoding every keyframe (a size changes only at a keyframe in every codec
    rawcore writes)."""
    import av

    times: list[float] = []
    width = height = 0
    with open_media(ref.path) as c:
        stream = c.streams[ref.index]
        stream.codec_context.skip_frame = "NONKEY"
        for packet in c.demux(stream):
            if packet.pts is not None and packet.size:
                times.append(float(packet.pts * packet.time_base))
            if not packet.is_keyframe and packet.size:
                continue
            try:
                for frame in packet.decode():
                    if frame.width * frame.height > width * height:
                        width, height = frame.width, frame.height
            except av.error.FFmpegError:
                continue
        if not width:
            width, height = stream.codec_context.width, stream.codec_context.height
    if not times or not width:
        raise InputError(f"{ref.path}: no decodable video")
    return _plan(times, width, height)


class Canvas:
    """Source pictures as yuv420p frames of one size, letterboxed where the aspect differs."""

    def __init__(self, width: int, height: int) -> None:
        import av

        self.width, self.height = width, height
        # Black made in the frame's own planes: NumPy (≈45 ms to import) is needed only to
        # letterbox a picture of another size.
        black = av.VideoFrame(width, height, "yuv420p")
        for plane, value in zip(black.planes, (16, 128, 128), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        self.black = black

    def fit(self, frame: Any) -> Any:
        import av

        w, h = frame.width, frame.height
        if (w, h) == (self.width, self.height):
            return frame.reformat(format="yuv420p")
        import numpy as np

        scale = min(self.width / w, self.height / h)
        sw = max(2, round(w * scale) // 2 * 2)
        sh = max(2, round(h * scale) // 2 * 2)
        scaled = frame.reformat(width=sw, height=sh, format="yuv420p").to_ndarray()
        canvas = np.empty((self.height * 3 // 2, self.width), dtype=np.uint8)
        canvas[: self.height] = 16
        canvas[self.height :] = 128
        x, y = (self.width - sw) // 2 // 2 * 2, (self.height - sh) // 2 // 2 * 2
        canvas[y : y + sh, x : x + sw] = scaled[:sh]
        H, W = self.height, self.width
        u, v = (
            scaled[sh : sh + sh // 4].reshape(sh // 2, sw // 2),
            scaled[sh + sh // 4 :].reshape(sh // 2, sw // 2),
        )
        cu = canvas[H : H + H // 4].reshape(H // 2, W // 2)
        cv = canvas[H + H // 4 :].reshape(H // 2, W // 2)
        cu[y // 2 : y // 2 + sh // 2, x // 2 : x // 2 + sw // 2] = u
        cv[y // 2 : y // 2 + sh // 2, x // 2 : x // 2 + sw // 2] = v
        return av.VideoFrame.from_ndarray(canvas, format="yuv420p")


def _decoded(ref: StreamRef) -> Iterator[tuple[float, Any]]:
    import av

    with open_media(ref.path) as c:
        stream = c.streams[ref.index]
        stream.thread_type = "AUTO"
        for packet in c.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged picture: the previous one holds
            for frame in frames:
                if frame.pts is not None:
                    yield float(frame.pts * frame.time_base), frame


def encode_video(
    ref: StreamRef,
    plan: VideoPlan,
    frames: int,
    out: Path,
    options: EditorOptions,
    on_frame: Callable[[int], None] | None = None,
) -> None:
    """`frames` CFR frames of `plan.width` x `plan.height` into the MP4 `out` (video only)."""
    import av

    canvas = Canvas(plan.width, plan.height)
    fps = plan.fps
    output = open_mp4(out)
    try:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "yuv420p"
        stream.codec_context.time_base = 1 / fps
        stream.codec_context.gop_size = max(1, round(2 * fps))
        # Frame and slice threads, as the ffmpeg command has them (PyAV's default of slice
        # threads alone makes libavcodec ask x264 for sliced threads: much slower).
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.options = {
            "crf": str(options.crf), "preset": options.preset, "profile": "high",
        }  # fmt: skip
        slot = 0

        def emit(picture: Any) -> None:
            nonlocal slot
            picture.pts = slot
            picture.time_base = stream.codec_context.time_base
            picture.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(picture):
                output.mux(packet)
            slot += 1
            if on_frame is not None and slot % 30 == 0:
                on_frame(slot)

        shown = canvas.black
        # Decoding runs on FFmpeg's frame threads and encoding on x264's, both without the
        # GIL; a Python thread decoding ahead of the encoder made the two wait on the GIL for
        # each other (measured: 25% slower on 2 cores), so this loop does both.
        for t, frame in _decoded(ref):
            picture = canvas.fit(frame)
            k = round(t * fps)
            if k >= frames:
                break
            while slot < k:
                emit(shown)
            shown = picture
        if slot < frames:
            emit(shown)  # the last picture, at its own frame; black after it
        while slot < frames:
            emit(canvas.black)
        for packet in stream.encode(None):
            output.mux(packet)
    finally:
        output.close()


def _audio_frames(ref: StreamRef, offset_s: float, layout: str) -> Iterator[tuple[int, Any]]:
    """`(start sample at 48 kHz, float planar frame)` per decoded frame (-1: the resampler's
    flush, which follows on)."""
    import av

    resampler = av.AudioResampler(format="fltp", layout=layout, rate=RATE)
    with open_media(ref.path) as c:
        stream = c.streams[ref.index]
        for packet in c.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in decoded:
                if frame.pts is None:
                    continue
                start = round((float(frame.pts * frame.time_base) + offset_s) * RATE)
                for out in resampler.resample(frame):
                    yield start, out
                    start += out.samples
        for out in resampler.resample(None):
            yield -1, out


def encode_audio(ref: StreamRef, offset_s: float, samples: int, out: Path) -> None:
    """`samples` samples of AAC-LC at 48 kHz into the MP4 `out` (audio only): each decoded
    frame at its time, silence where there is none. The frames go through an `AudioFifo`
    that cuts them into the encoder's 1024 samples in FFmpeg (no per-frame array copies);
    silence is zeroed in a frame's own planes, and only the rare overlap is cut as an array."""
    import av

    with open_media(ref.path) as c:
        channels = min(2, max(1, c.streams[ref.index].codec_context.channels))
    layout = "mono" if channels == 1 else "stereo"
    output = open_mp4(out)
    try:
        stream = output.add_stream("aac", rate=RATE, layout=layout)
        stream.codec_context.bit_rate = 96_000 if channels == 1 else 160_000
        fifo = av.AudioFifo()
        written = 0  # samples placed so far (those in the fifo included)
        sent = 0  # samples handed to the encoder
        time_base = Fraction(1, RATE)

        def frame_of(data: Any) -> Any:
            import numpy as np

            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data, dtype=np.float32), format="fltp", layout=layout
            )
            frame.sample_rate = RATE
            return frame

        def silence(n: int) -> Any:
            frame = av.AudioFrame(format="fltp", layout=layout, samples=n)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = RATE
            return frame

        def put(frame: Any) -> None:
            nonlocal written
            frame.pts = None  # placed by `written`, not by the fifo's pts check
            fifo.write(frame)
            written += frame.samples

        def flush(final: bool) -> None:
            nonlocal sent
            while fifo.samples >= AAC_FRAME or (final and fifo.samples):
                chunk = fifo.read(min(AAC_FRAME, fifo.samples))
                if chunk is None:  # the fifo had fewer samples than asked: not reached
                    break
                chunk.pts, chunk.time_base = sent, time_base
                sent += chunk.samples
                for packet in stream.encode(chunk):
                    output.mux(packet)

        for start, frame in _audio_frames(ref, offset_s, layout):
            room = samples - written
            if room <= 0:
                break
            if start >= 0 and start - written > _AUDIO_SLACK:
                put(silence(min(start - written, room)))
                room = samples - written
                if room <= 0:
                    break
            elif start >= 0 and written - start > _AUDIO_SLACK:
                skip = written - start
                if skip >= frame.samples:
                    continue
                frame = frame_of(frame.to_ndarray()[:, skip:])
            if frame.samples > room:
                frame = frame_of(frame.to_ndarray()[:, :room])
            put(frame)
            flush(False)
        if written < samples:
            put(silence(samples - written))
        flush(True)
        for packet in stream.encode(None):
            output.mux(packet)
    finally:
        output.close()


def _audio_end_s(ref: StreamRef, offset_s: float) -> float:
    end = 0.0
    with open_media(ref.path) as c:
        for packet in c.demux(c.streams[ref.index]):
            if packet.pts is not None and packet.size:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end + offset_s


def editor(
    inputs: Inputs,
    out: Path,
    options: EditorOptions,
    *,
    on_progress: Callable[[float], None] | None = None,
) -> EditorStats:
    """Write the editor MP4 `out` from `inputs` (see the module docstring)."""
    plan = scan_video(inputs.video) if inputs.video is not None else None
    ends = []
    if plan is not None:
        ends.append(plan.times_s[-1] + float(1 / plan.fps))
    if inputs.audio is not None:
        ends.append(_audio_end_s(inputs.audio, inputs.audio_offset_s))
    total = max(ends)
    if plan is not None:
        frames = max(1, math.ceil(total * plan.fps - 1e-6))
        duration = float(frames / plan.fps)
    else:
        frames, duration = 0, math.ceil(total * RATE / AAC_FRAME) * AAC_FRAME / RATE
    samples = round(duration * RATE)
    if on_progress is not None:
        on_progress(0.02)
    with tempfile.TemporaryDirectory(prefix=".rawcore-editor-", dir=out.parent) as tmp:
        vtmp, atmp = Path(tmp) / "video.mp4", Path(tmp) / "audio.mp4"
        video_ref = audio_ref = None
        # Audio and video go to separate files: the audio encodes in a thread of its own while
        # the video does (FFmpeg's encoders and decoders run without the GIL).
        audio_job: Future[None] | None = None
        pool = ThreadPoolExecutor(max_workers=1)
        if inputs.audio is not None:
            audio_job = pool.submit(
                encode_audio, inputs.audio, inputs.audio_offset_s, samples, atmp
            )
        if plan is not None and inputs.video is not None:
            share = 0.9 if inputs.audio is not None else 0.98

            def on_frame(n: int) -> None:
                if on_progress is not None:
                    on_progress(0.02 + share * n / frames)

            encode_video(inputs.video, plan, frames, vtmp, options, on_frame)
            video_ref = StreamRef(vtmp, 0, "video", "h264")
        if audio_job is not None:
            audio_job.result()
            audio_ref = StreamRef(atmp, 0, "audio", "aac")
        pool.shutdown()
        remux(Inputs(video_ref, audio_ref), out)
    if on_progress is not None:
        on_progress(1.0)
    return EditorStats(
        plan.width if plan else None,
        plan.height if plan else None,
        float(plan.fps) if plan else None,
        frames,
        duration,
        samples if inputs.audio is not None else 0,
    )


__all__ = ["DEFAULT_CRF", "DEFAULT_PRESET", "PRESETS", "EditorOptions", "EditorStats", "editor"]
